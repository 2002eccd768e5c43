"""Hostile and broken files: every case is one clean error line, under a memory cap.

The files are generated here (truncations of every format qir reads, declared-shape bombs, a zip
bomb, HDF5 links/external storage/virtual datasets, deep nesting, bad input arrays), never
committed.  The error cases run in ONE subprocess whose address space is capped at ~2 GB
(``RLIMIT_AS``): each case calls ``qir.cli.main`` / ``qir.opt.main`` with its arguments, and an
allocation bomb fails the test instead of the machine.  Every case must return 1 with exactly one
stderr line ``qir: error: ...`` / ``qir-opt: error: ...`` naming the problem, no traceback, and
must leave no output behind.  The rules live in ``qir/safety.py`` (and ``qir/ir.py`` for IR).
"""
from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from mlp_models import write_mlp  # noqa: E402
from test_cli import NET  # noqa: E402  (a 2-input dense/relu/quantize net)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
BIN = Path(sys.executable).parent
MEMORY_CAP = 2 << 30


# Runs in the capped subprocess: argv lists in, one JSON result per case out.
_RUNNER = r"""
import contextlib, io, json, resource, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from qir import cli, opt
results = []
for tool, argv in json.loads(sys.stdin.read()):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = (cli.main if tool == "qir" else opt.main)(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException as e:  # what would have reached the user as a traceback
            rc = "uncaught " + type(e).__name__ + ": " + str(e)[:300]
    results.append({"rc": rc, "stderr": err.getvalue()})
print(json.dumps(results))
"""


