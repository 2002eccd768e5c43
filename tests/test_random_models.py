"""Random-model differential testing (issue #14): a fixed-seed slice of ``bench/fuzz.py``.

``tests/random_models.py`` draws random valid QKeras models and checks (a) interpreter == an
exact Fraction reference of the QKeras semantics, (b) RTL == interpreter on corner and random
vectors.  The reference itself is pinned here to values verified against QKeras (notes §1).
"""
from __future__ import annotations

from fractions import Fraction as Fr

import pytest
import random_models as rm
from qkeras_writer import q

QUICK = range(0, 12)
SLOW = range(12, 72)
VERILATOR = (0, 3, 7, 20, 33)


@pytest.mark.parametrize("spec, x, y", [
    (q("quantized_bits", bits=4, integer=0, symmetric=0, keep_negative=True, alpha=1), "0.0625", "0"),
    (q("quantized_bits", bits=4, integer=0, symmetric=0, keep_negative=True, alpha=1), "0.1875", "0.25"),
    (q("quantized_bits", bits=4, integer=0, symmetric=0, keep_negative=True, alpha=1), "0.3125", "0.25"),
    (q("quantized_bits", bits=4, integer=4, symmetric=0, keep_negative=True, alpha=1), "-100", "-16"),
    (q("quantized_bits", bits=4, integer=4, symmetric=0, keep_negative=True, alpha=1), "100", "14"),
    (q("quantized_bits", bits=4, integer=0, symmetric=0, keep_negative=True, alpha=2), "0.9", "1.75"),
    (q("quantized_bits", bits=1, integer=3, symmetric=0, keep_negative=True, alpha=1), "0", "1"),
    (q("quantized_relu", bits=4, integer=2, negative_slope=0.25), "-3", "-1"),
    (q("quantized_relu", bits=4, integer=2, negative_slope=0.25), "-1", "0"),
    (q("quantized_relu", bits=4, integer=2, negative_slope=0.25), "1.6", "1.5"),
    (q("quantized_relu", bits=6, integer=0), "6", "63/64"),
    (q("quantized_po2", bits=4), "0", "1/16"),
    (q("quantized_po2", bits=4), "100", "8"),
    (q("quantized_relu_po2", bits=4), "-1", "1/256"),
    (q("ternary", alpha=None, threshold=None), "0.33", "1"),
    (q("ternary", alpha=None, threshold=None), "0.32", "0"),
    (q("binary", use_01=False, alpha=None), "0", "1"),
    (q("quantized_linear", bits=4, integer=0), "-1", "-0.875"),
    (q("stochastic_ternary", alpha=None, threshold=0.5), "-0.5", "-1"),
    (q("quantized_tanh", bits=4, symmetric=True), "-5", "-7/8"),
    (q("quantized_sigmoid", bits=4, symmetric=False), "5", "15/16"),
])
def test_reference_quantizers(spec, x, y):
    # float inputs as QKeras sees them (float32 then exact)
    assert rm.quantize(spec, rm._f(float(Fr(x)))) == Fr(y)


def test_generator_is_deterministic_and_varied():
    a, b = rm.generate(5), rm.generate(5)
    assert a.describe() == b.describe()
    kinds = {lay.class_name for s in range(60) for lay in rm.generate(s).layers}
    assert {"QDense", "QConv1D", "QConv2D", "QActivation", "Add", "Concatenate", "Flatten"} <= kinds


def _run(seed, tmp_path, sims):
    r = rm.check(rm.generate(seed), tmp_path, sims)
    assert r.status == "ok", f"{r.status}: {r.detail}\n{rm.generate(seed).describe()}"


@pytest.mark.sim
@pytest.mark.parametrize("seed", QUICK)
def test_random_models_icarus(tmp_path, seed):
    _run(seed, tmp_path, ("icarus",))


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW)
def test_random_models_icarus_slow(tmp_path, seed):
    _run(seed, tmp_path, ("icarus",))


@pytest.mark.sim
@pytest.mark.slow
def test_random_models_verilator_batched(tmp_path):
    """Several random models in one Verilator build (random_models.check_rtl_batch)."""
    items = []
    for seed in VERILATOR:
        case = rm.generate(seed)
        r = rm.check(case, tmp_path / f"m{seed}", ())  # build + reference check only
        assert r.status == "ok", f"{r.status}: {r.detail}\n{case.describe()}"
        items.append((seed, *rm.check.last))
    assert rm.check_rtl_batch(items, tmp_path / "verilator", "verilator") == {}

@pytest.mark.parametrize("x, t, rnd, ovf, y", [
    ("0.5", "fixed<8,8>", "rnd", "sat", "1"), ("-0.5", "fixed<8,8>", "rnd", "sat", "0"),
    ("0.5", "fixed<8,8>", "rnd_zero", "sat", "0"), ("-0.5", "fixed<8,8>", "rnd_zero", "sat", "0"),
    ("-0.5", "fixed<8,8>", "rnd_inf", "sat", "-1"), ("0.5", "fixed<8,8>", "rnd_inf", "sat", "1"),
    ("0.5", "fixed<8,8>", "rnd_min_inf", "sat", "0"), ("-0.5", "fixed<8,8>", "rnd_min_inf", "sat", "-1"),
    ("2.5", "fixed<8,8>", "rnd_conv", "sat", "2"), ("3.5", "fixed<8,8>", "rnd_conv", "sat", "4"),
    ("-0.25", "fixed<8,8>", "trn", "sat", "-1"), ("-0.75", "fixed<8,8>", "trn_zero", "sat", "0"),
    ("0.6", "fixed<8,8>", "rnd", "sat", "1"), ("-0.6", "fixed<8,8>", "rnd_zero", "sat", "-1"),
    ("128", "fixed<8,8>", "trn", "wrap", "-128"), ("-129", "fixed<8,8>", "trn", "wrap", "127"),
    ("-200", "fixed<8,8>", "trn", "sat_sym", "-127"), ("-128", "fixed<8,8>", "trn", "sat_sym", "-127"),
    ("200", "fixed<8,8>", "trn", "sat_zero", "0"), ("300", "ufixed<8,8>", "trn", "wrap", "44"),
    ("-3", "ufixed<4,2>", "trn", "sat", "0"), ("0.3", "fixed<4,-1>", "rnd_conv", "sat", "7/32"), ("0.04", "fixed<4,-1>", "rnd_conv", "sat", "1/32"),
])
def test_reference_ap_cast(x, t, rnd, ovf, y):
    assert rm.ap_cast(Fr(x), t, rnd, ovf) == Fr(y)


@pytest.mark.sim
def test_batched_run_detects_a_difference(tmp_path, monkeypatch):
    """The batched check compares for real: the models agree in Icarus, and a reference off by
    one on one model is reported for that model only."""
    import qir.interp as interp

    items = []
    for seed in (1, 2):
        case = rm.generate(seed)
        assert rm.check(case, tmp_path / f"m{seed}", ()).status == "ok"
        items.append((seed, *rm.check.last))
    assert rm.check_rtl_batch(items, tmp_path / "ok", "icarus") == {}
    real = interp.evaluate
    victim = items[1][1]

    class Off:
        def __init__(self, ev):
            self.outputs = [ev.outputs[0] + 1]

    monkeypatch.setattr(interp, "evaluate", lambda net, xs: Off(real(net, xs)) if net is victim else real(net, xs))
    bad = rm.check_rtl_batch(items, tmp_path / "bad", "icarus")
    assert list(bad) == [2] and "!= interpreter" in bad[2]
