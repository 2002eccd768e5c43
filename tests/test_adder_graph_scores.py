"""Adder-graph search with several pattern weights: every candidate is exact, the chosen one has
the fewest LUT bits within the depth tolerance, and ``lut_bits`` counts operand overlaps."""
from __future__ import annotations

import numpy as np
import pytest
from qir.lowering import adder_graph as ag


def test_lut_bits_counts_bits_where_both_operands_live():
    # x0, x1 in [0, 255] (8-bit fields): x0 + (x1 << 4) overlaps in bits 4..7 only
    g = ag.AdderGraph(2, [0, 0], [255, 255], a=[0], sa=[0], b=[1], sb=[4], sign=[1],
                      onode=[2], oshift=[0], osign=[1], offset=[0])
    assert g.lut_bits() == 4
    # x0 + (x1 << 8): a concatenation, no LUT; a constant offset costs none either
    g = ag.AdderGraph(2, [0, 0], [255, 255], a=[0], sa=[0], b=[1], sb=[8], sign=[1],
                      onode=[2], oshift=[0], osign=[1], offset=[77])
    assert g.lut_bits() == 0
    # signed inputs are offset binary fields of (hi - lo).bit_length() bits: x0 - x1, 8 bits each
    g = ag.AdderGraph(2, [-128, -128], [127, 127], a=[0], sa=[0], b=[1], sb=[0], sign=[-1],
                      onode=[2], oshift=[0], osign=[1], offset=[0])
    assert g.lut_bits() == 8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_score_is_exact_and_the_cheapest_is_kept(seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(-40, 41, size=(12, 20))
    m[rng.random(m.shape) < 0.3] = 0
    off = rng.integers(-1000, 1000, size=20)
    lo, hi = [-2048] * 12, [2047] * 12
    x = rng.integers(-2048, 2048, size=(200, 12))
    x[0], x[1] = -2048, 2047
    ref = x @ m + off
    cands = [ag.build(m, off, lo, hi, scores=[s]) for s in ag.SCORES]
    for g in cands:
        assert np.array_equal(g.evaluate(x), ref)
    best = ag.build(m, off, lo, hi)
    assert np.array_equal(best.evaluate(x), ref)
    d0 = cands[0].max_depth()
    ok = [g.lut_bits() for g in cands if g.max_depth() <= d0 + ag.DEPTH_TOLERANCE]
    assert best.lut_bits() == min(ok)
    assert best.max_depth() <= d0 + ag.DEPTH_TOLERANCE


def test_overlap_weight_beats_width_weight_on_shifted_patterns():
    # outputs x0 + (x1 << 10) + x2 + x3 and x0 + (x1 << 10), x0 + x2 + x3, (x1 << 10) + x2 + x3 on
    # 12-bit inputs: the wide node x0 + (x1 << 10) overlaps in 2 bits, x2 + x3 in 12, so sharing
    # the narrow one saves more LUTs although the width weight prefers the wide one
    m = np.array([[1, 1, 1, 0], [1024, 1024, 0, 1024], [1, 0, 1, 1], [1, 0, 1, 1]])
    lo, hi = [0] * 4, [4095] * 4
    gw = ag.build(m, None, lo, hi, scores=[ag.score_width])
    go = ag.build(m, None, lo, hi, scores=[ag.score_overlap])
    x = np.random.default_rng(3).integers(0, 4096, size=(50, 4))
    assert np.array_equal(gw.evaluate(x), x @ m) and np.array_equal(go.evaluate(x), x @ m)
    assert go.lut_bits() < gw.lut_bits()
    assert ag.build(m, None, lo, hi).lut_bits() == go.lut_bits()


@pytest.mark.parametrize("seed", [0, 1])
def test_cheapest_first_output_trees_are_exact_within_budget_and_cheaper(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    m = rng.integers(-63, 64, size=(16, 24))
    lo, hi = [-32768] * 16, [32767] * 16
    x = rng.integers(-32768, 32768, size=(100, 16))
    x[0], x[1] = -32768, 32767
    bits = {}
    for style in ("tree", "lut"):
        monkeypatch.setattr(ag, "REDUCE_STYLE", style)
        g = ag.build(m, None, lo, hi, scores=[ag.score_width], depth_slack=1)
        assert np.array_equal(g.evaluate(x), x @ m)
        for j in range(m.shape[1]):
            digits = sum(len(ag.csd(v)) for v in m[:, j])
            assert g.depth[g.onode[j]] <= (digits - 1).bit_length() + 1
        bits[style] = g.lut_bits()
    assert bits["lut"] < bits["tree"]


def test_target_costs_count_chain_and_full_adder_bits():
    # x0 + (x1 << 4), 8-bit unsigned fields: both live in bits 4..7 (4 LUT bits), the chain runs
    # from bit 4 to the top of the 13-bit result (0..4335: 9 bits); asic: 4 full + 5 half adders
    g = ag.AdderGraph(2, [0, 0], [255, 255], a=[0], sa=[0], b=[1], sb=[4], sign=[1],
                      onode=[2], oshift=[0], osign=[1], offset=[0])
    assert g.adder_spans(0) == (4, 9, 13)
    assert g.target_cost("xilinx") == 4 and g.target_cost("ecp5") == 9
    assert g.target_cost("asic") == 4 * ag.ASIC_FULL + 5 * ag.ASIC_HALF
    # disjoint fields are a concatenation: no chain, no cost on any target
    g = ag.AdderGraph(2, [0, 0], [255, 255], a=[0], sa=[0], b=[1], sb=[8], sign=[1],
                      onode=[2], oshift=[0], osign=[1], offset=[0])
    assert [g.target_cost(t) for t in ag.TARGETS] == [0, 0, 0]
    with pytest.raises(ValueError, match="unknown target"):
        g.target_cost("zynq")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_target_is_exact_and_no_worse_on_its_own_cost(seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(-60, 61, size=(14, 18))
    m[rng.random(m.shape) < 0.25] = 0
    off = rng.integers(-500, 500, size=18)
    lo, hi = [-512] * 14, [511] * 14
    x = rng.integers(-512, 512, size=(100, 14))
    x[0], x[1] = -512, 511
    base = ag.build(m, off, lo, hi)
    for t in ag.TARGETS:
        g = ag.build(m, off, lo, hi, target=t)
        assert np.array_equal(g.evaluate(x), x @ m + off)
        assert g.target_cost(t) <= base.target_cost(t)


def test_with_target_sets_the_lower_cmvm_option():
    from qir.errors import QirError
    from qir.flow import with_target

    spec = "qir-infer-widths,qir-lower-cmvm,qir-pipeline{max-depth=5}"
    assert with_target(spec, "xilinx") == spec
    assert with_target(spec, "ecp5") == "qir-infer-widths,qir-lower-cmvm{target=ecp5},qir-pipeline{max-depth=5}"
    assert with_target("qir-lower-cmvm{depth-slack=2 target=asic}", "ecp5") == \
        "qir-lower-cmvm{depth-slack=2 target=ecp5}"
    with pytest.raises(QirError, match="--target 'zynq'"):
        with_target(spec, "zynq")
