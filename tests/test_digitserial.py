"""Digit-serial adder graphs (issue #12, ``impl = "digitserial"``): the unfolded constant adder
graph on D input digits, shift-accumulated (``qir.digitserial``, ``qir.lowering.digit_serial``,
``rtl/digitserial.py``).  The digit decomposition against x @ W + off on corner and random inputs
(signed and unsigned, R dividing the bits or not, R beyond the bits), the exact accumulator
widths, the verifier, the choice; RTL == interpreter in Icarus (parallel and stream) and
Verilator, lint-clean and byte-deterministic."""
from __future__ import annotations

import numpy as np
import pytest
from qir.lowering.adder_graph import build
from sim_checks import sim_ok
from test_fold import _compile_corner, _corner_model, _sim_corners_and_estimate

from qir.digitserial import base_offset, digit_shape, evaluate, partial_ranges
from qir.fixed import Fixed
from qir.flow import compile_model, import_model


def test_digit_shape():
    assert digit_shape(16, 2) == (2, 8) and digit_shape(16, 4) == (4, 4) and digit_shape(16, 16) == (16, 1)
    assert digit_shape(16, 3) == (3, 6) and digit_shape(16, 5) == (4, 4)  # spare cycles idle
    assert digit_shape(8, 100) == (8, 1) and digit_shape(6, 4) == (3, 2)  # beyond the bits: bit-serial
    assert digit_shape(2, 2) == (2, 1)


def _inputs(lo: int, hi: int, n: int, rng) -> np.ndarray:
    alt = np.arange(n) % 2
    rows = [np.full(n, lo), np.full(n, hi), np.zeros(n, dtype=int), np.where(alt, lo, hi), np.where(alt, hi, lo),
            np.full(n, -1 if lo < 0 else 1)]
    rows += list(rng.integers(lo, hi + 1, size=(40, n)))
    return np.asarray(rows, dtype=np.int64)


CASES = [  # (n_in, n_out, weight magnitude, input type, R)
    (16, 12, 31, "fixed<16,6>", 2), (16, 12, 31, "fixed<16,6>", 3), (9, 8, 127, "ufixed<8,3>", 4),
    (7, 3, 8, "fixed<4,2>", 3), (5, 6, 1, "fixed<16,1>", 5), (12, 5, 1000, "fixed<2,2>", 2),
    (6, 4, 7, "ufixed<6,0>", 9), (4, 3, 5, "fixed<9,3>", 9)]


@pytest.mark.parametrize("n_in, n_out, mag, typ, R", CASES)
def test_digits_sum_to_the_product_with_exact_accumulators(n_in, n_out, mag, typ, R):
    """y = sum_d 2^(kd) W u_d + off' equals x @ W + off on corners (min * min summed, max sums,
    the most negative input: the signed top digit) and random inputs, and every accumulator value
    of the LSB-first recurrence A_d = (A_{d-1} >> k) + g_d lies in ``partial_ranges``."""
    rng = np.random.default_rng(n_in * 100 + R)
    t = Fixed.parse(typ)
    m = rng.integers(-mag, mag + 1, size=(n_in, n_out)).astype(object)
    m[:, 0] = -mag  # min weights: min * min summed is the largest sum
    m[:, -1] = mag
    off = rng.integers(-1000, 1000, size=n_out).astype(object)
    D, k = digit_shape(t.width, R)
    g = build(m, np.zeros(n_out, dtype=object), [0] * n_in, [(1 << k) - 1] * n_in)
    x = _inputs(t.min_int, t.max_int, n_in, rng)
    want = x.astype(object) @ m + off
    assert np.array_equal(evaluate(g, off, t.min_int, t.width, D, k, x), want)
    ranges = partial_ranges(m, off, t.min_int, t.width, D, k)
    u = x.astype(object) - t.min_int
    acc, low = None, 0
    for d in range(D):
        gd = ((u >> (k * d)) & ((1 << k) - 1)) @ m
        if d:  # the k low bits of the previous accumulator retire (the hardware's low register)
            low = low + ((acc & ((1 << k) - 1)) << (k * (d - 1)))
        acc = gd + np.asarray(base_offset(m, off, t.min_int), dtype=object) if d == 0 else (acc >> k) + gd
        for j, (lo, hi) in enumerate(ranges):
            assert lo <= acc[:, j].min() and acc[:, j].max() <= hi
    assert np.array_equal(acc * (1 << (k * (D - 1))) + low, want)  # {acc, low} is y


