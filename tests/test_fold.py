"""Folded layers (issue #12, ``qir.folding``, ``rtl/fold.py``): a ``reuse = R`` attribute on a
layer computes it over R cycles.  Estimates, interpreter, and RTL == interpreter (stream mode at
full rate and under random stalls, parallel mode through ``in_ready``) on corner vectors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlp_models
import numpy as np
import pytest
import random_models as rm
from qkeras_writer import dense, q, write_model

from qir.dialect import DenseOp
from qir.fixed import Fixed
from qir.flow import compile_model, import_model
from qir.folding import estimate, geometry
from qir.interp import evaluate
from qir.ir import layer_of, parse_module, print_module

QBITS = dict(symmetric=0, keep_negative=True, alpha=1, use_stochastic_rounding=False, qnoise_factor=1.0)


def _set_reuse(module, reuse) -> str:
    from xdsl.dialects.builtin import IntegerAttr, i64

    for op in module.walk():
        if op.name in ("qir.dense", "qir.conv"):
            r = reuse.get(layer_of(op), 1) if isinstance(reuse, dict) else reuse
            if r > 1:
                op.attributes["reuse"] = IntegerAttr(r, i64)
    return print_module(module)


def _corner_model(d: Path) -> Path:
    """7 -> 3 -> 2: column 0 all min weights (min * min summed: the largest sum), column 1 all max,
    column 2 mixed; input fixed<8,1>; relu between; a po2 second layer."""
    k1 = np.array([[-1.0, 0.875, (-1) ** i * 0.5] for i in range(7)])
    k2 = np.array([[0.5, -2.0], [-1.0, 0.25], [2.0, 1.0]])
    layers = [dense("fc1", "x", k1, np.array([0.25, -0.5, 0.0]), q("quantized_bits", bits=4, integer=0, **QBITS),
                    q("quantized_bits", bits=6, integer=2, **QBITS), activation="relu"),
              dense("fc2", "fc1", k2, None, q("quantized_po2", bits=4, max_value=None, use_stochastic_rounding=False,
                                              quadratic_approximation=False, log2_rounding="rnd", qnoise_factor=1.0))]
    return write_model(d, "corner", (7,), layers)


def _corner_inputs(n_random: int = 12) -> np.ndarray:
    lo, hi, n = -128, 127, 7
    alt = np.arange(n) % 2
    rows = [np.full(n, lo), np.full(n, hi), np.zeros(n, dtype=int), np.where(alt, lo, hi), np.where(alt, hi, lo),
            np.full(n, 1), np.full(n, -1)]
    rows += list(np.random.default_rng(3).integers(lo, hi + 1, size=(n_random, n)))
    return np.asarray(rows) * 2.0 ** -7


def test_estimate_falls_with_reuse():
    m = parse_module("""qir.model @m {
      %0 = qir.input "x" : tensor<64x!qir.fixed<8,3>>
      %1 = qir.dense %0 weights(dense<100> : tensor<64x32xi32> : !qir.fixed<8,1>) {layer = "fc"} : tensor<64x!qir.fixed<8,3>> -> tensor<32x!qir.fixed<22,10>>
      qir.output %1 : tensor<32x!qir.fixed<22,10>>
    }""")
    op = next(o for o in m.walk() if isinstance(o, DenseOp))
    est = {R: estimate(op, R, "mac") for R in (1, 2, 4, 16, 64, 100)}
    assert [est[R]["cycles_per_beat"] for R in est] == list(est)
    assert est[2]["dsp"] == 2 * est[4]["dsp"] == 8 * est[16]["dsp"] == 16 * 64
    assert est[2]["lut"] > est[4]["lut"] > est[16]["lut"]
    assert est[2]["memory_bits"] == est[16]["memory_bits"] == 64 * 32 * 8  # weight 100 needs 8 bits
    assert est[100]["memory_bits"] == 100 * 32 * 8  # R > n_in: padded cycles still have ROM words
    assert geometry(64, 3) == (22, 3) and geometry(5, 7) == (1, 7)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="reuse must be an integer >= 1"):
            estimate(op, bad)


def test_folded_interpreter_equals_unfolded(tmp_path):
    js = _corner_model(tmp_path)
    net = import_model(js, input_type=Fixed.parse("fixed<8,1>"))
    x = (_corner_inputs() * 2 ** 7).astype(np.int64)
    ref = evaluate(net, [x]).outputs[0]
    from qir.flow import run_passes

    for R, op in ((5, "qir.mvu"), (3, "qir.muxgraph")):  # R > 4: a ROM; small R: muxgraph (test_muxgraph.py)
        folded = parse_module(_set_reuse(parse_module(print_module(net)), R))
        run_passes(folded, "qir-infer-widths,qir-lower-dense{style=auto},qir-lower-cmvm,qir-pipeline{max-depth=5}")
        assert op in print_module(folded)
        assert np.array_equal(np.asarray(evaluate(folded, [x]).outputs[0]), np.asarray(ref))


@pytest.mark.sim
@pytest.mark.parametrize("io, R", [("stream", 5), ("parallel", 5), ("stream", 8)])
def test_folded_rtl_corners(tmp_path, io, R):
    """The ROM form (R > 4; smaller R is muxgraph, test_muxgraph.py): R = 5 does not divide 7
    (padded cycle); R = 8 > 7 inputs: an idle cycle; stream: full rate and random stalls (qir sim
    checks II = R and the latency); parallel: in_ready, II = R."""
    js = _corner_model(tmp_path / "m")
    src = tmp_path / "folded.mlir"
    src.write_text(_set_reuse(import_model(js, input_type=Fixed.parse("fixed<8,1>")), R))
    out = tmp_path / "out"
    rep = compile_model(src, out, io=io)
    assert rep["ii_cycles"] == R
    if io == "parallel":
        assert {"name": "in_ready", "direction": "output", "width": 1, "type": None, "shape": None} in rep["ports"]
    np.save(tmp_path / "x.npy", _corner_inputs())
    r = subprocess.run([sys.executable, "-m", "qir.cli", "sim", str(out), "--inputs", str(tmp_path / "x.npy"),
                        "--simulator", "icarus"], capture_output=True, text=True)
    assert r.returncode == 0 and " 0 mismatches" in r.stdout + r.stderr, r.stdout + r.stderr
    est = json.loads(subprocess.run([sys.executable, "-m", "qir.cli", "report", str(out), "--json"],
                                    capture_output=True, text=True, check=True).stdout)["estimate"]
    folded = [lay for lay in est["layers"] if lay.get("reuse") == R]
    assert {lay["layer"] for lay in folded} == {"fc1", "fc2"} and est["memory_bits"] > 0


@pytest.mark.sim
def test_folded_parallel_cocotb_and_lint(tmp_path):
    """The generated cocotb bench presents each vector until in_ready; the Verilog is lint-clean
    and byte-identical across two compiles (R = 4: both layers multiplexed adder graphs)."""
    js = _corner_model(tmp_path / "m")
    src = tmp_path / "folded.mlir"
    src.write_text(_set_reuse(import_model(js, input_type=Fixed.parse("fixed<8,1>")), 4))
    a, b = tmp_path / "a", tmp_path / "b"
    compile_model(src, a)
    compile_model(src, b)
    va, vb = (sorted((d / "rtl").glob("*.v")) for d in (a, b))
    assert [f.read_bytes() for f in va] == [f.read_bytes() for f in vb]
    from qir.sim.tools import find_verilator

    lint = subprocess.run([str(find_verilator().exe), "--lint-only", "-Wall", "--top-module", "corner", str(va[0])],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr
    r = subprocess.run([sys.executable, "run_cocotb.py", "--simulator", "icarus"], cwd=a / "tb",
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["bnn", "ternary"])
def test_folded_mlp_stream(tmp_path, kind):
    """The binarized MLP (folded xnor with thresholds, folded ternary/po2 first layer) and the
    ternary MLP, every layer folded by 5 (non-divisors of 16 and 32), stream mode with stalls."""
    js = mlp_models.write_mlp(tmp_path / "m", kind)
    opts = {"precision": Fixed.parse(mlp_models.BNN_PRECISION)} if kind == "bnn" else {}
    src = tmp_path / "folded.mlir"
    src.write_text(_set_reuse(import_model(js, input_type=Fixed.parse(mlp_models.INPUT_TYPE), **opts), 5))
    out = tmp_path / "out"
    compile_model(src, out, io="parallel" if kind == "bnn" else "stream")
    low = (out / "lowered.mlir").read_text()
    assert ("reuse 5" in low) and ("qir.xnor" in low if kind == "bnn" else "qir.mvu" in low)
    np.save(tmp_path / "x.npy", mlp_models.random_inputs(24))
    r = subprocess.run([sys.executable, "-m", "qir.cli", "sim", str(out), "--inputs", str(tmp_path / "x.npy"),
                        "--simulator", "icarus"], capture_output=True, text=True)
    assert r.returncode == 0 and " 0 mismatches" in r.stdout + r.stderr, r.stdout + r.stderr
    rep = subprocess.run([sys.executable, "-m", "qir.cli", "report", str(out), "--html"], capture_output=True,
                         text=True)  # folded layers in the text and HTML reports (a folded xnor too)
    assert rep.returncode == 0 and "folded, reuse 5" in rep.stdout, rep.stdout + rep.stderr


def test_bad_reuse_is_one_error_line(tmp_path):
    src = tmp_path / "bad.mlir"
    src.write_text("""qir.model @m {
      %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
      %1 = qir.dense %0 weights(dense<[[1], [2]]> : tensor<2x1xi32> : !qir.fixed<4,1>) {layer = "fc", reuse = 0 : i64} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<11,4>>
      qir.output %1 : tensor<1x!qir.fixed<11,4>>
    }""")
    r = subprocess.run([sys.executable, "-m", "qir.cli", "compile", str(src), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and not (tmp_path / "o").exists()
    assert r.stderr.strip().count("\n") == 0 and "reuse must be an integer >= 1" in r.stderr, r.stderr


FOLDED_QUICK = (1, 5, 23)
FOLDED_SLOW = range(24, 64)


@pytest.mark.sim
@pytest.mark.parametrize("seed", FOLDED_QUICK)
def test_random_models_folded_icarus(tmp_path, seed):
    """Random models with a random R per layer (divisors and not): RTL == interpreter ==
    Fraction reference (``rm.check``); 23 was a folded-xnor bug (inverted XNOR constant)."""
    case = rm.generate(seed, reuse=True)
    assert case.reuse and max(case.reuse.values()) > 1
    r = rm.check(case, tmp_path, ("icarus",))
    assert r.status == "ok", f"{r.status}: {r.detail}\n{case.describe()}"


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("seed", FOLDED_SLOW)
def test_random_models_folded_icarus_slow(tmp_path, seed):
    case = rm.generate(seed, reuse=True)
    r = rm.check(case, tmp_path, ("icarus",))
    assert r.status in ("ok", "refused"), f"{r.status}: {r.detail}\n{case.describe()}"
    assert r.status == "ok" or "reuse" not in r.detail, r.detail


def test_generate_reuse_keeps_the_model():
    a, b = rm.generate(7), rm.generate(7, reuse=True)
    def model(c):  # the model without the reuse line and the pipeline (latency= grows by the R's)
        return [p for p in c.describe().split("\n  ") if not p.startswith(("reuse:", "pipeline:"))]
    assert model(a) == model(b)
    assert all(R in rm.REUSE_CHOICES for R in b.reuse.values())


@pytest.mark.sim
def test_folded_axi_stream(tmp_path):
    """``--axi-stream`` around a folded parallel core: s_axis_tready follows the core's in_ready
    (one sample every ii_cycles), nothing lost under random backpressure (cocotbext-axi)."""
    from qir.sim.axis_bench import run_axis

    js = _corner_model(tmp_path / "m")
    src = tmp_path / "folded.mlir"
    src.write_text(_set_reuse(import_model(js, input_type=Fixed.parse("fixed<8,1>")), 3))
    r = subprocess.run([str(Path(sys.executable).parent / "qir"), "compile", str(src), "-o", str(tmp_path / "out"),
                        "--axi-stream", "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "2 of 2 tests passed" in run_axis(tmp_path / "out", "icarus", n=60)
