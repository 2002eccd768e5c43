"""Narrow element-wise quantizers built as step functions (``qir.rtl.elementwise.step_logic``):
constant comparisons of the input code instead of an adder, bit-exact against the reference
interpreter on every input code (so on the range ends, every rounding tie and both saturation
edges), for every rounding and overflow mode, with and without a relu in front; the arithmetic
route on the same quantizers stays covered by forcing it."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from qir.rtl import elementwise, generate
from test_rtl import F, Net, U, check_bit_exact

from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, requantize

#: (src, dst): MNIST's input quantizer (ufixed<9,1> -> ufixed<2,0>), signed to unsigned and back,
#: a right shift by the whole width, a left shift, one-bit results
PAIRS = [(U(9, 1), U(2, 0)), (F(8, 3), U(3, 1)), (F(7, 2), F(3, 1)), (U(6, 2), F(4, 2)), (F(6, 1), F(2, 3)),
         (F(5, 2), F(1, 1)), (U(4, 1), U(3, 0)), (F(4, 2), F(6, 3))]

needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")


def _net():
    """Every rounding x overflow mode on every pair, on the input and (signed sources) on its relu."""
    net = Net("qtable")
    xs = [net.input(src, [2], port=f"x{k}") for k, (src, _) in enumerate(PAIRS)]
    outs = []
    for k, (src, dst) in enumerate(PAIRS):
        srcs = [xs[k], net.relu(xs[k], layer=f"relu{k}")] if src.signed else [xs[k]]
        for x in srcs:
            for rnd in ROUNDING_MODES:
                for ovf in OVERFLOW_MODES:
                    outs.append(net.quant(x, dst, rnd, ovf, layer=f"q{k}_{rnd}_{ovf}"))
    return net.output(*outs)


def _inputs():
    n = max(1 << src.width for src, _ in PAIRS)
    out = []
    for src, _ in PAIRS:
        v = np.arange(src.min_int, src.max_int + 1, dtype=np.int64)
        idx = np.arange(n) % v.size
        out.append(np.stack([v[idx], v[::-1][idx]], axis=1))
    return out


def test_step_segments_reproduce_requantize():
    for src, dst in PAIRS:
        for rnd in ROUNDING_MODES:
            for ovf in OVERFLOW_MODES:
                segs = elementwise.step_segments(src.min_int, src.max_int, src, dst, rnd, ovf, max_segments=1 << 20)
                codes = np.arange(src.min_int, src.max_int + 1, dtype=np.int64)
                starts = np.array([s for s, _ in segs])
                got = np.array([y for _, y in segs])[np.searchsorted(starts, codes, side="right") - 1]
                assert np.array_equal(got, requantize(codes, src, dst, rnd, ovf)), (src, dst, rnd, ovf)
                assert all(a < b for a, b in zip(starts, starts[1:]))
                assert all(a != b for (_, a), (_, b) in zip(segs, segs[1:]))


def test_limits_send_wide_or_ragged_quantizers_to_the_adder_route():
    # more codes than the limit, or more runs than the limit: no table
    assert elementwise.step_segments(0, 4095, U(12, 2), U(2, 0), "rnd", "sat", max_codes=4095) is None
    assert elementwise.step_segments(-32, 31, F(6, 2), F(6, 2), "trn", "wrap", max_segments=63) is None
    assert elementwise.step_segments(-32, 31, F(6, 2), F(6, 2), "trn", "wrap", max_segments=64) is not None
    # bounds narrow the codes: after a relu only the non-negative half is enumerated
    segs = elementwise.step_segments(0, 127, F(8, 3), U(3, 1), "rnd_conv", "sat")
    assert segs[0] == (0, 0) and segs[-1][1] == 7


def test_table_route_is_taken_for_narrow_inputs():
    model = _net()
    text = "".join(generate(model).files.values())
    assert "_ge1" in text  # the comparisons of the step logic


@pytest.mark.sim
@needs_iverilog
@pytest.mark.parametrize("route", ["table", "adder"])
def test_every_code_bit_exact(tmp_path, monkeypatch, route):
    if route == "adder":
        monkeypatch.setattr(elementwise, "TABLE_MAX_CODES", 0)
    else:
        monkeypatch.setattr(elementwise, "TABLE_MAX_SEGMENTS", 1 << 12)
    model = _net()
    design = generate(model)
    text = "".join(design.files.values())
    assert ("_ge1" in text) == (route == "table")
    inputs = _inputs()
    assert check_bit_exact(model, design, inputs, tmp_path) == len(inputs[0])