def _ds_op(R: int = 2, digits: int | None = None):
    from qir.dialect import DigitSerialOp
    from qir.flow import run_passes
    from qir.ir import parse_module, print_module

    src = f"""qir.model @m {{
      %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
      %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32> : !qir.fixed<4,1>) {{impl = "digitserial", layer = "fc", reuse = {R} : i64}} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<14,6>>
      qir.output %1 : tensor<2x!qir.fixed<14,6>>
    }}"""
    m = parse_module(src)
    run_passes(m, "qir-lower-dense{style=auto},qir-lower-cmvm")
    return m, next(o for o in m.walk() if isinstance(o, DigitSerialOp)), print_module(m)


def test_interpreter_and_verifier():
    from qir.interp import evaluate as run

    m, op, text = _ds_op(3)
    assert (op.D, op.k, op.cycles()) == (3, 3, 3)
    x = _inputs(-128, 127, 3, np.random.default_rng(0))
    want = x.astype(object) @ np.array([[1, -2], [3, 4], [5, 7]], dtype=object)
    assert np.array_equal(np.asarray(run(m, [x]).outputs[0], dtype=object), want)
    from xdsl.utils.exceptions import VerifyException

    from qir.errors import QirError
    from qir.ir import parse_module

    assert "digits 3 : i64" in text and "shift 3 : i32" in text
    parse_module(text).verify()
    for bad, why, msg in (("digits 3 : i64", "digits 4 : i64", "digits must be 2 .. min"),
                          ("digits 3 : i64", "digits 1 : i64", "digits must be 2 .. min"),
                          ("reuse 3 : i64 digits 3", "reuse 5 : i64 digits 5", "use 4 digits"),
                          ('style "cmvm"', 'style "mac"', "is not one of cmvm"),
                          ("shift 3 : i32", "shift 2 : i32", "fractional bits")):
        with pytest.raises((QirError, VerifyException), match=msg):
            parse_module(text.replace(bad, why)).verify()


def test_choice_and_planner_scale():
    """The digit-serial estimate prices the graph at the digit width: R = 2 of qkeras_3layer's
    16 -> 64 layer (16-bit inputs) is two digits of 8 bits, below the unfolded graph and the ROM."""
    from qir.folding import choose_impl, estimate_digitserial, impl_estimates

    rng = np.random.default_rng(5)
    m = rng.integers(-31, 32, size=(16, 64)).astype(object)
    t = Fixed.parse("fixed<16,6>")
    e = impl_estimates(m, np.zeros(64), t, 2, "cmvm")
    assert choose_impl(m, np.zeros(64), t, 2, "cmvm") == "digitserial" == min(e, key=lambda k: e[k]["lut"])
    e4 = estimate_digitserial(m, np.zeros(64), t, 4)
    assert (e4["digits"], e4["digit_bits"]) == (4, 4) and e4["lut"] < e["digitserial"]["lut"]
    assert "digitserial" not in impl_estimates(m, np.zeros(64), t, 2, "mac")


def test_conv_impl_pin_reaches_the_kernel():
    """An ``impl`` pin on a conv reaches its folded product in both forms: the stream kernel's
    dense (qir-stream-conv) and the parallel conv matrix (qir-lower-conv)."""
    from qir.dialect import MvuOp
    from qir.flow import run_passes
    from qir.ir import parse_module

    src = """qir.model @c {
      %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<6,3>>
      %1 = qir.conv %0 weights(dense<[[[[1, 0]], [[2, 1]], [[0, 1]]], [[[1, 1]], [[-1, 2]], [[0, 0]]], [[[3, 1]], [[1, -1]], [[2, 2]]]]> : tensor<3x3x1x2xi32> : !qir.fixed<4,2>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {impl = "digitserial", layer = "c1", reuse = 4 : i64} : tensor<4x4x1x!qir.fixed<6,3>> -> tensor<4x4x2x!qir.fixed<12,7>>
      qir.output %1 : tensor<4x4x2x!qir.fixed<12,7>>
    }"""
    for passes in ("qir-infer-widths,qir-stream-conv,qir-stream-form,qir-lower-dense{style=auto}",
                   "qir-infer-widths,qir-lower-conv{style=auto}"):
        m = parse_module(src)
        run_passes(m, passes)
        assert [o.impl.data for o in m.walk() if isinstance(o, MvuOp)] == ["digitserial"], passes


