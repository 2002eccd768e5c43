"""``qir.stream_mvu`` (issue #12): a dense after a Flatten of a stream, consumed beat by beat.

Interpreter equality with the plain dense, the estimate (one formula for the planner and the
lowered op), the RTL bit-exact in Icarus (full rate and random stalls: ``qir sim``) for the
mac / po2 / ternary styles and several (chunks, output groups), Verilator + lint + deterministic
Verilog (slow), and a flatten wider than an Amaranth signal lowered without folding options.
"""
from __future__ import annotations

import numpy as np
import pytest
from qir.lowering import STREAM_PIPELINE
from sim_checks import lint_clean, sim_ok
from stream_mvu_models import (
    compile_twice_and_lint,
    lowered,
    mantissas,
    random_inputs,
    write_small_cnn,
)

from qir.dialect import DenseOp, shape_of
from qir.dialect.stream_ops import StreamMvuOp
from qir.flow import compile_model, import_model, parse_pipeline, run_passes
from qir.folding import estimate, stream_fold
from qir.interp import evaluate
from qir.ir import get_model, layer_of


def test_stream_fold():
    assert stream_fold(16, 128, 1) == (1, 1)
    assert stream_fold(16, 128, 5) == (5, 1)
    assert stream_fold(16, 128, 16) == (16, 1)
    assert stream_fold(16, 128, 40) == (16, 2)     # one input per cycle, two output groups
    assert stream_fold(3, 5, 1000) == (3, 5)       # at most one output per cycle


@pytest.mark.parametrize("kind,R", [("mac", 1), ("po2", 2), ("ternary", 6), ("mac", 15)])
def test_interpreter_equals_dense(tmp_path, kind, R):
    """The lowered model (qir.stream_mvu) equals the imported one (plain dense on the flattened
    vector) on corners and random vectors; the op's cost is the planner's estimate."""
    js = write_small_cnn(tmp_path, seed=R, kind=kind)
    net, low = lowered(js, R)
    sm = [o for o in low.walk() if isinstance(o, StreamMvuOp)]
    assert len(sm) == 1 and sm[0].style.data == kind and (sm[0].R, sm[0].G) == stream_fold(3, 5, R)
    assert "qir.collect" not in str(low)
    x = mantissas(random_inputs(16))
    assert np.array_equal(evaluate(get_model(net), [x]).outputs[0], evaluate(get_model(low), [x]).outputs[0])
    dense = next(o for o in import_model(js).walk() if isinstance(o, DenseOp))
    assert estimate(dense, R, beat=3) == sm[0].cost()  # one formula: before lowering and after


def test_estimate_falls_with_cycles_per_beat(tmp_path):
    dense = next(o for o in import_model(write_small_cnn(tmp_path, kind="mac", n_out=8)).walk()
                 if isinstance(o, DenseOp))
    luts = [estimate(dense, r, beat=3)["lut"] for r in (1, 3, 6, 24)]
    assert luts == sorted(luts, reverse=True) and luts[-1] < luts[0] / 3, luts
    assert [estimate(dense, r, beat=3)["cycles_per_beat"] for r in (1, 3, 6, 24)] == [1, 3, 6, 24]


@pytest.mark.sim
@pytest.mark.parametrize("kind,R", [("mac", 1), ("po2", 2), ("ternary", 3), ("mac", 6), ("po2", 15)])
def test_stream_mvu_icarus(tmp_path, kind, R):
    """Bit-exact in Icarus at full rate and under random valid gaps / ready stalls, the cycle
    model's II and latency measured (``qir sim``); R = 6, 15: output groups (2, 5)."""
    js = write_small_cnn(tmp_path / "m", seed=10 + R, kind=kind)
    out = tmp_path / "out"
    rep = compile_model(js, out, io="stream", reuse=R)
    low = (out / "lowered.mlir").read_text()
    rb, g = stream_fold(3, 5, R)
    assert f"reuse {rb} : i64 groups {g} : i64" in low and "qir.collect" not in low
    assert rep["ii_cycles"] >= 36 * rb * g
    sim_ok(out, random_inputs(5, seed=R), tmp_path)
    if R == 1:  # one chunk, one group: no zero-width counter may reach the Verilog (lint: ASCRANGE)
        lint_clean(out / "rtl" / f"{rep['top']}.v", rep["top"])


