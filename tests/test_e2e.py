"""End to end on the real QKeras jet tagger: model file -> Verilog -> two simulators, bit-exact."""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODEL = ROOT / "tests" / "data" / "qkeras_3layer"
OPTS = ["--input-type", "fixed<16,6>", "--softmax", "none"]


def qir(*args, cwd=None):
    return subprocess.run([str(BIN / "qir"), *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("jet") / "out"
    r = qir("compile", MODEL / "qkeras_3layer.json", "-o", out, *OPTS)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    v = np.load(MODEL / "vectors.npz")
    d = tmp_path_factory.mktemp("vec")
    np.save(d / "x.npy", v["x"])
    np.save(d / "x300.npy", v["x"][:300])
    return d, v


def test_layout_and_report(compiled):
    assert sorted(p.name for p in compiled.iterdir()) == [".qir-manifest", "lowered.mlir", "net.mlir",
                                                          "qkeras_3layer.core", "quartus", "report.json", "rtl", "tb",
                                                          "vivado"]
    report = json.loads((compiled / "report.json").read_text())
    assert report["top"] == "qkeras_3layer"
    assert report["latency_cycles"] >= 1
    ports = {p["name"]: p for p in report["ports"]}
    assert ports["in_data"]["width"] == 16 * 16 and ports["in_data"]["type"] == "fixed<16,6>"
    assert ports["out_valid"]["direction"] == "output"
    modules = []
    for v in (compiled / "rtl").glob("*.v"):
        modules += [ln.split()[1].split("(")[0] for ln in v.read_text().splitlines() if ln.startswith("module ")]
    assert len(modules) == len(set(modules)) and report["top"] in modules


def test_compile_is_deterministic(compiled, tmp_path):
    other = tmp_path / "elsewhere" / "again"
    r = qir("compile", MODEL / "qkeras_3layer.json", "-o", other, *OPTS)
    assert r.returncode == 0, r.stderr
    for sub in ("rtl", "tb", "vivado", "quartus"):
        a = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (compiled / sub).iterdir()}
        b = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (other / sub).iterdir()}
        assert a == b
    assert (compiled / "net.mlir").read_text() == (other / "net.mlir").read_text()
    assert (compiled / "qkeras_3layer.core").read_text() == (other / "qkeras_3layer.core").read_text()


def test_reference_matches_qkeras(compiled, vectors, tmp_path):
    d, v = vectors
    r = qir("eval", compiled / "net.mlir", "--inputs", d / "x.npy", "-o", tmp_path / "y.npy", "--trace", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert np.abs(np.load(tmp_path / "y.npy") - v["layer_output"]).max() <= 1e-5
    for name in ("relu1", "relu2", "relu3"):
        got = np.load(tmp_path / "t" / f"{name}.npy")
        assert np.mean(got == v[f"layer_{name}"]) >= 0.999


@pytest.mark.sim
def test_icarus_bit_exact(compiled, vectors, tmp_path):
    d, _ = vectors
    r = qir("sim", compiled, "--inputs", d / "x300.npy", "--simulator", "icarus", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr + r.stdout
    ref = tmp_path / "ref.npy"
    assert qir("eval", compiled / "net.mlir", "--inputs", d / "x300.npy", "-o", ref).returncode == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), np.load(ref))
    assert not any(p.name.startswith("sim") for p in (compiled / "rtl").iterdir())


@pytest.mark.sim
@pytest.mark.slow
def test_verilator_bit_exact_all_vectors(compiled, vectors, tmp_path):
    d, v = vectors
    r = qir("sim", compiled, "--inputs", d / "x.npy", "--simulator", "verilator", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr + r.stdout
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2000, 5)
    assert np.abs(y - v["layer_output"]).max() <= 1e-5


@pytest.mark.sim
def test_yosys_reads_rtl(compiled):
    yosys = shutil.which("yosys")
    if yosys is None:
        pytest.skip("yosys not installed (setup.sh installs it)")
    top = json.loads((compiled / "report.json").read_text())["top"]
    files = " ".join(str(p) for p in sorted((compiled / "rtl").glob("*.v")))
    r = subprocess.run([yosys, "-q", "-p", f"read_verilog {files}; hierarchy -check -top {top}; proc"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# --- bad input: one clear line, non-zero exit, no traceback, nothing left behind -------------------
def _bad_compile(tmp_path, model, *extra):
    out = tmp_path / "out"
    r = qir("compile", model, "-o", out, *OPTS, *extra)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("qir: error:")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    return last


def test_truncated_weights(tmp_path):
    data = (MODEL / "qkeras_3layer_weights.h5").read_bytes()
    (tmp_path / "m_weights.h5").write_bytes(data[: len(data) // 2])
    shutil.copy(MODEL / "qkeras_3layer.json", tmp_path / "m.json")
    last = _bad_compile(tmp_path, tmp_path / "m.json")
    assert "m_weights.h5" in last


def test_unknown_layer_class(tmp_path):
    cfg = json.loads((MODEL / "qkeras_3layer.json").read_text())
    cfg["config"]["layers"][2]["class_name"] = "QFancyLayer"
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    shutil.copy(MODEL / "qkeras_3layer_weights.h5", tmp_path / "m_weights.h5")
    last = _bad_compile(tmp_path, tmp_path / "m.json")
    assert "QFancyLayer" in last and "relu1" in last and "m.json" in last


def test_missing_input_type(tmp_path):
    out = tmp_path / "out"
    r = qir("compile", MODEL / "qkeras_3layer.json", "-o", out, "--softmax", "none")
    assert r.returncode != 0 and "--input-type" in r.stderr.strip().splitlines()[-1]
    assert not out.exists()


def test_existing_foreign_directory_is_not_clobbered(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    r = qir("compile", MODEL / "qkeras_3layer.json", "-o", out, *OPTS)
    assert r.returncode != 0 and (out / "thesis.tex").read_text() == "precious"


@pytest.mark.sim
def test_relative_paths(tmp_path, vectors):
    """OUTDIR given relative to the working directory, as users type it."""
    d, _ = vectors
    r = qir("compile", MODEL / "qkeras_3layer.json", "-o", "rel/out", *OPTS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = qir("sim", "rel/out", "--inputs", d / "x300.npy", "--simulator", "icarus", "-o", "y.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "y.npy").is_file()


def test_imported_ir_roundtrip_byte_identical(compiled, tmp_path):
    opt = str(BIN / "qir-opt")
    custom = subprocess.run([opt, str(compiled / "net.mlir")], capture_output=True, text=True, check=True).stdout
    assert custom == (compiled / "net.mlir").read_text()
    (tmp_path / "g.mlir").write_text(
        subprocess.run([opt, str(compiled / "net.mlir"), "--print-op-generic"], capture_output=True, text=True,
                       check=True).stdout)
    back = subprocess.run([opt, str(tmp_path / "g.mlir")], capture_output=True, text=True, check=True).stdout
    assert back == custom


@pytest.mark.sim
def test_verilator_lint_clean(compiled):
    from qir.sim.tools import tool_env

    top = json.loads((compiled / "report.json").read_text())["top"]
    files = sorted(str(p) for p in (compiled / "rtl").glob("*.v"))
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, *files],
                       capture_output=True, text=True, env=tool_env())
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]
