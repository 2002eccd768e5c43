"""Adder-graph storage polarity and inverter-free subtractions (issue #13: Xilinx INV cells).

``AdderGraph.polarity`` stores each node as v = base + pol * field so that subtractions leave few
complemented bits outside the other operand (each an ``INV`` in ``synth_xilinx``), and
``qir.rtl.separate.adder_value`` writes ``a + ~b`` as a subtraction so that Yosys drives the
carry chain's DI input from a, not from an inverter."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from qir.lowering.adder_graph import build
from qir.rtl import generate
from qir.rtl.separate import _adder_rtlil, adder_value
from test_rtl import Net, _corner_vectors, check_bit_exact

from qir.addergraph import AdderGraph
from qir.fixed import Fixed
from qir.ir import get_model, verify


def _valid(g: AdderGraph, pol: list[int]) -> bool:
    return all(pol[g.n_in + i] * pol[g.a[i]] > 0 or pol[g.n_in + i] * g.sign[i] * pol[g.b[i]] > 0
               for i in range(g.n_adders))


@pytest.mark.parametrize("seed", range(5))
def test_polarity_valid_deterministic_and_never_worse(seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(-40, 41, size=(12, 8))
    lo, hi = [-(1 << 7)] * 12, [(1 << 7) - 1] * 12
    g = build(m, None, lo, hi)
    pol = g.polarity()
    assert pol[:g.n_in] == [1] * g.n_in and set(pol) <= {1, -1}
    assert _valid(g, pol) and pol == build(m, None, lo, hi).polarity()
    assert g.inv_bits(pol) <= g.inv_bits([1] * g.n_nodes)


def test_polarity_removes_inverted_bits_of_a_chain_of_subtractions():
    # n1 = x0 - x1 with x0 4 bits and x1 8 bits: ~x1 stands alone above x0 (4 inverted bits
    # when n1 is stored as itself); stored negated, -n1 = x1 - x0 = x1 + ~x0 + 1 needs none
    g = AdderGraph(2, [0, 0], [15, 255], a=[0], sa=[0], b=[1], sb=[0], sign=[-1],
                   onode=[2], oshift=[0], osign=[1], offset=[3])
    assert g.inv_bits([1, 1, 1]) == 4
    assert g.polarity() == [1, 1, -1] and g.inv_bits() == 0
    assert g.polarity(keep={2}) == [1, 1, 1]  # a registered node keeps its plain field


@pytest.mark.parametrize("seed", range(3))
def test_kept_nodes_and_their_operands_keep_their_fields(seed):
    rng = np.random.default_rng(50 + seed)
    m = rng.integers(-40, 41, size=(10, 6))
    g = build(m, None, [-(1 << 7)] * 10, [(1 << 7) - 1] * 10)
    keep = {g.n_in + i for i in rng.choice(g.n_adders, size=g.n_adders // 3, replace=False)}
    pol = g.polarity(keep=keep)
    base0, top0, forms0 = g.fields([1] * g.n_nodes)
    base, top, forms = g.fields(pol)
    assert _valid(g, pol)
    for k in keep:
        assert pol[k] == 1 and (base[k], top[k], forms[k - g.n_in]) == (base0[k], top0[k], forms0[k - g.n_in])


def _sim_adder(wa, wb, sa, sb, neg, w):
    m = Module()
    a, b, y = Signal(wa), Signal(wb), Signal(w)
    m.d.comb += y.eq(adder_value(a, b, sa, sb, neg, w))
    sim = Simulator(m)
    bad = []

    async def tb(ctx):
        for av in range(1 << wa):
            for bv in range(1 << wb):
                ctx.set(a, av)
                ctx.set(b, bv)
                bb = ((1 << wb) - 1 - bv) if neg else bv
                if ctx.get(y) != ((av << sa) + (bb << sb)) % (1 << w):
                    bad.append((av, bv))

    sim.add_testbench(tb)
    sim.run()
    return bad


@pytest.mark.parametrize("shape", [(4, 4, 0, 0, 5), (4, 4, 0, 2, 7), (4, 4, 2, 0, 7), (3, 5, 0, 0, 6),
                                   (5, 3, 0, 0, 6), (4, 3, 6, 0, 10), (3, 4, 0, 6, 10), (4, 4, 0, 1, 3)])
@pytest.mark.parametrize("neg", [False, True])
def test_adder_value_exhaustive(shape, neg):
    wa, wb, sa, sb, w = shape
    assert _sim_adder(wa, wb, sa, sb, neg, w) == []


def test_subtraction_leaf_has_no_complemented_operand():
    """The old ``a + ~b`` leaf had a ``$not`` cell; Yosys then fed ~b to the carry chain's DI in
    about half the adders of a flattened design (one INV per bit)."""
    text = _adder_rtlil("t.add.x", 6, 6, 0, 2, True, 9)
    assert "$sub" in text and "$not" not in text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="needs yosys")
@pytest.mark.parametrize("shape,invs", [((8, 8, 0, 0, 9), 0), ((8, 8, 4, 0, 13), 4), ((8, 8, 0, 4, 13), 4)])
def test_yosys_maps_a_subtraction_without_carry_inverters(tmp_path, shape, invs):
    """INV cells of one subtracting leaf in ``synth_xilinx -family xcup``: only the bits where
    ~b stands alone (the old form gave 8, 8 and 4)."""
    wa, wb, sa, sb, w = shape
    (tmp_path / "a.il").write_text(_adder_rtlil("top", wa, wb, sa, sb, True, w))
    subprocess.run(["yosys", "-q", "-p", f"read_rtlil {tmp_path / 'a.il'}; synth_xilinx -family xcup -flatten "
                    f"-noiopad -top top; tee -q -o {tmp_path / 'stat.txt'} stat"], check=True, capture_output=True)
    cells = {ln.split()[0]: int(ln.split()[1]) for ln in (tmp_path / "stat.txt").read_text().splitlines()
             if len(ln.split()) == 2 and ln.split()[1].isdigit()}
    assert cells.get("LUT2", 0) > 0 and cells.get("INV", 0) == invs


def _negative_net(in_t: Fixed, matrix, offset):
    from qir.lowering import get_all_passes
    from xdsl.passes import PassPipeline

    from qir.ir import make_context

    net = Net("polar")
    x = net.input(in_t, [matrix.shape[0]])
    y = net.cmvm(x, matrix, offset, shift=1, style="cmvm", layer="fc")
    net.output(y)
    source = get_model(net.module.clone())
    PassPipeline.parse_spec(get_all_passes(), "qir-lower-cmvm").apply(
        make_context(), net.module)
    verify(net.module)
    return source, net


@pytest.mark.sim
@pytest.mark.parametrize("in_t", [Fixed(8, 3, True), Fixed(7, 7, False)], ids=str)
def test_negated_nodes_bit_exact_on_corners(tmp_path, in_t):
    """All-negative constants (every output a negation), mixed ones and offsets; min/max inputs:
    the generated adder graph stores some nodes negated and simulates exactly."""
    rng = np.random.default_rng(7)
    matrix = np.vstack([-rng.integers(1, 60, size=(3, 4)), rng.integers(-60, 60, size=(3, 4))])
    matrix[:, 0] = -np.abs(matrix[:, 0]) - 1
    offset = np.array([-5, 0, 1 << 9, -(1 << 10)])
    source, net = _negative_net(in_t, matrix, offset)
    ops = [op for op in net.module.walk() if op.name == "qir.addergraph"]
    assert ops and any(-1 in op.graph().polarity() for op in ops)
    design = generate(net.model)
    vecs = _corner_vectors(in_t, matrix, np.random.default_rng(8), 60)
    check_bit_exact(source, design, [vecs], tmp_path)

