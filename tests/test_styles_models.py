"""Every dense lowering style on every shared dense model, simulated against the interpreter.

The default (automatic) compile of each model is checked elsewhere (tests/test_e2e.py,
tests/test_styles_rtl.py, tests/test_frontend_onnx.py); here each explicit style (``mac``:
multipliers; ``cmvm``: CSD adder graphs) is compiled through ``qir compile --pipeline`` and run on
every test vector in Verilator and on 200 in Icarus.  The ``ternary``/``po2``/``xnor`` styles only
apply to matching weights (the verifier rejects them elsewhere), so the binary/ternary MLPs of
tests/mlp_models.py and the po2 first layer of qkeras_mnist_dense cover them (auto picks them).

Also here: the multiplier check of the default compile at Yosys's coarse level (no ``$mul`` or
``$macc`` cell can reach a DSP), which the ``mac`` style must fail, and a full ``synth_xilinx`` of
qkeras_3layer (no DSP, the instant estimate within 10% of the LUT count), and both Yosys flows
(xilinx, ecp5) on a small MLP.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"

MODELS = {
    "qkeras_3layer": (DATA / "qkeras_3layer" / "qkeras_3layer.json",
                      ["--input-type", "fixed<16,6>"]),
    "qkeras_mnist_dense": (DATA / "qkeras_mnist_dense" / "qkeras_mnist_dense.json",
                           ["--input-type", "ufixed<9,1>"]),
    "keras_3layer": (DATA / "keras_3layer" / "KERAS_3layer.json",
                     ["--precision", "fixed<18,8>", "--input-type", "fixed<16,6>"]),
    "three_layer_keras_onnx": (DATA / "three_layer_keras_onnx" / "three_layer_keras.onnx",
                               ["--precision", "fixed<18,8>", "--input-type", "fixed<16,6>"]),
}


def _pipeline(style: str) -> str:
    return (f"qir-infer-widths,qir-lower-conv{{style={style}}},qir-lower-dense{{style={style}}},"
            "qir-lower-cmvm,qir-pipeline{max-depth=5}")


def qir(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "qir"), *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """compiled(name, style) -> OUTDIR, each (model, style) compiled once per module."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("styles")

    def get(name: str, style: str | None) -> Path:
        if (name, style) not in cache:
            cache[name, style] = _compile(root, name, style)
        return cache[name, style]
    return get


def _compile(root: Path, name: str, style: str | None) -> Path:
    path, opts = MODELS[name]
    out = root / f"{name}_{style or 'default'}"
    extra = ["--pipeline", _pipeline(style)] if style else []
    r = qir("compile", path, "-o", out, *opts, "--softmax", "none", *extra)
    assert r.returncode == 0, r.stderr
    return out


def _mismatches(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) vectors, \w+, latency \d+ cycles, (\d+) mismatches", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name, style", [
    ("qkeras_3layer", "mac"), ("qkeras_3layer", "cmvm"),
    ("qkeras_mnist_dense", "mac"), ("qkeras_mnist_dense", "cmvm"),
    ("keras_3layer", "mac"), ("three_layer_keras_onnx", "cmvm"),
])
def test_style_bit_exact_all_vectors(tmp_path, compiled, name, style):
    out = compiled(name, style)
    lowered = (out / "lowered.mlir").read_text()
    if style == "mac":
        assert '"mac"' in lowered and "qir.addergraph" not in lowered
    else:
        assert "qir.addergraph" in lowered and '"mac"' not in lowered
    x = np.load(MODELS[name][0].parent / "vectors.npz")["x"]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "x200.npy", x[:200])
    r = qir("sim", out, "--inputs", tmp_path / "x.npy", "--simulator", "verilator", "-o", tmp_path / "yv.npy")
    assert r.returncode == 0, r.stderr
    assert _mismatches(r.stdout) == (len(x), 0)
    r = qir("sim", out, "--inputs", tmp_path / "x200.npy", "--simulator", "icarus", "-o", tmp_path / "yi.npy")
    assert r.returncode == 0, r.stderr
    assert _mismatches(r.stdout) == (200, 0)
    # the simulators' outputs agree with the interpreter's (qir eval) on the same vectors
    r = qir("eval", out / "net.mlir", "--inputs", tmp_path / "x200.npy", "-o", tmp_path / "ref.npy")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "yi.npy"), np.load(tmp_path / "ref.npy"))
    assert np.array_equal(np.load(tmp_path / "yv.npy")[:200], np.load(tmp_path / "ref.npy"))


def _yosys() -> str:
    y = os.environ.get("QIR_YOSYS") or shutil.which("yosys")
    if not y:
        pytest.skip("yosys not installed")
    return y


def _coarse_cells(y: str, out: Path, top: str) -> dict[str, int]:
    """Cell counts after Yosys's coarse synthesis (where DSP/multiplier inference starts from)."""
    files = " ".join(str(f) for f in sorted((out / "rtl").glob("*.v")))
    stat = out.parent / f"{out.name}.coarse.txt"
    r = subprocess.run([y, "-q", "-p", f"read_verilog {files}; hierarchy -top {top}; proc; flatten; opt -fast; "
                        f"wreduce; alumacc; tee -q -o {stat} stat"], cwd=out.parent, capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, r.stderr
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\$\w+)\s+(\d+)\s*$", stat.read_text(), re.M)}


@pytest.mark.slow
def test_mnist_default_has_no_multipliers(compiled):
    """qkeras_mnist_dense's po2 weights become shifts: no $mul/$macc cell, while the mac style has them."""
    y = _yosys()
    cells = _coarse_cells(y, compiled("qkeras_mnist_dense", None), "qkeras_mnist_dense")
    assert cells.get("$alu", 0) > 1000
    assert not {"$mul", "$macc"} & set(cells), cells
    mac = _coarse_cells(y, compiled("qkeras_mnist_dense", "mac"), "qkeras_mnist_dense")
    assert mac.get("$mul", 0) + mac.get("$macc", 0) > 0, mac


@pytest.mark.heavy
def test_qkeras_3layer_synthesis_no_dsp_and_estimate(compiled):
    """Full synth_xilinx (xcup) of the default compile: no DSP, 5 to 7 cycles, estimate within 10%."""
    _yosys()
    out = compiled("qkeras_3layer", None)
    r = qir("report", out, "--json", "--synth", "xilinx")
    assert r.returncode == 0, r.stderr
    import json

    rep = json.loads(r.stdout)
    syn = rep["synth_xilinx"]
    assert syn["dsp"] == 0 and syn["lut"] > 10000
    assert 5 <= rep["latency_cycles"] <= 7
    est = rep["estimate"]["luts_estimate"]
    assert abs(est - syn["lut"]) <= 0.10 * syn["lut"], (est, syn["lut"])


@pytest.mark.heavy
def test_both_synthesis_flows_on_a_small_mlp(tmp_path):
    """``qir report --synth xilinx,ecp5`` on the ternary MLP: both flows run and are parsed."""
    import json

    from mlp_models import INPUT_TYPE, write_mlp

    _yosys()
    out = tmp_path / "out"
    r = qir("compile", write_mlp(tmp_path / "m", "ternary"), "-o", out, "--input-type", INPUT_TYPE)
    assert r.returncode == 0, r.stderr
    r = qir("report", out, "--json", "--synth", "xilinx,ecp5")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    for flow in ("synth_xilinx", "synth_ecp5"):
        syn = rep[flow]
        assert syn["dsp"] == 0 and syn["lut"] > 100 and syn["ff"] > 0, (flow, syn)
