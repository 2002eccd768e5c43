"""Folded layers (reuse R > 1, ``qir.folding``) -> hardware: ``qir.mvu`` and a ``qir.xnor`` with
``reuse``.

One input every R cycles; per cycle S = ceil(n_in / R) inputs times all n_out outputs:

- ``start`` (the valid of the op's input, from ``qir.rtl.top``) is cycle 0: it uses inputs
  0..S-1 straight from the input and loads the other chunks into ``hold``, a shift register that
  moves S elements down every cycle, so cycle r (1..R-1) finds chunk r at its bottom (inputs past
  n_in are zero constants: any R works);
- the weights are ``rom`` (Amaranth ``lib.memory.Memory``, R words of S x n_out fields, one
  synchronous read port: Yosys maps it to block RAM / LUTRAM); its address is the next cycle's
  chunk (0 while idle, so word 0 is ready for a start); under a stream stage's clock enable the
  port's enable is gated with the rest (``EnableInserter``);
- ``acc[j]`` (exact width: every partial sum, ``qir.folding.acc_range``) <= offset[j] + p0[j] at
  a start, acc[j] + p[j] while ``step`` counts 1..R-1, else holds; the result is acc (R cycles
  after the start, held until the next start: at least R cycles later, the top's ``in_ready``).

Products: ``mac`` a multiplication by the ROM field (signed); ``po2``/``ternary`` a zero flag, a
sign and a shift amount per field (shift-add, no multiplier); ``xnor`` one bit per field, the
XNOR's constant folded in (term = input bit ^ field), a popcount per output and cycle
(``rtl.xnor.popcount``), the threshold compare on the accumulated count.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib.memory import Memory
from qir.rtl import registry
from qir.rtl.values import Tensor, elem_shape, range_shape
from qir.rtl.xnor import popcount

from qir.dialect import MvuOp, XnorOp, elem, elements_to_numpy, shape_of
from qir.folding import acc_range, column_shifts, geometry, shift_span, weight_bits


@registry.ii(MvuOp)
def _ii(op: MvuOp) -> int:
    """Cycles per input: R."""
    return op.R


@registry.latency(MvuOp)
@registry.latency(XnorOp)
def _cycles(op: MvuOp | XnorOp) -> int:
    """Cycles from input to result (the op's ``cycles()``: R folded, 0 unfolded)."""
    return op.cycles()


@registry.ii(XnorOp)
def _xnor_ii(op: XnorOp) -> int:
    """A folded qir.xnor takes an input every R cycles (unfolded: every cycle)."""
    return op.R


def tree_sum(terms: list[Value]) -> Value:
    """A balanced sum (Amaranth widens every node: exact)."""
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] for k in range(0, len(terms) - 1, 2)] + ([terms[-1]] if len(terms) & 1 else [])
    return terms[0]


class _Fold:
    """The control, input hold register and ROM shared by every folded style."""

    def __init__(self, m: Module, prefix: str, start: Value, rst: Value, xs: list[Value], shape, R: int, S: int,
                 fields: list[list[list[int]]], fbits: int):
        """``xs``: the n_in input values (``shape`` each); ``fields[r][s][j]``: the ROM field of
        cycle r, chunk slot s, output j (``fbits`` wide, unsigned codes)."""
        self.m, self.R, self.S = m, R, S
        pad = [Const(0, shape)] * (R * S - len(xs))
        xp = list(xs) + pad
        nh = (R - 1) * S
        hold = [Signal(shape, name=f"{prefix}_hold{k}", init=0) for k in range(nh)]
        for k in range(nh):
            nxt = hold[k + S] if k + S < nh else Const(0, shape)
            m.d.sync += hold[k].eq(Mux(start, xp[S + k], nxt))
        self.chunk = []
        for s in range(S):
            c = Signal(shape, name=f"{prefix}_x{s}")
            m.d.comb += c.eq(Mux(start, xp[s], hold[s]) if nh else xp[s])
            self.chunk.append(c)
        step = Signal(range(R), name=f"{prefix}_step", init=0)
        self.step, self.start = step, start
        last = step == R - 1
        # the step counter is reset with the design (an X start before reset must not stick)
        m.d.sync += step.eq(Mux(rst, 0, Mux(start, 1, Mux((step != 0) & ~last, step + 1, 0))))
        rd, self.field = rom(m, fields, fbits)
        m.d.comb += rd.addr.eq(Mux(start, 1 % R, Mux((step != 0) & ~last, step + 1, 0)))
        self.active = Signal(name=f"{prefix}_active")
        m.d.comb += self.active.eq(step != 0)

    def accumulate(self, prefix: str, parts: list[Value], offsets: list[int], lo: int, hi: int) -> list[Signal]:
        acc = []
        for j, (p, off) in enumerate(zip(parts, offsets)):
            a = Signal(range_shape(lo, hi), name=f"{prefix}_acc{j}", init=0)
            self.m.d.sync += a.eq(Mux(self.start, p + off, Mux(self.active, a + p, a)))
            acc.append(a)
        return acc


