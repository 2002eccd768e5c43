"""``qir.lut`` -> hardware: one shared read-only table per op, one asynchronous read per element.
``qir.steps`` (a monotone step function on an input too wide for a table): a compare chain.

The table (2^W_in result mantissas, W_in <= 16) is an Amaranth ``Memory`` initialised with the
op's constants and never written; every element reads it through its own combinational read
port.  The Verilog holds the table once per op (an initialised ``reg`` array) and one array
read per element, so the file grows with table size + elements, not their product; synthesis
turns each read into a LUT ROM.  The address is ``x - min_int``: the raw bits of an unsigned
input, or those of a signed input with the sign bit inverted.  Result bounds are the min/max of
the table entries the element's bounds can address.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib.memory import Memory
from qir.rtl import registry
from qir.rtl.values import Tensor, elem_shape

from qir.dialect import LutOp, StepsOp, elem, elements_to_numpy, shape_of


@registry.generator(LutOp, "lut")
def generate(op: LutOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module, Tensor]:
    (x,) = ins
    in_t, out_t = x.spec, elem(op.output.type)
    table = [int(v) for v in elements_to_numpy(op.table).tolist()]
    sh = elem_shape(out_t)
    m = Module()
    mem = Memory(shape=sh, depth=len(table), init=table)
    m.submodules.table = mem
    elems, los, his = [], [], []
    for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
        sub = table[lo - in_t.min_int:hi - in_t.min_int + 1]
        port = mem.read_port(domain="comb")
        addr = Cat(v[:-1], ~v[-1]) if in_t.signed and in_t.width > 1 else (~v[-1] if in_t.signed else v)
        m.d.comb += port.addr.eq(addr)
        y = Signal(sh, name=f"{prefix}_y{k}")
        m.d.comb += y.eq(port.data)
        elems.append(y)
        los.append(min(sub))
        his.append(max(sub))
    return m, Tensor(out_t, shape_of(op.output.type), elems, los, his)


@registry.generator(StepsOp, "steps")
def steps(op: StepsOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module, Tensor]:
    """``qir.steps``: per element a chain of compares with the constant thresholds inside its
    bounds (the last one passed selects the value); a constant where the bounds pass none."""
    (x,) = ins
    out_t = elem(op.output.type)
    t = [int(v) for v in elements_to_numpy(op.thresholds).tolist()]
    vals = [int(v) for v in elements_to_numpy(op.values).tolist()]
    sh = elem_shape(out_t)
    m = Module()
    elems, los, his = [], [], []
    for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
        first = sum(1 for c in t if c <= lo)  # thresholds every value passes
        last = sum(1 for c in t if c <= hi)
        reach = vals[first:last + 1]
        if len(set(reach)) == 1:
            elems.append(Const(reach[0], sh))
        else:
            expr = Const(vals[first], sh)
            for j in range(first, last):
                expr = Mux(v >= t[j], Const(vals[j + 1], sh), expr)
            y = Signal(sh, name=f"{prefix}_y{k}")
            m.d.comb += y.eq(expr)
            elems.append(y)
        los.append(min(reach))
        his.append(max(reach))
    return m, Tensor(out_t, shape_of(op.output.type), elems, los, his)
