"""Multiplexed adder graphs (issue #12, ``impl = "muxgraph"``): R phase adder graphs folded over
the outputs and merged into one (``qir.lowering.mux_adder_graph``, ``qir.muxgraph``,
``rtl/muxgraph.py``).  The merge against every phase's W_r x on random and corner inputs, exact
field widths, the codec and its checks, the cost and the choice; RTL == interpreter in Icarus."""
from __future__ import annotations

import numpy as np
import pytest
from qir.lowering.adder_graph import build
from qir.lowering.mux_adder_graph import build_mux, phase_columns
from sim_checks import sim_ok
from test_fold import _compile_corner, _set_reuse, _sim_corners_and_estimate

from qir.fixed import Fixed
from qir.flow import compile_model, import_model
from qir.muxgraph import check_arrays, from_arrays, to_arrays


def _inputs(lo: int, hi: int, n: int, rng) -> np.ndarray:
    alt = np.arange(n) % 2
    rows = [np.full(n, lo), np.full(n, hi), np.zeros(n, dtype=int), np.where(alt, lo, hi), np.where(alt, hi, lo)]
    rows += list(rng.integers(lo, hi + 1, size=(40, n)))
    return np.asarray(rows, dtype=np.int64)


CASES = [  # (n_in, n_out, weight magnitude, input range, R)
    (16, 12, 31, (-128, 127), 2), (16, 12, 31, (-128, 127), 3), (9, 8, 127, (0, 255), 4),
    (7, 3, 8, (-8, 7), 3), (5, 6, 1, (-32768, 32767), 2), (12, 5, 1000, (-2, 1), 2),
]


@pytest.mark.parametrize("n_in, n_out, mag, rng_in, R", CASES)
def test_every_phase_computes_its_columns(n_in, n_out, mag, rng_in, R):
    """Phase r's graph (the merged graph's own evaluation) gives x @ W[:, G_r] + off[G_r] on
    min/max/alternating and random codes; the phases cover every column once; every node's
    offset-binary field holds every phase's value (the widths the RTL builds)."""
    rng = np.random.default_rng(n_in * 100 + R)
    m = rng.integers(-mag, mag + 1, size=(n_in, n_out)).astype(object)
    m[:, 0] = 0  # a zero column: a constant output
    m[0, 1] = -mag  # the extreme weight
    if mag > 2:
        m[:, -1] = [2 ** (i % 5) * (-1) ** i for i in range(n_in)]  # po2 column
    off = rng.integers(-50, 50, size=n_out)
    lo, hi = rng_in
    g = build_mux(m, off, [lo] * n_in, [hi] * n_in, R)
    x = _inputs(lo, hi, n_in, rng)
    ref = x.astype(object) @ m + off
    cols = [g.phase_cols(r) for r in range(R)]
    assert sorted(j for c in cols for j in c if j >= 0) == list(range(n_out))
    base, top, width = g.fields()
    for r in range(R):
        ph = g.phase(r)
        got = ph.evaluate(x)
        for q, j in enumerate(cols[r]):
            if j >= 0:
                assert list(got[:, q]) == list(ref[:, j]), (r, j)
        vals = ph.node_values(x)
        for k in range(g.n_in, ph.n_nodes):
            if g.active(k - g.n_in, r):
                u = np.asarray(vals[k], dtype=object) - base[k][r]
                assert u.min() >= 0 and u.max() <= top[k][r] < 1 << width[k], (r, k)
    assert (g.evaluate(x) == ref).all()
    mat, o = g.matrix()
    assert (mat == m).all() and list(o) == list(off)


def test_codec_round_trip_and_checks():
    rng = np.random.default_rng(1)
    m = rng.integers(-20, 21, size=(6, 5)).astype(object)
    g = build_mux(m, np.arange(5), [-8] * 6, [7] * 6, 2)
    nodes, outs, off = to_arrays(g)
    assert check_arrays(6, 5, 2, nodes, outs, off) is None
    h = from_arrays(6, [-8] * 6, [7] * 6, 2, nodes, outs, off)
    x = _inputs(-8, 7, 6, rng)
    assert (h.evaluate(x) == g.evaluate(x)).all()
    bad = nodes.copy()
    bad[0, 0] = 6 + len(nodes)  # an operand defined later
    assert "earlier nodes" in check_arrays(6, 5, 2, bad, outs, off)
    assert "columns" in check_arrays(6, 6, 2, nodes, outs, off)
    with pytest.raises(ValueError, match="R must be 1..5"):
        build_mux(m, None, [-8] * 6, [7] * 6, 6)


