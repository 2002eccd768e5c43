"""``qir.digitserial`` -> hardware: the layer's constant adder graph on one k-bit digit of every
input per cycle, an LSB-first shift-accumulator per output (``qir.digitserial``, issue #12).

- the input in offset binary, u = x - x_min (a signed input's sign bit inverted), zero-padded
  to D x k bits; ``start`` (the valid of the op's input, from ``qir.rtl.top``) is cycle 0: it
  feeds digit 0 straight from the input and loads digits 1 .. D-1 into ``hold`` (with D = 2 a
  register with an enable, else a shift register moving k bits down per cycle), so cycle d
  finds digit d at ``hold``'s bottom; the digit fed to the graph is a 2:1 multiplexer;
- the digit graph is ``qir.rtl.addergraph``'s generator on a ``qir.addergraph`` op built
  beside this one (inputs ``ufixed<k,k>``, zero offsets), so its adders are the shared adder
  modules (``qir.rtl.separate.Leaves``) of a parallel design;
- ``step`` counts the digit cycles (1 .. D-1 after a start, 0 idle); ``acc[j]`` (exact width,
  ``qir.digitserial.partial_ranges``) <= g_j + (start ? off'_j : acc[j] >> k) (arithmetic
  shift), and on cycles 1 .. D-1 the k low bits of acc[j] retire into ``low[j]`` (a shift
  register of k x (D - 1) bits);
- the result ``{acc[j], low[j]}`` is complete D cycles after the start (``cycles()``) and held
  until the next start (at least R cycles later: the top's ``in_ready``).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from qir.rtl import registry
from qir.rtl.addergraph import generate as generate_graph
from qir.rtl.values import Tensor, elem_shape, range_shape

from qir.dialect import DigitSerialOp, elem, elements_to_numpy, shape_of
from qir.digitserial import base_offset
from qir.fixed import Fixed


@registry.ii(DigitSerialOp)
def _ii(op: DigitSerialOp) -> int:
    """Cycles per input: R."""
    return op.R


@registry.latency(DigitSerialOp)
def _latency(op: DigitSerialOp) -> int:
    """Cycles from input to result: D (``cycles()``)."""
    return op.cycles()


def graph_op(op: DigitSerialOp):
    """A detached ``qir.addergraph`` computing the digit graph of ``op`` (inputs ``ufixed<k,k>``,
    zero offsets, unpipelined; its result type the exact type of the widest digit sum)."""
    from xdsl.dialects.builtin import StringAttr, TensorType
    from xdsl.ir import Block

    from qir.dialect import AdderGraphOp, fixed_type

    g = op.graph()
    (n_in,) = shape_of(op.input.type)
    k = op.k
    blk = Block(arg_types=[TensorType(fixed_type(Fixed(k, k, False)), [n_in])])
    b = [g.out_bounds(j) for j in range(g.n_out)]
    lo, hi = min((v[0] for v in b), default=0), max((v[1] for v in b), default=0)
    out_t = Fixed.for_range(lo, hi, 0)
    props = AdderGraphOp.properties_of(g)
    props.update(shift=op.shift, style=StringAttr(op.style.data))
    ag = AdderGraphOp.build(operands=[blk.args[0]], result_types=[TensorType(fixed_type(out_t), [g.n_out])],
                            properties=props)
    return ag, blk


@registry.generator(DigitSerialOp, "digitserial")
def generate(op: DigitSerialOp, ins: list[Tensor], prefix: str, where: str, start: Value | None = None,
             rst: Value | None = None):
    (x,) = ins
    D, k, n = op.D, op.k, op.n_bits
    in_t = x.spec
    m = Module()
    digits: list[Value] = []
    for i, e in enumerate(x.elems):
        raw = e.as_unsigned()
        u = Cat(raw[:-1], ~raw[-1]) if in_t.signed else raw  # offset binary: u = x - x_min
        u = Cat(u, Const(0, D * k - n)) if D * k > n else u
        if D == 2:
            h = Signal(k, name=f"{prefix}_hold{i}", reset_less=True)
            m.d.sync += h.eq(Mux(start, u[k:2 * k], h))
        else:
            h = Signal((D - 1) * k, name=f"{prefix}_hold{i}", reset_less=True)
            m.d.sync += h.eq(Mux(start, u[k:], h[k:]))
        dg = Signal(k, name=f"{prefix}_d{i}")
        m.d.comb += dg.eq(Mux(start, u[:k], h[:k]))
        digits.append(dg)
    ag, _blk = graph_op(op)
    sub, gt = generate_graph(ag, [Tensor(Fixed(k, k, False), (len(digits),), digits)], f"{prefix}_g", where)
    m.submodules.graph = sub
    ag.erase()

    step = Signal(range(max(D, 2)), name=f"{prefix}_step", init=0)
    m.d.sync += step.eq(Mux(rst, 0, Mux(start, 1, Mux((step != 0) & (step != D - 1), step + 1, 0))))
    active = Signal(name=f"{prefix}_active")
    m.d.comb += active.eq(step != 0)

    off = base_offset(op.matrix(), elements_to_numpy(op.offset), op.x_min)
    out_t = elem(op.output.type)
    sh_out = elem_shape(out_t)
    elems = []
    for j, ((alo, ahi), gj) in enumerate(zip(op.acc_ranges(), gt.elems)):
        shape = range_shape(alo, ahi)
        acc = Signal(shape, name=f"{prefix}_acc{j}", reset_less=True)
        m.d.sync += acc.eq(Mux(start | active, gj + Mux(start, Const(off[j]), acc >> k), acc))
        low = Signal(unsigned(k * (D - 1)), name=f"{prefix}_low{j}", reset_less=True)
        m.d.sync += low.eq(Mux(active, Cat(low[k:], acc[:k]), low))
        y = Signal(sh_out, name=f"{prefix}_y{j}")
        full = Cat(low, acc)
        m.d.comb += y.eq(full.as_signed() if shape.signed else full)
        elems.append(y)
    return m, Tensor(out_t, shape_of(op.output.type), elems)
