"""The xnor form of ``qir.stream_mvu`` (issue #12): a binary dense after a Flatten of a two-valued
stream, consumed beat by beat with XNOR-popcount (1 ROM bit per weight, exact popcount
accumulators), the scale/threshold folding of ``lowering/xnor.py`` and ``qir-fold-threshold``.

The lowered model equals the imported dense ({-1,+1} and {0,1} encodings, with and without a
sign after it), the estimate is one formula before and after lowering, the corners (all inputs
agreeing with all weights, all disagreeing, the largest count, constant outputs T = 0 and
T = n + 1) are bit-exact in Icarus at full rate and under random stalls, ``qir-fold-auto`` chooses
it under ``--target-ii``/``--max-luts``; Verilator + lint + deterministic Verilog (slow).
"""
from __future__ import annotations

import numpy as np
import pytest
from qir.lowering import STREAM_PIPELINE
from sim_checks import sim_ok
from stream_mvu_models import (
    compile_twice_and_lint,
    lowered,
    mantissas,
    random_inputs,
    write_binary_cnn,
    write_binary_head,
)

from qir.dialect import DenseOp, XnorOp
from qir.dialect.stream_ops import StreamMvuOp
from qir.errors import QirError
from qir.flow import compile_model, import_model, parse_pipeline, run_passes
from qir.folding import estimate, stream_fold
from qir.interp import evaluate
from qir.ir import get_model


@pytest.mark.parametrize("use_01,sign_after,R", [(False, True, 1), (True, True, 2), (False, False, 7),
                                                 (True, False, 3)])
def test_interpreter_equals_dense(tmp_path, use_01, sign_after, R):
    """Lowered (qir.stream_mvu xnor, thresholds folded when a sign follows) == imported, on
    corners and random vectors; no collect, no qir.xnor left; cost() == the planner's estimate."""
    js = write_binary_cnn(tmp_path, seed=R, use_01=use_01, sign_after=sign_after)
    net, low = lowered(js, R)
    sm = [o for o in low.walk() if isinstance(o, StreamMvuOp)]
    assert len(sm) == 1 and sm[0].is_xnor and (sm[0].R, sm[0].G) == stream_fold(3, 5, R)
    assert (sm[0].zero.value.data, sm[0].one.value.data) == ((0, 1) if use_01 else (-1, 1))
    assert (sm[0].thresholds is not None) == sign_after
    assert "qir.collect" not in str(low) and not any(isinstance(o, XnorOp) for o in low.walk())
    x = mantissas(random_inputs(24, shape=(6, 6, 1)))
    assert np.array_equal(evaluate(get_model(net), [x]).outputs[0], evaluate(get_model(low), [x]).outputs[0])
    dense = next(o for o in import_model(js).walk() if isinstance(o, DenseOp) and o.attributes["layer"].data == "fc1")
    assert estimate(dense, R, "xnor", beat=3) == sm[0].cost()


def test_explicit_xnor_needs_two_valued_input(tmp_path):
    """style xnor on a dense that does not qualify (ternary weights; the input has more than two
    codes): one error naming the layer and why."""
    from stream_mvu_models import write_small_cnn
    from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

    net = import_model(write_small_cnn(tmp_path, kind="ternary"))
    for op in net.walk():
        if isinstance(op, DenseOp):
            op.attributes["style"] = StringAttr("xnor")
            op.attributes["reuse"] = IntegerAttr(2, i64)
    with pytest.raises(QirError, match="layer 'fc1' cannot use style xnor: its weights are not"):
        run_passes(net, parse_pipeline(STREAM_PIPELINE))


def _corner_kernel(n_in: int):
    """Columns: all +1, all -1, alternating, random, random (bias +200: always +1), random
    (bias -200: always -1)."""
    rng = np.random.default_rng(7)
    k = rng.choice([-1.0, 1.0], size=(n_in, 6))
    k[:, 0], k[:, 1] = 1.0, -1.0
    k[:, 2] = np.where(np.arange(n_in) % 2, 1.0, -1.0)
    return k, np.array([0.0, 0.0, 1.0, -1.0, 200.0, -200.0])