@pytest.mark.sim
def test_activation_after_flatten_icarus(tmp_path):
    """A QActivation between the Flatten and the dense moves onto the stream (a map before the
    qir.stream_mvu): no collect, bit-exact with stalls."""
    js = write_small_cnn(tmp_path / "m", seed=5, kind="mac", act_after_flatten=True)
    out = tmp_path / "out"
    compile_model(js, out, io="stream", reuse=2)
    low = (out / "lowered.mlir").read_text()
    assert "qir.stream_mvu" in low and "qir.collect" not in low
    sim_ok(out, random_inputs(4, seed=5), tmp_path)


@pytest.mark.sim
@pytest.mark.slow
def test_stream_mvu_verilator_lint_deterministic(tmp_path):
    """Verilator bit-exact (stalls too), ``verilator --lint-only -Wall`` clean, and the Verilog
    byte-identical when compiled again elsewhere."""
    js = write_small_cnn(tmp_path / "m", seed=3, kind="mac", shape=(5, 4, 3), filters=4, n_out=6)
    out = compile_twice_and_lint(js, tmp_path, "smvu", 9)
    sim_ok(out, random_inputs(6, shape=(5, 4, 3)), tmp_path, "verilator")


def test_wide_flatten_without_folding(tmp_path):
    """A flatten wider than an Amaranth signal (64 x 64 x 6 channels x 3 bits = 73,728 bits) is
    consumed beat by beat even without folding options (R = 1); before, one error line."""
    js = write_small_cnn(tmp_path, kind="mac", shape=(64, 64, 1), filters=6, n_out=2)
    low = import_model(js)
    run_passes(low, parse_pipeline(STREAM_PIPELINE))
    sm = [o for o in low.walk() if isinstance(o, StreamMvuOp)]
    assert len(sm) == 1 and (sm[0].R, sm[0].G) == (1, 1) and shape_of(sm[0].input.type) == (64, 64, 6)
    assert layer_of(sm[0]) == "fc1"


def test_target_ii_counts_beats(tmp_path):
    """qir-fold-auto: the stream dense processes 36 beats (cycles = 36 x R, at most C x n_out =
    15 per beat); a target II of 36 x 7 allows it R <= 7, and it takes the smallest-LUT R up to 7
    (the dominance rule: R = 3 here, smaller than R = 7 and faster)."""
    from qir.lowering.fold_auto import foldable_layers

    js = write_small_cnn(tmp_path / "m", kind="mac")
    net = import_model(js)
    run_passes(net, parse_pipeline("qir-infer-widths,qir-stream-conv,qir-stream-form"))
    lay = {layer_of(x.op): x for x in foldable_layers(net)[0]}
    assert lay["fc1"].beats == 36 and lay["fc1"].beat == 3 and lay["fc1"].max_reuse == 15
    rep = compile_model(js, tmp_path / "out", io="stream", target_ii=36 * 7)
    fc1 = next(r for r in rep["folding"]["layers"] if r["layer"] == "fc1")
    assert fc1["reuse"] == 3 and fc1["cycles"] == 36 * 3
    from qir.folding import estimate

    assert fc1["estimate"]["lut"] <= estimate(lay["fc1"].op, 7, lay["fc1"].style, beat=3)["lut"]


@pytest.mark.sim
@pytest.mark.parametrize("seed", [63, 77, 126, 39, 5])
def test_random_models_stream_icarus(tmp_path, seed):
    """Random models with ``--io stream`` and a random R per layer (``bench/fuzz.py --reuse --io
    stream``): the dense after the Flatten is a qir.stream_mvu (63: 2 chunks x 2 output groups,
    77: ternary, 126 and 39: a folded map after it, 39: a quantized relu after the Flatten, 5: a
    binary CNN, the xnor form with thresholds);
    RTL == interpreter == Fraction reference, at full rate (II and latency as report.json says)
    and with stalls.  126 and 39 were cycle-model bugs: 4 modelled images ended before the input
    stopped running ahead of the slow last map (report II 12 and 9, RTL 16 over 26 vectors)."""
    import random_models as rm

    case = rm.generate(seed, reuse=True, io="stream")
    r = rm.check(case, tmp_path, ("icarus",))
    assert r.status == "ok", f"{r.status}: {r.detail}\n{case.describe()}"
    low = (tmp_path / "out" / "lowered.mlir").read_text()
    assert "qir.stream_mvu" in low
    if seed == 5:
        assert 'style "xnor"' in low and "thresholds" in low
