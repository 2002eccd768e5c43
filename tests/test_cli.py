"""The command line as users see it: exit codes, one-line errors, no tracebacks, no leftovers."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA = ROOT / "tests" / "data"


def run(tool, *args, cwd=None):
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(r, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(("qir: error:", "qir-opt: error:")), r.stderr
    for n in needles:
        assert n in last, last


NET = """qir.model @net {
  %0 = qir.input "x" {layer = "in"} : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<11,3>>
  %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<11,3>>
  %3 = qir.quantize %2 rounding "rnd_conv" overflow "sat" {layer = "relu1"} : tensor<2x!qir.fixed<11,3>> -> tensor<2x!qir.ufixed<4,1>>
  qir.output %3 : tensor<2x!qir.ufixed<4,1>>
}
"""


def test_eval_and_trace(tmp_path):
    (tmp_path / "net.mlir").write_text(NET)
    x = np.array([[1.0, -0.5], [3.96875, -4.0], [0.0, 0.03125]])
    np.save(tmp_path / "x.npy", x)
    r = run("qir", "eval", tmp_path / "net.mlir", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
            "--trace", tmp_path / "trace")
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npy")
    # float64 reference of the same network: x @ W, relu, round half to even on a 1/8 grid, saturate
    fc1 = x @ (np.array([[1, -2], [3, 4]]) / 8)
    expect = np.clip(np.round(np.maximum(fc1, 0) * 8) / 8, 0, 15 / 8)
    assert np.array_equal(y, expect)
    assert sorted(p.name for p in (tmp_path / "trace").iterdir()) == ["fc1.npy", "in.npy", "relu1.npy"]
    assert np.array_equal(np.load(tmp_path / "trace" / "fc1.npy"), fc1)


@pytest.mark.parametrize("x,needle", [
    ([[0.01, 0.0]], "not on the grid of fixed<8,3>"),
    ([[4.0, 0.0]], "outside the range of fixed<8,3>"),
    ([[1.0, 0.0, 0.0]], "expects shape (N, 2)"),
])
def test_eval_bad_inputs(tmp_path, x, needle):
    (tmp_path / "net.mlir").write_text(NET)
    np.save(tmp_path / "x.npy", np.array(x))
    r = run("qir", "eval", tmp_path / "net.mlir", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_one_line_error(r, needle)
    assert not (tmp_path / "y.npy").exists()


def test_nonsense_ir(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text("this is { not IR\n")
    np.save(tmp_path / "x.npy", np.zeros((1, 2)))
    r = run("qir", "eval", bad, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_one_line_error(r, str(bad), "invalid IR")
    r = run("qir-opt", bad)
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_pickled_npy_is_refused(tmp_path):
    (tmp_path / "net.mlir").write_text(NET)
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = run("qir", "eval", tmp_path / "net.mlir", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_one_line_error(r, "x.npy")


def test_bad_type_string():
    r = run("qir", "import", DATA / "qkeras_3layer" / "qkeras_3layer.json", "--input-type", "fixed<16>")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "fixed<W,I>" in r.stderr


def test_opt_roundtrip_byte_identical(tmp_path):
    (tmp_path / "net.mlir").write_text(NET)
    custom = run("qir-opt", tmp_path / "net.mlir").stdout
    (tmp_path / "c.mlir").write_text(custom)
    generic = run("qir-opt", tmp_path / "c.mlir", "--print-op-generic").stdout
    (tmp_path / "g.mlir").write_text(generic)
    back = run("qir-opt", tmp_path / "g.mlir").stdout
    assert custom and back == custom


@pytest.mark.parametrize("spec, needle", [
    ("qir-nope", "Unrecognized passes"),
    ("qir-lower-dense{stile=mac}", '"stile"'),
    ("qir-pipeline{max-depth=abc}", "Incompatible types"),
    ("qir-lower-dense{style=auto layers=fc1:mac}", 'layers="fc1:mac;fc2:xnor"'),  # unquoted ':'
])
def test_bad_pass_pipeline_is_one_line(tmp_path, spec, needle):
    (tmp_path / "net.mlir").write_text(NET)
    assert_one_line_error(run("qir-opt", tmp_path / "net.mlir", "-p", spec), "bad pass pipeline", needle)
    r = run("qir", "compile", DATA / "qkeras_3layer" / "qkeras_3layer.json", "-o", tmp_path / "out",
            "--input-type", "fixed<16,6>", "--softmax", "none", "--pipeline", spec)
    assert_one_line_error(r, "bad pass pipeline", needle)
    assert not (tmp_path / "out").exists()


def test_quoted_per_layer_styles(tmp_path):
    (tmp_path / "net.mlir").write_text(NET)
    r = run("qir-opt", tmp_path / "net.mlir", "-p", 'qir-infer-widths,qir-lower-dense{style=cmvm layers="fc1:mac"}')
    assert r.returncode == 0, r.stderr
    assert 'style "mac"' in r.stdout or '"mac"' in r.stdout


@pytest.mark.parametrize("stem", ["wire", "output", "module", "3layer"])
def test_compile_a_model_file_named_like_a_verilog_keyword(tmp_path, stem):
    """Regression: the top module name comes from the file name; ``wire.json`` used to fail
    because ``wire`` is a Verilog keyword (qir.flow had its own identifier legalizer)."""
    import shutil

    from mlp_models import INPUT_TYPE, write_mlp

    src = write_mlp(tmp_path / "src", "ternary")
    shutil.copy(src, tmp_path / f"{stem}.json")
    shutil.copy(src.with_name("ternary_mlp_weights.h5"), tmp_path / f"{stem}_weights.h5")
    out = tmp_path / "out"
    r = run("qir", "compile", tmp_path / f"{stem}.json", "-o", out, "--input-type", INPUT_TYPE)
    assert r.returncode == 0, r.stderr
    import json

    top = json.loads((out / "report.json").read_text())["top"]
    assert top != stem and stem in top and top[0].isalpha()
    assert f"module {top}(" in (out / "rtl" / f"{top}.v").read_text()


def test_compile_command_line_flushes_before_its_fast_exit(tmp_path):
    """``qir compile`` from its own command line ends with ``os._exit`` (qir.cli._exit_now, no
    interpreter teardown): its summary line still reaches a pipe, the exit status is 0 and the
    output directory is complete."""
    from mlp_models import INPUT_TYPE, write_mlp

    src = write_mlp(tmp_path / "src", "ternary")
    out = tmp_path / "out"
    r = run("qir", "compile", src, "-o", out, "--input-type", INPUT_TYPE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("qir: compiled ") and r.stdout.endswith("\n")
    assert (out / "report.json").is_file() and (out / "rtl").is_dir()