def test_phases_balanced_and_merge_cost_in_yosys_count():
    """Columns dealt by CSD digits; at R = 2 the merged graph in Yosys's count (two 2:1-multiplexed
    operands = two LUTs) costs more than the unfolded graph of the whole matrix, in the band
    measured on qkeras_3layer (MUXGRAPH_FACTOR[2] = 1.12, 1.07-1.19 per layer), and each phase's
    graph is about half of it."""
    rng = np.random.default_rng(7)
    m = rng.integers(-63, 64, size=(16, 32)).astype(object)
    cols = phase_columns(m, 2)
    assert sorted(cols[0] + cols[1]) == list(range(32)) and len(cols[0]) == len(cols[1]) == 16
    g1 = build(m, None, [-128] * 16, [127] * 16)
    g = build_mux(m, None, [-128] * 16, [127] * 16, 2)
    assert 1.0 * g1.lut_bits() < g.target_cost() < 1.35 * g1.lut_bits()
    assert all(g.phase(r).lut_bits() < 0.65 * g1.lut_bits() for r in range(2))


def test_bit_luts_follow_yosys():
    """Per adder bit, what Yosys synth_xilinx maps (the carry chain's generate input is operand A,
    a multiplexed A is a mux LUT of its own; a k:1 mux on one-hot selects has 2k - 1 inputs)."""
    from qir.muxgraph import bit_luts, mux_luts

    assert [mux_luts(k) for k in (1, 2, 3, 4)] == [0, 1, 1, 2]
    assert bit_luts(1, 1) == 1 and bit_luts(1, 2) == 1 and bit_luts(2, 1) == 1 and bit_luts(1, 3) == 1
    assert bit_luts(2, 2) == 2  # LUT3 mux + propagate LUT (a LUT6_2 only if Vivado packs it)
    assert bit_luts(1, 4) == 2 and bit_luts(2, 3) == 2 and bit_luts(3, 4) == 3 and bit_luts(4, 4) == 4


def test_choice_is_the_cheapest_offered_implementation():
    """choose_impl takes the offered implementation with the fewest estimated LUTs (never one the
    estimate says is bigger than another offered one; R = 2 used to get the ROM whenever two
    phases cost more than the unfolded graph, 56k LUTs on qkeras_3layer against 32k at R = 1)."""
    from qir.folding import MUXGRAPH_MAX_R, choose_impl, impl_estimates

    m = np.random.default_rng(2).integers(-7, 8, size=(16, 32)).astype(object)  # 4-bit weights
    t = Fixed.parse("fixed<16,6>")
    for R in range(2, 9):
        ests = impl_estimates(m, np.zeros(32), t, R, "cmvm")
        assert set(ests) == ({"rom", "muxgraph", "digitserial"} if R <= MUXGRAPH_MAX_R else {"rom", "digitserial"})
        pick = choose_impl(m, np.zeros(32), t, R, "cmvm")
        assert all(ests[pick]["lut"] <= e["lut"] for e in ests.values()), (R, {k: e["lut"] for k, e in ests.items()})
    assert choose_impl(m, np.zeros(32), t, 2, "cmvm") != "rom"  # the ROM multiplies: bigger at R = 2
    assert choose_impl(m, np.zeros(32), t, 3, "mac") == "rom"  # multipliers asked for
    assert set(impl_estimates(m[:, :1], np.zeros(1), t, 3, "cmvm")) == {"rom", "digitserial"}  # one output
    assert set(impl_estimates(m, np.zeros(32), Fixed.parse("ufixed<1,1>"), 3, "cmvm")) == {"rom", "muxgraph"}


@pytest.mark.sim
@pytest.mark.parametrize("io, R", [("stream", 2), ("parallel", 2), ("stream", 3), ("parallel", 3)])
def test_muxgraph_rtl_corners(tmp_path, io, R):
    """The corner model (7 -> 3 -> 2) pinned to muxgraph (the cost model would keep R = 2 as a
    ROM) at R = 2 and 3 (fc1 3 phases, fc2 2 phases idling a cycle): Icarus == interpreter at
    full rate and under random gaps/stalls (stream) or through in_ready (parallel); the report
    names each layer's implementation."""
    out, rep = _compile_corner(tmp_path, R, "muxgraph", io)
    assert rep["ii_cycles"] == R
    assert "qir.muxgraph" in (out / "lowered.mlir").read_text()
    est = _sim_corners_and_estimate(tmp_path, out)
    impl = {lay["layer"]: lay["impl"] for lay in est["layers"] if "cycles_per_beat" in lay}
    assert impl == {"fc1": "muxgraph", "fc2": "muxgraph"}
    phases = {lay["layer"]: lay["phases"] for lay in est["layers"] if "cycles_per_beat" in lay}
    assert phases == ({"fc1": 2, "fc2": 2} if R == 2 else {"fc1": 3, "fc2": 2})