def rom(m: Module, fields: list[list[list[int]]], fbits: int):
    """The weight ROM of a folded layer: word r packs ``fields[r][s][j]`` (``fbits`` wide) at bit
    (s * n_out + j) * fbits; an Amaranth ``lib.memory.Memory`` with one synchronous read port
    (data one cycle after the address: Yosys maps it to block RAM / LUTRAM).  (read port,
    field[s][j] slices of its data)."""
    n_s, n_out = len(fields[0]), len(fields[0][0])
    mask = (1 << fbits) - 1
    words = []
    for word in fields:
        w = 0
        for s, row in enumerate(word):
            for j, v in enumerate(row):
                w |= (v & mask) << ((s * n_out + j) * fbits)
        words.append(w)
    mem = Memory(shape=unsigned(n_s * n_out * fbits), depth=len(words), init=words)
    m.submodules.rom = mem
    rd = mem.read_port(domain="sync")
    return rd, [[rd.data[(s * n_out + j) * fbits:(s * n_out + j + 1) * fbits] for j in range(n_out)]
                for s in range(n_s)]


def po2_code(w: int, k0: int) -> int:
    """The po2/ternary ROM field of weight ``w`` (0 or +-2^k) against the constant shift ``k0``
    of its column: [zero flag, sign, k - k0]."""
    return 1 if not w else (2 if w < 0 else 0) | ((abs(w).bit_length() - 1 - k0) << 2)


def product(style: str, x: Value, fld: Value, k0: int = 0, kb: int = 0) -> Value:
    """One folded product of input ``x`` and ROM field ``fld``: ``mac`` a signed multiplication,
    ``po2``/``ternary`` (``po2_code``) a shift by the constant ``k0`` (wiring) and by the field's
    ``kb``-bit shift amount, negated or zeroed by its flags."""
    if style == "mac":
        return x * fld.as_signed()
    xv = x << k0 if k0 else x
    mag = (xv << fld[2:]) if kb else xv
    return Mux(fld[0], 0, Mux(fld[1], -mag, mag))


def _fields(matrix, R: int, S: int, code) -> list[list[list[int]]]:
    """ROM fields per (cycle, slot, output): ``code(w)`` for W[r*S + s, j], 0 code of 0 past n_in."""
    n_in, n_out = len(matrix), len(matrix[0]) if matrix else 0
    return [[[code(matrix[r * S + s][j]) if r * S + s < n_in else code(0) for j in range(n_out)]
             for s in range(S)] for r in range(R)]