def _corner_inputs(shape) -> np.ndarray:
    """All +max (every bit 1), all min (every bit 0), alternating signs, then random codes."""
    n = int(np.prod(shape))
    alt = np.where(np.arange(n) % 2, 31, -32).reshape(shape) / 8
    rng = np.random.default_rng(2)
    rows = [np.full(shape, 31 / 8), np.full(shape, -4.0), alt, -alt - 1 / 8] + \
        list(rng.integers(-32, 32, size=(4, *shape)) / 8)
    return np.asarray(rows)


@pytest.mark.parametrize("use_01", [False, True])
def test_corner_counts_interpreter(tmp_path, use_01):
    """n_in = 32 (the popcount is 6 bits wide: 32 = 100000b): all agree (p = 32), all disagree
    (p = 0) and the rest match an independent numpy dense."""
    shape = (4, 4, 2)
    k, b = _corner_kernel(32)
    js = write_binary_head(tmp_path, k, b, shape, use_01=use_01)
    net, low = lowered(js, 3)
    x = _corner_inputs(shape)
    bits = (x.reshape(len(x), -1) >= 0).astype(np.int64)
    xs = bits if use_01 else 2 * bits - 1
    want = xs @ k.astype(np.int64) + b
    y = evaluate(get_model(low), [mantissas(x)]).outputs[0]
    assert np.array_equal(y, want.astype(np.int64)), (y, want)
    # row 0 (every bit 1): column 0 (all +) all agree p = 32, column 1 (all -) all disagree p = 0;
    # row 1 (every bit 0): column 0 all disagree (y = 0 for {0,1}, -32 for {-1,+1})
    assert (want[0, 0], want[0, 1], want[1, 0], want[1, 1]) == (32, -32, 0, 0) if use_01 else (32, -32, -32, 32)


@pytest.mark.sim
@pytest.mark.parametrize("use_01,sign_after,R", [(False, True, 3), (True, False, 40)])
def test_corner_counts_icarus(tmp_path, use_01, sign_after, R):
    """The corners in Icarus (full rate, II and latency as the cycle model says, random gaps and
    stalls): R = 3 (C = 2: 2 chunks x 1 group, idle cycle) with threshold T = 0 on the constant
    columns; R = 40: one input per cycle x 6 output groups (one output per cycle)."""
    shape = (4, 4, 2)
    k, b = _corner_kernel(32)
    js = write_binary_head(tmp_path / "m", k, b, shape, use_01=use_01, sign_after=sign_after)
    out = tmp_path / "out"
    compile_model(js, out, io="stream", reuse=R)
    low = (out / "lowered.mlir").read_text()
    assert 'style "xnor"' in low and "qir.collect" not in low
    if sign_after:  # the constant columns: T = 0 (always the code 'above', which equals 'below')
        assert "thresholds(dense<[16, 16, 16, 17, 0, 0]>" in low
    sim_ok(out, _corner_inputs(shape), tmp_path)


@pytest.mark.sim
def test_binary_cnn_icarus(tmp_path):
    """A binary CNN (4-bit conv -> binary -> 2x2 max pool -> Flatten -> binary dense -> sign ->
    dense) folded by 6: 2 chunks x 2 output groups per beat, thresholds, bit-exact with stalls."""
    js = write_binary_cnn(tmp_path / "m", seed=4, shape=(8, 8, 1), pool=True)
    out = tmp_path / "out"
    compile_model(js, out, io="stream", reuse=6)
    low = (out / "lowered.mlir").read_text()
    assert 'style "xnor"' in low and "thresholds" in low and "qir.collect" not in low
    sim_ok(out, random_inputs(5, shape=(8, 8, 1), seed=4), tmp_path)