@pytest.mark.sim
@pytest.mark.parametrize("io, P", [("stream", 3), ("parallel", 4)])
def test_muxgraph_three_and_four_phases(tmp_path, io, P):
    """P = 3 / 4 phases (3:1 and 4:1 operand multiplexers, OR-ed phase selects; the cost model
    prefers 2 today, so the phases are forced): a 6 -> 5 -> 4 model, reuse 4, Icarus ==
    interpreter at full rate and under random gaps/stalls (stream) or through in_ready."""
    from qir.lowering.mux_adder_graph import lower_mvu
    from qkeras_writer import dense, q, write_model
    from test_fold import QBITS

    from qir.dialect import MvuOp
    from qir.flow import run_passes
    from qir.ir import parse_module, print_module

    rng = np.random.default_rng(P)
    k1 = rng.integers(-7, 8, size=(6, 5)) / 8
    k1[:, 0] = -1.0  # min * min summed
    k2 = rng.integers(-7, 8, size=(5, 4)) / 4
    js = write_model(tmp_path / "m", "four", (6,), [
        dense("fc1", "x", k1, rng.integers(-4, 4, size=5) / 8, q("quantized_bits", bits=4, integer=0, **QBITS),
              q("quantized_bits", bits=6, integer=2, **QBITS), activation="relu"),
        dense("fc2", "fc1", k2, None, q("quantized_bits", bits=4, integer=2, **QBITS))])
    net = import_model(js, input_type=Fixed.parse("fixed<8,1>"))
    m = parse_module(_set_reuse(parse_module(print_module(net)), 4, impl="muxgraph"))
    if io == "stream":
        run_passes(m, "qir-infer-widths,qir-stream-form")
    run_passes(m, "qir-infer-widths,qir-lower-dense{style=auto}")
    mvus = [o for o in m.walk() if isinstance(o, MvuOp)]
    assert [o.impl.data for o in mvus] == ["muxgraph", "muxgraph"]
    for o in mvus:
        lower_mvu(o, phases=P)
    low = tmp_path / "lowered.mlir"
    low.write_text(print_module(m))
    assert low.read_text().count(f"phases {P} : i64") == 2
    out = tmp_path / "out"
    rep = compile_model(low, out, io=io)
    assert rep["ii_cycles"] == 4 and (out / "lowered.mlir").read_text().count(f"phases {P} : i64") == 2
    x = rng.integers(-128, 128, size=(16, 6))
    x[:4] = [[-128] * 6, [127] * 6, [0] * 6, [-128, 127] * 3]
    sim_ok(out, x * 2.0 ** -7, tmp_path)


def test_muxgraph_offered_only_up_to_the_search_bound(tmp_path, monkeypatch):
    """A multiplexed adder graph is offered (and so searched by ``qir-lower-cmvm``) only up to
    ``qir.folding.MUXGRAPH_MAX_DIGITS`` CSD digits: above it the planner and ``choose_impl``
    never pick it, so no ``build_mux`` runs (qk_autoq_cifar10's 576 x 64 layer of 16-bit weights
    spent > 9 minutes in that search).  Counts searches, not time: a 16 -> 32 dense on 1-bit
    inputs (no digit-serial form) folded by 3 is a muxgraph under the bound and a ROM above it."""
    import qir.lowering.mux_adder_graph as mag
    from test_fold import _count_calls, _one_dense_net

    import qir.folding as folding
    from qir.dialect import MuxGraphOp, MvuOp, elements_to_numpy
    from qir.flow import run_passes
    from qir.ir import parse_module

    k = np.random.default_rng(2).integers(-7, 8, size=(16, 32)) / 8
    net = _one_dense_net(tmp_path, "bound", k, "ufixed<1,1>")
    calls = _count_calls(monkeypatch, mag, "build_mux")

    def lower():
        m = parse_module(net)
        run_passes(m, "qir-infer-widths,qir-fold-auto{reuse=3},qir-lower-dense{style=auto}")
        (mv,) = [o for o in m.walk() if isinstance(o, MvuOp)]
        impl, digits = mv.impl.data, folding.csd_digit_count(elements_to_numpy(mv.matrix))
        run_passes(m, "qir-lower-cmvm")
        return impl, sum(isinstance(o, MuxGraphOp) for o in m.walk()), digits

    impl, n_mux, digits = lower()  # under the bound: offered, chosen, searched
    assert 0 < digits <= folding.MUXGRAPH_MAX_DIGITS and (impl, n_mux) == ("muxgraph", 1) and calls
    calls.clear()
    monkeypatch.setattr(folding, "MUXGRAPH_MAX_DIGITS", digits - 1)
    assert lower()[:2] == ("rom", 0) and not calls  # above it: not offered, never searched
    m = (k * 8).astype(int)
    monkeypatch.setattr(folding, "MUXGRAPH_MAX_DIGITS", folding.csd_digit_count(m) - 1)
    assert set(folding.impl_estimates(m, np.zeros(32), Fixed.parse("ufixed<1,1>"), 3, "cmvm")) == {"rom"}