def test_precision_config_impl_key(tmp_path):
    """``impl`` in the precision configuration pins a layer's folded implementation; a bad value
    is one error naming the file."""
    import json

    from qir.errors import QirError
    from qir.precision import PrecisionConfig

    js = _corner_model(tmp_path / "m")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"layers": {"fc1": {"reuse": 2, "impl": "digitserial"},
                                          "fc2": {"reuse": 2, "impl": "rom"}}}))
    net = import_model(js, input_type=Fixed.parse("fixed<8,1>"), precision=PrecisionConfig.load(cfg))
    from qir.ir import print_module

    text = print_module(net)
    assert 'impl = "digitserial"' in text and 'impl = "rom"' in text
    out = tmp_path / "out"
    compile_model(js, out, input_type=Fixed.parse("fixed<8,1>"), precision=PrecisionConfig.load(cfg))
    low = (out / "lowered.mlir").read_text()
    assert low.count("qir.digitserial ") == 1 and low.count("qir.mvu ") == 1
    cfg.write_text(json.dumps({"layers": {"fc1": {"reuse": 2, "impl": "digits"}}}))
    with pytest.raises(QirError, match="impl 'digits' is not one of rom, muxgraph, digitserial"):
        PrecisionConfig.load(cfg)


@pytest.mark.sim
@pytest.mark.parametrize("io, R", [("parallel", 2), ("stream", 3), ("parallel", 5), ("stream", 11)])
def test_digitserial_rtl_corners(tmp_path, io, R):
    """The corner model (7 -> 3 -> 2, fixed<8,1> input, relu, po2 second layer) pinned to
    digit-serial: R = 2 (two 4-bit digits), 3 (three 3-bit digits), 5 (four 2-bit digits, a
    cycle idle), 11 (bit-serial, 8 digits, 3 idle); Icarus == interpreter at full rate and under
    random gaps/stalls (stream) or through in_ready (parallel); the report names the
    implementation."""
    out, rep = _compile_corner(tmp_path, R, "digitserial", io)
    assert rep["ii_cycles"] == R
    assert (out / "lowered.mlir").read_text().count("qir.digitserial") == 2
    est = _sim_corners_and_estimate(tmp_path, out)
    assert {lay["layer"]: lay["impl"] for lay in est["layers"] if "cycles_per_beat" in lay} == {
        "fc1": "digitserial", "fc2": "digitserial"}


@pytest.mark.sim
@pytest.mark.slow
def test_digitserial_verilator_lint_and_determinism(tmp_path):
    """R = 2 and 4 parallel: Verilator == interpreter, ``verilator --lint-only -Wall`` clean,
    byte-identical across two compiles."""
    from test_fold import _compile_twice_and_lint, _corner_inputs

    js = _corner_model(tmp_path / "m")
    for R in (2, 4):
        sim_ok(_compile_twice_and_lint(tmp_path, js, R, "digitserial"), _corner_inputs(), tmp_path, "verilator")


def test_search_bound_prices_rough_without_searching(tmp_path, monkeypatch):
    """Above ``qir.folding.DIGITSERIAL_MAX_DIGITS`` CSD digits a layer is neither offered
    digit-serial nor searched by the planner at R = 1 (``fold_auto.unfolded_graph`` is None: R = 1
    and the folds are priced rough, one scale); qk_autoq_cifar10's 576 x 64 layer of 16-bit
    weights is within the weight limit, its search would take many minutes.  Counts searches."""
    import qir.lowering.lower_cmvm as lc
    from qir.lowering.fold_auto import _UNFOLDED, unfolded_graph
    from test_fold import _count_calls, _one_dense_net

    import qir.folding as folding
    from qir.dialect import DenseOp
    from qir.flow import run_passes
    from qir.ir import parse_module

    net = _one_dense_net(tmp_path, "ds", np.random.default_rng(4).integers(-7, 8, size=(12, 8)) / 8, "fixed<8,1>")
    calls = _count_calls(monkeypatch, lc, "graph_for")

    def layer():
        m = parse_module(net)
        run_passes(m, "qir-infer-widths")
        (d,) = [o for o in m.walk() if isinstance(o, DenseOp)]
        return d

    _UNFOLDED.clear()
    d = layer()
    w = d.folded()[0]
    digits = folding.csd_digit_count(w)
    t = Fixed.parse("fixed<8,1>")
    assert "digitserial" in folding.impl_estimates(w, np.zeros(8), t, 2, "cmvm")
    assert unfolded_graph(d, "cmvm") is not None and calls  # under the bound: searched
    calls.clear()
    _UNFOLDED.clear()
    monkeypatch.setattr(folding, "DIGITSERIAL_MAX_DIGITS", digits - 1)
    assert "digitserial" not in folding.impl_estimates(w, np.zeros(8), t, 2, "cmvm")
    assert unfolded_graph(layer(), "cmvm") is None and not calls