@registry.generator(MvuOp, "mvu")
def generate(op: MvuOp, ins: list[Tensor], prefix: str, where: str, start: Value | None = None,
             rst: Value | None = None):
    (x,) = ins
    R = op.R
    n_in = x.size
    S, _ = geometry(n_in, R)
    matrix = elements_to_numpy(op.matrix).tolist()
    offsets = [int(v) for v in elements_to_numpy(op.offset).ravel()]
    n_out = len(offsets)
    out_spec = elem(op.output.type)
    style = op.style.data
    m = Module()
    xsh = elem_shape(x.spec)
    if style == "mac":
        fb = weight_bits(elements_to_numpy(op.matrix), "mac")  # a signed field
        f = _Fold(m, prefix, start, rst, x.elems, xsh, R, S, _fields(matrix, R, S, int), fb)
        prods = [[product("mac", f.chunk[s], f.field[s][j]) for s in range(S)] for j in range(n_out)]
    else:  # po2 / ternary: [zero flag, sign, shift - the column's smallest shift kc[j] (wiring)]
        kc = column_shifts(elements_to_numpy(op.matrix))
        kb = shift_span(elements_to_numpy(op.matrix)).bit_length()

        def fields_of(r: int, s: int, j: int) -> int:
            i = r * S + s
            return po2_code(int(matrix[i][j]) if i < n_in else 0, kc[j])

        fields = [[[fields_of(r, s, j) for j in range(n_out)] for s in range(S)] for r in range(R)]
        f = _Fold(m, prefix, start, rst, x.elems, xsh, R, S, fields, 2 + kb)
        prods = [[product(style, f.chunk[s], f.field[s][j], kc[j], kb) for s in range(S)] for j in range(n_out)]
    parts = [tree_sum(row) for row in prods]
    lo, hi = acc_range(elements_to_numpy(op.matrix), elements_to_numpy(op.offset), x.spec.min_int, x.spec.max_int)
    acc = f.accumulate(prefix, parts, offsets, lo, hi)
    sh = elem_shape(out_spec)
    elems = []
    for j, a in enumerate(acc):
        y = Signal(sh, name=f"{prefix}_y{j}")
        m.d.comb += y.eq(a)
        elems.append(y)
    return m, Tensor(out_spec, shape_of(op.output.type), elems)


def generate_xnor(op: XnorOp, x: Tensor, prefix: str, start: Value, rst: Value):
    """A folded ``qir.xnor`` (``reuse`` > 1): see the module docstring."""
    R, n = op.R, op.n_in
    S, _ = geometry(n, R)
    k = op.bit()
    one_k = (op.one.value.data >> k) & 1
    w = elements_to_numpy(op.weights).T.tolist()  # (n_in, n_out) bits
    m = Module()
    bits = [e[k] for e in x.elems]
    # term = raw ^ c with c = one_k ^ w (the unfolded generator: ~raw where one_k ^ w, else raw); pads: 0 ^ 0
    f = _Fold(m, prefix, start, rst, bits, unsigned(1), R, S, _fields([[one_k ^ b for b in row] for row in w], R, S,
                                                                  lambda c: c), 1)
    stmts: list = []
    n_out = len(w[0]) if w else shape_of(op.output.type)[0]
    parts = [popcount([f.chunk[s] ^ f.field[s][j] for s in range(S)], S, f"{prefix}_p{j}", stmts)
             for j in range(n_out)]
    m.d.comb += stmts
    acc = f.accumulate(prefix, parts, [0] * n_out, 0, n)
    out_spec = elem(op.output.type)
    sh = elem_shape(out_spec)
    tt = op.threshold_table()
    elems, los, his = [], [], []
    for j, a in enumerate(acc):
        y = Signal(sh, name=f"{prefix}_y{j}")
        if tt is None:
            m.d.comb += y.eq(a << out_spec.frac)
            los.append(0)
            his.append(n << out_spec.frac)
        else:
            t, below, above = (int(v[j]) for v in tt)
            m.d.comb += y.eq(Mux(a >= t, Const(above, sh), Const(below, sh)))
            los.append(min(above, below) if 0 < t <= n else (above if t <= 0 else below))
            his.append(max(above, below) if 0 < t <= n else (above if t <= 0 else below))
        elems.append(y)
    return m, Tensor(out_spec, shape_of(op.output.type), elems, los, his)