def test_fold_auto_chooses_xnor_stream(tmp_path):
    """qir-fold-auto prices the binary dense as the xnor stream form (cycles = beats x R) and the
    lowering builds it: under --target-ii and under --max-luts."""
    from qir.lowering.fold_auto import foldable_layers

    js = write_binary_cnn(tmp_path / "m", seed=2)
    net = import_model(js)
    run_passes(net, parse_pipeline("qir-infer-widths,qir-stream-conv,qir-stream-form"))
    lay = {x.name: x for x in foldable_layers(net)[0]}
    assert lay["fc1"].style == "xnor" and lay["fc1"].beats == 16 and lay["fc1"].beat == 3
    rep = compile_model(js, tmp_path / "o1", io="stream", target_ii=16 * 6)
    fc1 = next(r for r in rep["folding"]["layers"] if r["layer"] == "fc1")
    assert fc1["implementation"] == "rom xnor" and fc1["cycles"] <= 16 * 6
    assert 'style "xnor"' in (tmp_path / "o1" / "lowered.mlir").read_text()
    rep2 = compile_model(js, tmp_path / "o2", io="stream", max_luts=3000)
    fc1 = next(r for r in rep2["folding"]["layers"] if r["layer"] == "fc1")
    assert fc1["implementation"] == "rom xnor" and rep2["folding"]["design_luts_estimate"] <= 3000


@pytest.mark.sim
@pytest.mark.slow
def test_stream_xnor_verilator_lint_deterministic(tmp_path):
    """Verilator bit-exact (stalls too), ``verilator --lint-only -Wall`` clean, and the Verilog
    byte-identical when compiled again elsewhere; {0,1} encoding, 3 groups of 2 outputs."""
    js = write_binary_cnn(tmp_path / "m", seed=9, shape=(5, 6, 2), filters=4, n_out=6, use_01=True)
    out = compile_twice_and_lint(js, tmp_path, "sxnor", 13)
    sim_ok(out, random_inputs(6, shape=(5, 6, 2)), tmp_path, "verilator")


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["xnor", "mac"])
def test_sliced_rom_icarus(tmp_path, monkeypatch, kind):
    """A weight ROM above ``rtl.fold.ROM_SLICE_BITS`` is several memories of whole 72-bit lanes
    read as one port (the threshold lowered here so a small design splits): bit-exact with stalls."""
    import qir.rtl.fold as fold
    from stream_mvu_models import write_small_cnn

    monkeypatch.setattr(fold, "ROM_SLICE_BITS", 200)
    assert fold.rom_slices(36, 150) == [(0, 72), (72, 72), (144, 6)]
    if kind == "xnor":
        js, shape = write_binary_cnn(tmp_path / "m", seed=3, shape=(8, 8, 1), n_out=60, sign_after=False), (8, 8, 1)
    else:
        js, shape = write_small_cnn(tmp_path / "m", seed=3, kind="mac", n_out=12), (6, 6, 2)
    out = tmp_path / "out"
    compile_model(js, out, io="stream", reuse=1)
    v = next((out / "rtl").glob("*.v")).read_text()
    assert "rom0" in v and "rom1" in v
    sim_ok(out, random_inputs(4, shape=shape, seed=3), tmp_path)


def test_two_valued_through_a_wide_map(tmp_path):
    """Regression (bcnn28): a binary activation after an 8-bit binary-kernel conv (2,304 accumulator
    codes) on 26 x 26 positions: the map's result codes are two per element, so the dense after the
    Flatten is xnor (before, the map passed on all 2,304 source codes per element, 2,304 x 2,704 >
    MAX_ENTRIES, and the dense fell back to ternary)."""
    from qir.lowering.xnor import xnor_plan
    from stream_mvu_models import write_bcnn28

    from qir.fixed import Fixed

    net = import_model(write_bcnn28(tmp_path, filters=4, units=8), precision=Fixed.parse("fixed<16,6>"))
    run_passes(net, parse_pipeline("qir-infer-widths,qir-stream-conv,qir-stream-form"))
    fc1 = next(d for d in net.walk() if isinstance(d, DenseOp) and d.attributes["layer"].data == "fc1")
    assert xnor_plan(fc1)[2:] == (-1, 1)
