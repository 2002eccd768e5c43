"""Issue #14 reproducers: wrong RTL and compile crashes found by random differential testing.

Each model is written as QKeras JSON + h5 (tests/qkeras_writer.py) and goes through the real
frontend; the interpreter must equal the exact QKeras semantics (tests/random_models.reference,
and the hand-computed values below) and the RTL must equal the interpreter on corner and random
vectors (Icarus here, Verilator in the slow variant).
"""
from __future__ import annotations

from fractions import Fraction as Fr

import numpy as np
import pytest
import random_models as rm
from qkeras_writer import dense, q, qact

RELU = dict(use_sigmoid=0, negative_slope=0.0, use_stochastic_rounding=False, relu_upper_bound=None,
            qnoise_factor=1.0)
TERNARY = q("ternary", alpha=1, threshold=None, use_stochastic_rounding=False, number_of_unrolls=5)


def _bits(bits, integer, symmetric=0):
    return q("quantized_bits", bits=bits, integer=integer, symmetric=symmetric, keep_negative=True, alpha=1)


def tie_model() -> rm.Case:
    """Ternary weights that all quantize to 0 (|w| < 0.33), bias 0.5625 on a tie of
    quantized_relu(4,1)'s grid (step 1/8): rne gives 0.5 (4/8), not 0.625."""
    return rm.Case(1401, "fixed<4,2>", (2,), [
        dense("fc", "x", [[0.1], [-0.1]], [0.5625], TERNARY, _bits(8, 3), q("quantized_relu", bits=4, integer=1, **RELU))])


def finer_grid_model() -> rm.Case:
    """Integer weights (quantized_bits(4,3), step 1), no bias, quantized_relu(8,2) (step 1/64):
    the activation's grid is finer than the accumulator's (a left shift in the epilogue)."""
    return rm.Case(1402, "fixed<4,2>", (2,), [
        dense("fc", "x", [[3.0, -2.0], [-5.0, 1.0]], None, _bits(4, 3), None,
              q("quantized_relu", bits=8, integer=2, **RELU))])


def zero_sym_model(symmetric: int) -> rm.Case:
    """Output channel 0 is constant zero (weights 0.01, -0.01 quantize to 0), then a symmetric
    quantized_bits (sat_sym) fused into the adder graph's epilogue."""
    return rm.Case(1403, "fixed<8,2>", (2,), [
        dense("fc", "x", [[0.01, 1.75], [-0.01, 1.25]], None, _bits(4, 1), None, _bits(4, 0, symmetric))])


def zero_sym_qact_model() -> rm.Case:
    """The same constant-zero channel followed by a separate QActivation (qir.quantize)."""
    return rm.Case(1404, "fixed<8,2>", (2,), [
        dense("fc", "x", [[0.01, 1.75], [-0.01, 1.25]], None, _bits(4, 1), None),
        qact("q", "fc", _bits(4, 0, 1))])


CASES = {"tie": tie_model, "finer_grid": finer_grid_model, "zero_sym": lambda: zero_sym_model(1),
         "zero_nosym": lambda: zero_sym_model(0), "zero_sym_qact": zero_sym_qact_model}


def _vectors(case: rm.Case) -> np.ndarray:
    _, w, _ = rm.parse_type(case.input_type)
    codes = np.arange(-(1 << (w - 1)), 1 << (w - 1))
    if w <= 4:  # every input pair
        return np.array([[a, b] for a in codes for b in codes])
    return rm.vectors(case, 60)


def test_tie_semantics_by_hand():
    # QKeras: quantized_relu(4,1)(0.5625) = 0.125 * rne(4.5) = 0.5 (and the interpreter agrees)
    assert rm.quantize(q("quantized_relu", bits=4, integer=1, **RELU), Fr(9, 16)) == Fr(1, 2)
    case = tie_model()
    for x in ([0.0, 0.0], [1.75, -2.0]):
        assert rm.reference(case, np.array(x)).tolist() == [Fr(1, 2)]


def test_finer_grid_semantics_by_hand():
    case = finer_grid_model()
    # 3*1.5 - 5*(-0.25) = 5.75 -> saturates at 255/64; -2*1.5 + 1*(-0.25) < 0 -> 0
    assert rm.reference(case, np.array([1.5, -0.25])).tolist() == [Fr(255, 64), 0]
    assert rm.reference(case, np.array([0.25, 0.0])).tolist() == [Fr(3, 4), 0]


@pytest.mark.sim
@pytest.mark.parametrize("name", sorted(CASES))
def test_repro_icarus(tmp_path, name):
    case = CASES[name]()
    xm = _vectors(case)
    net, out = rm.build(case, tmp_path)
    assert rm.check_reference(case, net, xm) is None
    assert rm.check_rtl(net, out, xm, "icarus") is None


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name", ["tie", "finer_grid", "zero_sym"])
def test_repro_verilator(tmp_path, name):
    case = CASES[name]()
    xm = _vectors(case)
    net, out = rm.build(case, tmp_path)
    assert rm.check_rtl(net, out, xm, "verilator") is None