def run_capped(cases: list[tuple[str, list]], timeout: float = 240) -> list[dict]:
    """Run (tool, argv) cases in one memory-capped interpreter; a hang fails on the timeout."""
    payload = json.dumps([(tool, [str(a) for a in argv]) for tool, argv in cases])
    r = subprocess.run([sys.executable, "-c", _RUNNER, str(MEMORY_CAP)], input=payload, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def assert_clean_error(result: dict, needle: str, case: str) -> None:
    assert result["rc"] == 1, (case, result)
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1, (case, result["stderr"])
    assert lines[0].startswith(("qir: error:", "qir-opt: error:")), (case, lines[0])
    assert "Traceback" not in result["stderr"] and "internal error" not in lines[0], (case, lines[0])
    assert needle in lines[0], (case, needle, lines[0])


# ------------------------------------------------------------------------------- generators
def _mlp(d: Path) -> Path:
    """A small QKeras JSON + weights model (16-32-16-5, ternary); returns the .json."""
    return write_mlp(d, "ternary")


def _weights_with(d: Path, name: str, make) -> Path:
    """A copy of the MLP whose fc1 kernel dataset is replaced by ``make(group, key)``."""
    model = _mlp(d / name)
    w = model.with_name(f"{model.stem}_weights.h5")
    with h5py.File(w, "r+") as f:
        g = f["fc1/fc1"]
        key = next(k for k in g if k.startswith("kernel"))
        del g[key]
        make(g, key)
    return model


def _truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _onnx_variant(d: Path, name: str, edit) -> Path:
    m = onnx.load(DATA / "three_layer_keras_onnx" / "three_layer_keras.onnx")
    edit(m)
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(m.SerializeToString())
    return p


def _npy_with_header(path: Path, shape: tuple, dtype: str = "<f8", payload: bytes = b"\0" * 64) -> Path:
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(payload)
    return path


def _build_cases(tmp: Path) -> list[tuple[str, str, list, str]]:
    """(case id, tool, argv, expected substring of the error line)."""
    secret = tmp / "secret"
    secret.mkdir()
    (secret / "raw.bin").write_bytes(np.arange(16 * 32, dtype=np.float32).tobytes())
    with h5py.File(secret / "other.h5", "w") as f:
        f["data"] = np.ones((16, 32), np.float32)
    out = tmp / "out"  # no case may create it
    compile_ = ["compile", "-o", out, "--input-type", "fixed<8,3>"]
    cases = []

    # --- truncations of every format
    mlp = _mlp(tmp / "good")
    cut_json = _truncate(mlp, tmp / "cut_json" / mlp.name)
    shutil.copy(mlp.with_name(f"{mlp.stem}_weights.h5"), cut_json.parent)
    cases.append(("truncated json", "qir", ["compile", cut_json, *compile_[1:]], "invalid JSON"))
    cut_h5 = tmp / "cut_h5" / mlp.name
    cut_h5.parent.mkdir()
    shutil.copy(mlp, cut_h5)
    _truncate(mlp.with_name(f"{mlp.stem}_weights.h5"), cut_h5.with_name(f"{mlp.stem}_weights.h5"))
    cases.append(("truncated weights h5", "qir", ["compile", cut_h5, *compile_[1:]], "truncated or corrupt"))
    v3 = DATA / "qkeras_v3_small"
    cases.append(("truncated full .h5", "qir", ["compile", _truncate(v3 / "model.h5", tmp / "cut" / "model.h5"),
                                                *compile_[1:]], "truncated or corrupt"))
    cases.append(("truncated .keras", "qir", ["compile", _truncate(v3 / "model.keras", tmp / "cut" / "model.keras"),
                                              *compile_[1:]], "truncated or corrupt"))
    onnx_src = DATA / "three_layer_keras_onnx" / "three_layer_keras.onnx"
    cases.append(("truncated onnx", "qir", ["compile", _truncate(onnx_src, tmp / "cut" / "m.onnx"), *compile_[1:]],
                  "truncated or corrupt"))
    (tmp / "net.mlir").write_text(NET)
    np.save(tmp / "x.npy", np.array([[1.0, -0.5]]))
    cut_ir = tmp / "cut.mlir"
    cut_ir.write_text(NET[: NET.index('"fc1"') + 2] + "a" * 4000)  # cut inside a string literal
    cases.append(("ir cut in a string (eval)", "qir", ["eval", cut_ir, "--inputs", tmp / "x.npy", "-o",
                                                        tmp / "y.npy"], "unterminated or malformed string"))
    cases.append(("ir cut in a string (qir-opt)", "qir-opt", [cut_ir, "-o", tmp / "o.mlir"],
                  "unterminated or malformed string"))
    cases.append(("ir cut mid-op", "qir-opt", [_truncate(tmp / "net.mlir", tmp / "cut2.mlir", 0.6)], "invalid IR"))
    cases.append(("truncated npy", "qir", ["eval", tmp / "net.mlir", "--inputs",
                                           _truncate(tmp / "x.npy", tmp / "xcut.npy", 0.9), "-o", tmp / "y.npy"],
                  "truncated"))

    # --- bombs: declared sizes far beyond the bytes in the file
    bomb = _weights_with(tmp, "h5bomb", lambda g, k: g.create_dataset(k, shape=(40000, 40000), dtype="f4",
                                                                      chunks=(100, 100)))
    cases.append(("h5 dataset 40000x40000", "qir", ["compile", bomb, *compile_[1:]], "declares shape [40000, 40000]"))
    big_in = tmp / "bigin" / mlp.name
    big_in.parent.mkdir()
    cfg = json.loads(mlp.read_text())
    for layer in cfg["config"]["layers"]:
        if "batch_input_shape" in layer["config"]:
            layer["config"]["batch_input_shape"] = [None, 10**9]
    big_in.write_text(json.dumps(cfg))
    shutil.copy(mlp.with_name(f"{mlp.stem}_weights.h5"), big_in.parent)
    cases.append(("keras input [None, 1e9]", "qir", ["compile", big_in, *compile_[1:]], "1000000000 elements"))

    def big_onnx_input(m):
        m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 10**9
    cases.append(("onnx input [N, 1e9]", "qir", ["compile", _onnx_variant(tmp, "big.onnx", big_onnx_input),
                                                 *compile_[1:]], "1000000000 elements"))
    keras_bomb = tmp / "zipbomb" / "model.keras"
    keras_bomb.parent.mkdir()
    with zipfile.ZipFile(v3 / "model.keras") as src, zipfile.ZipFile(keras_bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", src.read("config.json"))
        zf.writestr("metadata.json", src.read("metadata.json"))
        zf.writestr("model.weights.h5", bytes(48 << 20))  # 48 MB of zeros in ~50 kB
    cases.append((".keras zip bomb", "qir", ["compile", keras_bomb, *compile_[1:]], "implausibly large"))
    cases.append(("npy header 1e12 rows", "qir", ["eval", tmp / "net.mlir", "--inputs",
                                                  _npy_with_header(tmp / "huge.npy", (10**12, 2)), "-o",
                                                  tmp / "y.npy"], "declares shape [1000000000000, 2]"))

    # --- files outside the model: links, external storage, virtual datasets
    ext_link = _weights_with(tmp, "extlink", lambda g, k: g.__setitem__(
        k, h5py.ExternalLink(str(secret / "other.h5"), "/data")))
    cases.append(("h5 external link", "qir", ["compile", ext_link, *compile_[1:]], "external link"))
    ext_raw = _weights_with(tmp, "extraw", lambda g, k: g.create_dataset(
        k, shape=(16, 32), dtype="f4", external=[(str(secret / "raw.bin"), 0, 16 * 32 * 4)]))
    cases.append(("h5 external raw storage", "qir", ["compile", ext_raw, *compile_[1:]], "external file"))

    def vds(g, k):
        layout = h5py.VirtualLayout(shape=(16, 32), dtype="f4")
        layout[:] = h5py.VirtualSource(str(secret / "other.h5"), "data", shape=(16, 32))
        g.create_virtual_dataset(k, layout)
    cases.append(("h5 virtual dataset", "qir", ["compile", _weights_with(tmp, "vds", vds), *compile_[1:]],
                  "virtual dataset"))

    def onnx_external(m):
        from onnx.external_data_helper import set_external_data

        t = m.graph.initializer[0]
        t.raw_data = onnx.numpy_helper.to_array(t).tobytes()
        t.ClearField("float_data")
        set_external_data(t, "../secret/raw.bin")
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
    cases.append(("onnx external data outside", "qir", ["compile", _onnx_variant(tmp / "o", "ext.onnx", onnx_external),
                                                        *compile_[1:]], "outside the model's folder"))

    keras_link = tmp / "keraslink" / "model.keras"
    keras_link.parent.mkdir()
    inner = tmp / "keraslink" / "w.h5"
    with zipfile.ZipFile(v3 / "model.keras") as src:
        inner.write_bytes(src.read("model.weights.h5"))
        with h5py.File(inner, "r+") as f:
            f["layers/extra"] = h5py.ExternalLink(str(secret / "other.h5"), "/data")
        with zipfile.ZipFile(keras_link, "w") as zf:
            zf.writestr("config.json", src.read("config.json"))
            zf.writestr("metadata.json", src.read("metadata.json"))
            zf.writestr("model.weights.h5", inner.read_bytes())
    inner.unlink()
    cases.append((".keras weights with an external link", "qir", ["compile", keras_link, *compile_[1:]],
                  "(model.weights.h5): refusing the HDF5 file: 'layers/extra' is an external link"))

    # --- deep nesting
    deep_json = tmp / "deep" / "deep.json"
    deep_json.parent.mkdir()
    deep_json.write_text("[" * 100000 + "]" * 100000)
    cases.append(("deep json model", "qir", ["compile", deep_json, *compile_[1:]], "nested 100000 levels"))
    deep_cfg = tmp / "deep" / "prec.json"
    deep_cfg.write_text('{"default": ' + "[" * 50000 + "]" * 50000 + "}")
    cases.append(("deep precision config", "qir", ["compile", mlp, *compile_[1:], "--precision-config", deep_cfg],
                  "nested 50001 levels"))
    deep_ir = tmp / "deep.mlir"
    deep_ir.write_text('"builtin.module"() ({\n}) {a = ' + "[" * 5000 + "]" * 5000 + "} : () -> ()\n")
    cases.append(("deep ir (qir-opt)", "qir-opt", [deep_ir], "levels deep"))
    cases.append(("deep ir (eval)", "qir", ["eval", deep_ir, "--inputs", tmp / "x.npy", "-o", tmp / "y.npy"],
                  "levels deep"))
    bad8 = tmp / "bad8.mlir"
    bad8.write_bytes(NET.encode()[:40] + b"\xff\xfe" + NET.encode()[40:])
    cases.append(("non-utf8 ir (qir-opt)", "qir-opt", [bad8], "not UTF-8"))
    cases.append(("non-utf8 ir (eval)", "qir", ["eval", bad8, "--inputs", tmp / "x.npy", "-o", tmp / "y.npy"],
                  "not UTF-8"))

    # --- ONNX opset beyond the onnx package; nonsensical pass options
    def opset99(m):
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = 99
    cases.append(("onnx opset 99", "qir", ["compile", _onnx_variant(tmp, "op99.onnx", opset99), *compile_[1:]],
                  "opset 99"))
    for opt in ("latency=0", "max-depth=0", "max-depth=-1"):
        cases.append((f"qir-pipeline{{{opt}}}", "qir-opt", [tmp / "net.mlir", "-p", f"qir-pipeline{{{opt}}}"],
                      f"{opt} is not a positive"))
    cases.append(("compile --pipeline latency=0", "qir", [*["compile", mlp], *compile_[1:], "--pipeline",
                                                          "qir-infer-widths,qir-lower-dense,qir-pipeline{latency=0}"],
                  "latency=0 is not a positive"))
    return cases


# ------------------------------------------------------------------------------- input arrays
def _bad_inputs(tmp: Path, n: int = 2) -> list[tuple[str, Path, str]]:
    """Bad inputs files for a model with one input of shape (n,) and type fixed<8,3>."""
    d = tmp / "inputs"
    d.mkdir()

    def save(name, arr, **kw):
        np.save(d / name, arr, **kw)
        return d / name

    def row(first):
        return np.array([[first] + [0.0] * (n - 1)])

    pk = d / "pickle.npy"
    pk.write_bytes(pickle.dumps([[1.0, 0.5]]))
    z = d / "wrong.npz"
    np.savez(z, a=np.zeros((1, n)), b=np.zeros((1, n)))
    return [
        ("complex", save("c.npy", np.zeros((1, n), complex)), "complex"),
        ("string", save("s.npy", np.array([["1"] * n])), "string"),
        ("datetime", save("t.npy", np.zeros((1, n), "datetime64[s]")), "datetime"),
        ("bool", save("b.npy", np.ones((1, n), bool)), "bool"),
        ("object", save("o.npy", np.array([[None] * n], dtype=object), allow_pickle=True), "object"),
        ("structured", save("r.npy", np.zeros((1, n), [("a", "f8"), ("b", "f8")])), "structured"),
        ("pickle", pk, "pickles and text files are refused"),
        ("npz with two arrays", z, "expected arrays named x"),
        ("nan", save("nan.npy", row(np.nan)), "NaN"),
        ("inf", save("inf.npy", row(np.inf)), "NaN or infinite"),
        ("off grid", save("g.npy", row(0.01)), "not on the grid"),
        ("out of range", save("big.npy", row(40.0)), "outside the range"),
        ("wrong shape", save("w.npy", np.zeros((1, n + 1))), f"expects shape (N, {n})"),
        ("1-d", save("w1.npy", np.zeros(n)), f"expects shape (N, {n})"),
        ("header 1e12 rows", _npy_with_header(d / "huge.npy", (10**12, n)), f"declares shape [1000000000000, {n}]"),
    ]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A small compiled design (for qir sim / qir report / data-loss cases)."""
    d = tmp_path_factory.mktemp("compiled")
    model = _mlp(d / "model")
    r = subprocess.run([str(BIN / "qir"), "compile", str(model), "-o", str(d / "out"), "--input-type", "fixed<8,3>"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d / "out"


def test_hostile_files_are_one_line_errors(tmp_path):
    """Every hostile/broken model, IR and inputs file: exit 1, one error line, no output left."""
    cases = _build_cases(tmp_path)
    for name, path, needle in _bad_inputs(tmp_path):
        cases.append((f"eval inputs: {name}", "qir", ["eval", tmp_path / "net.mlir", "--inputs", path, "-o",
                                                      tmp_path / "y.npy"], needle))
    results = run_capped([(tool, argv) for _, tool, argv, _ in cases])
    for (name, _, _, needle), res in zip(cases, results):
        assert_clean_error(res, needle, name)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "o.mlir").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers


def test_sim_uses_the_same_input_loader(compiled, tmp_path):
    """qir sim refuses the same inputs with the same line as qir eval (before any simulator runs)."""
    (tmp_path / "net.mlir").write_text(NET)
    bad = _bad_inputs(tmp_path, 16)
    cases = [("qir", ["sim", compiled, "--inputs", p, "-o", tmp_path / "y.npy"]) for _, p, _ in bad]
    for (name, _, needle), res in zip(bad, run_capped(cases)):
        assert_clean_error(res, needle, name)
    assert not (tmp_path / "y.npy").exists()


def test_evaluate_real_checks_inputs():
    from qir.errors import QirError
    from qir.interp import evaluate_real
    from qir.ir import parse_module

    module = parse_module(NET)
    with pytest.raises(QirError, match="complex"):
        evaluate_real(module, [np.zeros((1, 2), complex)])
    with pytest.raises(QirError, match="bool"):
        evaluate_real(module, [np.ones((1, 2), bool)])
    (y,), _ = evaluate_real(module, [np.array([[1.0, 0.5]])])
    assert y.shape == (1, 2)


# ------------------------------------------------------------------------------- data loss
def _run(tool, *args, **kw):
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, **kw)


def test_compile_never_deletes_user_files(compiled, tmp_path):
    model = _mlp(tmp_path / "model")
    args = ["--input-type", "fixed<8,3>"]
    # a folder with a user's file is refused, the file kept
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    r = _run("qir", "compile", model, "-o", user, *args)
    assert r.returncode == 1 and "notes.txt" in r.stderr and "Traceback" not in r.stderr
    assert (user / "notes.txt").read_text() == "mine" and sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    # a previous qir output with a user's file added (anywhere) is refused as well
    out = tmp_path / "out"
    shutil.copytree(compiled, out)
    (out / "rtl" / "my_wrapper.v").write_text("module w; endmodule\n")
    r = _run("qir", "compile", model, "-o", out, *args)
    assert r.returncode == 1 and "rtl/my_wrapper.v" in r.stderr
    assert (out / "rtl" / "my_wrapper.v").exists()
    # qir's own output (plus the sim/ build cache) is replaced
    (out / "rtl" / "my_wrapper.v").unlink()
    (out / "sim" / "verilator").mkdir(parents=True)
    (out / "sim" / "verilator" / "cache.o").write_bytes(b"x")
    (out / "net.mlir").write_text("stale")
    r = _run("qir", "compile", model, "-o", out, *args)
    assert r.returncode == 0, r.stderr
    assert "qir.model" in (out / "net.mlir").read_text()
    assert not (out / "sim").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # the current folder is never the output folder (it would be swapped away under the shell)
    (tmp_path / "here").mkdir()
    r = _run("qir", "compile", model, "-o", ".", *args, cwd=tmp_path / "here")
    assert r.returncode == 1 and "the current folder" in r.stderr and (tmp_path / "here").is_dir()
    # a plain file as -o is refused, not replaced
    f = tmp_path / "file.txt"
    f.write_text("keep")
    r = _run("qir", "compile", model, "-o", f, *args)
    assert r.returncode == 1 and f.read_text() == "keep"


def test_failed_compile_keeps_the_previous_output(compiled, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(compiled, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = _run("qir", "compile", _mlp(tmp_path / "m"), "-o", out, "--input-type", "fixed<8,3>",
             "--pipeline", "qir-pipeline{latency=0}")
    assert r.returncode == 1
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_qir_opt_in_place(tmp_path):
    x = tmp_path / "x.mlir"
    x.write_text(NET)
    # an error (bad pass option) leaves X as it was, and no temporary file
    r = _run("qir-opt", x, "-o", x, "-p", "qir-pipeline{latency=0}")
    assert r.returncode == 1 and x.read_text() == NET
    # invalid IR: no output file at all (not an empty one)
    bad = tmp_path / "bad.mlir"
    bad.write_text("qir.model @m {\n  %0 = qir.bogus\n}\n")
    r = _run("qir-opt", bad, "-o", tmp_path / "new.mlir")
    assert r.returncode == 1 and not (tmp_path / "new.mlir").exists()
    # success in place
    r = _run("qir-opt", x, "-o", x, "-p", "qir-infer-widths")
    assert r.returncode == 0, r.stderr
    assert "qir.model @net" in x.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mlir", "x.mlir"]


def test_eval_and_import_outputs_are_atomic(tmp_path):
    net = tmp_path / "net.mlir"
    net.write_text(NET)
    y = tmp_path / "y.npy"
    y.write_bytes(b"previous")
    np.save(tmp_path / "bad.npy", np.array([[0.01, 0.0]]))
    r = _run("qir", "eval", net, "--inputs", tmp_path / "bad.npy", "-o", y)
    assert r.returncode == 1 and y.read_bytes() == b"previous"
    np.save(tmp_path / "x.npy", np.array([[1.0, 0.5]]))
    r = _run("qir", "eval", net, "--inputs", tmp_path / "x.npy", "-o", y)
    assert r.returncode == 0, r.stderr
    assert np.load(y).shape == (1, 2)
    r = _run("qir", "import", tmp_path / "nothing.json", "-o", tmp_path / "n.mlir")
    assert r.returncode == 1 and not (tmp_path / "n.mlir").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_report_into_a_closed_pipe(compiled, tmp_path):
    """``qir report --json | head``: the reader leaves early; no internal error, no traceback."""
    (tmp_path / "net.mlir").write_text(NET)
    for cmd in (["qir", "report", compiled, "--json"], ["qir-opt", tmp_path / "net.mlir"]):
        p = subprocess.Popen([str(BIN / cmd[0]), *map(str, cmd[1:])], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.close()  # the reader is gone before the tool writes
        err = p.stderr.read().decode()
        rc = p.wait(timeout=120)
        assert err == "", (cmd, err)
        assert rc == 141, cmd
    r = subprocess.run(f"'{BIN / 'qir'}' report '{compiled}' --json | head -c 1", shell=True, capture_output=True,
                       text=True, timeout=120)
    assert r.stdout == "{" and r.stderr == ""


@pytest.mark.parametrize("op,inputs", [
    ("ConstantOfShape", [np.array([100000, 100000])]),
    ("Expand", [np.ones(1, np.float32), np.array([100000, 100000])]),
    ("Tile", [np.ones((2, 2), np.float32), np.array([100000, 100000])]),
    ("Range", [np.array(0), np.array(10**12), np.array(1)]),
])
def test_onnx_constant_folding_is_bounded(op, inputs):
    """Folding a constant-building node checks the size before numpy allocates it."""
    from qir.frontends.onnx_fold import fold

    from qir.errors import QirError

    node = onnx.helper.make_node(op, [f"i{k}" for k in range(len(inputs))], ["y"])
    with pytest.raises(QirError, match="elements, limit"):
        fold("onnx", node, 17, inputs, [False] * len(inputs), "m.onnx: node y")


def test_every_built_tensor_is_bounded():
    """``tensor_of`` (all frontends build their types with it) refuses a runaway shape, e.g. from
    a huge padding or a shape constant, before anything is sized by it."""
    from qir.dialect import tensor_of
    from qir.errors import QirError
    from qir.fixed import Fixed

    assert tensor_of(Fixed(8, 3), [4, 0]).get_shape() == (4, 0)
    with pytest.raises(QirError, match="10000000000 elements"):
        tensor_of(Fixed(8, 3), [100000, 100000])
