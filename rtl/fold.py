"""Folded layers (reuse R > 1, ``qir.folding``) -> hardware: ``qir.mvu`` and a ``qir.xnor`` with
``reuse``.

One input every R cycles, R = R_in x R_out (+ idle cycles; ``qir.folding.fold_shape``): cycle
t = g * R_in + r computes S = ceil(n_in / R_in) inputs (chunk r) x G = ceil(n_out / R_out)
outputs (group g):

- ``start`` (the valid of the op's input, from ``qir.rtl.top``) is cycle 0: it uses chunk 0
  straight from the input and loads the input into ``hold``: with R_out = 1 a shift register of
  the other chunks moving S elements down per cycle, with R_out > 1 all R_in chunks rotating by
  S per cycle (every group needs them); either way cycle t finds chunk t mod R_in at its bottom
  (inputs past n_in are zero constants: any R works);
- ``step`` counts the cycles (1..R-1 after a start, 0 idle), ``chunk``/``group`` the (r, g) of
  the current cycle (R_out > 1);
- the weights are ``rom`` (Amaranth ``lib.memory.Memory``, R_in x R_out words of S x G fields),
  placed as Yosys places it (``qir.folding.rom_map``): block RAM (pinned with ``rom_style =
  "block"``) has a synchronous read port addressed by the next cycle's word (0 while idle, so
  word 0 is ready for a start; under a stream stage's clock enable the port's enable is gated
  with the rest, ``EnableInserter``); a ROM in logic is read asynchronously at ``step`` (0 at a
  start), so each data bit is a function of the step register's bits alone;
- ``acc[g']`` (G of them, exact width: every partial sum, ``qir.folding.acc_range``) <=
  offset + p at a group's first cycle, acc + p on its others; with R_out = 1 the accumulators are
  the result (R cycles after the start, held until the next start: at least R cycles later,
  the top's ``in_ready``); with R_out > 1 ``out[j]`` takes acc + p at the last cycle of j's
  group and holds it until that group's turn after the next start.

Products: ``mac`` a multiplication by the ROM field (signed); ``po2``/``ternary`` a zero flag, a
sign and a shift amount per field (shift-add, no multiplier; the slot's smallest shift is wiring);
``xnor`` one bit per field, the XNOR's constant folded in (term = input bit ^ field), a popcount
per output and cycle (``rtl.xnor.popcount``), the threshold compare on the accumulated count.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib.memory import Memory
from qir.rtl import registry
from qir.rtl.values import Tensor, elem_shape, range_shape
from qir.rtl.xnor import popcount

from qir.dialect import MvuOp, XnorOp, elem, elements_to_numpy, shape_of
from qir.folding import FoldShape, acc_range, column_shifts, fold_shape, rom_map, shift_span, weight_bits


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
    """The control, input hold register, ROM and accumulators shared by every folded style."""

    def __init__(self, m: Module, prefix: str, start: Value, rst: Value, xs: list[Value], shape, fs: FoldShape,
                 fields: list[list[list[int]]], fbits: int):
        """``xs``: the n_in input values (``shape`` each); ``fields[t][s][g']``: the ROM field of
        cycle t, chunk slot s, output slot g' (``fbits`` wide, unsigned codes; ``_fields``)."""
        self.m, self.prefix, self.fs, self.start = m, prefix, fs, start
        self._control(rst)
        self.chunk = self._hold(xs, shape)
        self.field = self._rom(fields, fbits)

    def _control(self, rst: Value) -> None:
        """``step`` (cycle in the fold, 0 idle), ``busy`` (a working cycle), and with output
        groups ``group``, ``first``/``end`` (the group's first / last chunk)."""
        m, p, fs, start = self.m, self.prefix, self.fs, self.start
        step = self.step = Signal(range(fs.R), name=f"{p}_step", init=0)
        running = (step != 0) & (step != fs.R - 1)
        self.next_step = Mux(start, 1, Mux(running, step + 1, 0))
        # the counters are reset with the design (an X start before reset must not stick)
        m.d.sync += step.eq(Mux(rst, 0, self.next_step))
        self.active = Signal(name=f"{p}_active")  # cycles 1..R-1 of a fold
        m.d.comb += self.active.eq(step != 0)
        self.busy = start | self.active
        if fs.R_out == 1:
            return
        done = rst | (step == fs.R - 1)
        if fs.R_in > 1:
            r = Signal(range(fs.R_in), name=f"{p}_chunk", init=0)
            self.end = r == fs.R_in - 1
            self.first = r == 0
            m.d.sync += r.eq(Mux(done, 0, Mux(self.busy, Mux(self.end, 0, r + 1), r)))
        else:
            self.end = self.first = Const(1, 1)
        self.group = Signal(range(fs.R_out + 1), name=f"{p}_group", init=0)
        m.d.sync += self.group.eq(Mux(done, 0, Mux(self.busy & self.end, self.group + 1, self.group)))

    def _hold(self, xs: list[Value], shape) -> list[Signal]:
        """The S input values of the current cycle (chunk 0 live at a start, else from hold)."""
        m, p, fs, start = self.m, self.prefix, self.fs, self.start
        S, n = fs.S, fs.R_in * fs.S
        xp = list(xs) + [Const(0, shape)] * (n - len(xs))
        if fs.R_out == 1:  # a shift register of chunks 1..R_in-1
            nh = n - S
            hold = [Signal(shape, name=f"{p}_hold{k}", init=0) for k in range(nh)]
            for k in range(nh):
                m.d.sync += hold[k].eq(Mux(start, xp[S + k], hold[k + S] if k + S < nh else Const(0, shape)))
        else:  # all chunks, rotating: every output group walks them again
            hold = [Signal(shape, name=f"{p}_hold{k}", init=0) for k in range(n)]
            for k in range(n):
                m.d.sync += hold[k].eq(Mux(start, xp[(k + S) % n], hold[(k + S) % n]))
        chunk = []
        for s in range(S):
            c = Signal(shape, name=f"{p}_x{s}")
            m.d.comb += c.eq(Mux(start, xp[s], hold[s]) if hold else xp[s])
            chunk.append(c)
        return chunk

    def _rom(self, fields: list[list[list[int]]], fbits: int) -> list[list[Value]]:
        """The weight ROM (one word per working cycle, placed by ``rom_map``); ``field[s][g']``
        of the current cycle."""
        fs = self.fs
        placed = rom_map(fs.depth, fs.S * fs.G * fbits)["rom"]
        if placed == "bram":  # block RAM: a synchronous read of the next cycle's word
            rd, field = rom(self.m, fields, fbits, attrs={"rom_style": "block"})
            nxt = self.next_step
            self.m.d.comb += rd.addr.eq(nxt if fs.depth == fs.R else Mux(nxt < fs.depth, nxt, 0))  # idle tail: word 0
        else:  # logic: a function of the step register's bits alone (a LUT per bit per 64 words)
            rd, field = rom(self.m, fields, fbits, domain="comb")
            st = self.step  # 0 at a start: word 0; the idle tail reads word 0 (still a function of step alone)
            self.m.d.comb += rd.addr.eq(st if fs.depth == fs.R else Mux(st < fs.depth, st, 0))
        return field

    def accumulate(self, parts: list[Value], offsets: list[int], lo: int, hi: int) -> list[Signal]:
        """The n_out results (exact width ``range_shape(lo, hi)``) from the G per-cycle sums
        ``parts`` and the n_out ``offsets``."""
        m, p, fs = self.m, self.prefix, self.fs
        shape = range_shape(lo, hi)
        if fs.R_out == 1:  # the accumulators are the result
            acc = []
            for j, (part, off) in enumerate(zip(parts, offsets)):
                a = Signal(shape, name=f"{p}_acc{j}", init=0)
                m.d.sync += a.eq(Mux(self.start, part + off, Mux(self.active, a + part, a)))
                acc.append(a)
            return acc
        sums = []
        for gi, part in enumerate(parts):
            a = Signal(shape, name=f"{p}_acc{gi}", init=0)
            nxt = Signal(shape, name=f"{p}_sum{gi}")
            m.d.comb += nxt.eq(Mux(self.first, part + self._group_offset(offsets, gi, shape), a + part))
            m.d.sync += a.eq(Mux(self.busy, nxt, a))
            sums.append(nxt)
        out = []
        for j in range(len(offsets)):
            g, gi = divmod(j, fs.G)
            o = Signal(shape, name=f"{p}_out{j}", init=0)
            m.d.sync += o.eq(Mux(self.busy & self.end & (self.group == g), sums[gi], o))
            out.append(o)
        return out

    def _group_offset(self, offsets: list[int], gi: int, shape) -> Value:
        """The offset of output slot ``gi`` in the current group (a constant when all agree)."""
        fs = self.fs
        vals = [offsets[g * fs.G + gi] if g * fs.G + gi < len(offsets) else 0 for g in range(fs.R_out)]
        return _select([Const(v, shape) for v in vals], self.group)


def _select(values: list[Value], index: Value, bit: int = 0) -> Value:
    """values[index] as a tree of 2:1 muxes on index's bits (not an Array: its case statement
    is evaluated late in Icarus); equal neighbours share one leaf."""
    if len(values) == 1:
        return values[0]
    lo, hi = values[0::2], values[1::2]
    a = _select(lo, index, bit + 1)
    if not hi:
        return a
    b = _select(hi, index, bit + 1)
    if isinstance(a, Const) and isinstance(b, Const) and a.value == b.value:
        return a
    return Mux(index[bit], b, a)


def rom(m: Module, fields: list[list[list[int]]], fbits: int, attrs: dict | None = None, domain: str = "sync"):
    """A weight ROM: word r packs ``fields[r][s][j]`` (``fbits`` wide, unsigned codes) at bit
    (s * n_j + j) * fbits; an Amaranth ``lib.memory.Memory`` (``attrs`` on it) with one read port
    in ``domain`` ("sync": data one cycle after the address; "comb": asynchronous).  Returns
    (read port, field[s][j] slices of its data); the caller drives the address."""
    n_s, n_j = len(fields[0]), len(fields[0][0])
    mask = (1 << fbits) - 1
    words = []
    for word in fields:
        w = 0
        for s, row in enumerate(word):
            for j, v in enumerate(row):
                w |= (v & mask) << ((s * n_j + j) * fbits)
        words.append(w)
    width = n_s * n_j * fbits
    cuts = rom_slices(len(words), width)
    if len(cuts) == 1:
        mem = Memory(shape=unsigned(width), depth=len(words), init=words, attrs=attrs)
        m.submodules.rom = mem
        rd = mem.read_port(domain=domain)
    else:  # several memories side by side (``rom_slices``), read as one port
        rd = _SlicedPort(m, words, cuts, attrs, domain)
    return rd, [[rd.data[(s * n_j + j) * fbits:(s * n_j + j + 1) * fbits] for j in range(n_j)] for s in range(n_s)]


#: a weight ROM with more bits than this is built as several memories of whole 72-bit lanes
#: (``rom_slices``): Amaranth's RTLIL backend expands a memory's initial value into one net object
#: per bit (``emit_memory``: about 230 bytes per bit at its peak; an 8.4 Mbit ROM, 2 GB), one
#: memory at a time, so slices bound that peak; Yosys ``memory_libmap`` splits a wide memory into
#: lanes of its block-RAM port width anyway (72, 36, 18, 9, 4, 2, 1 bits, all dividing 72), so
#: the block RAM count does not change
ROM_SLICE_BITS = 1 << 20
#: the lane the slices are cut in (a multiple of every RAMB18/RAMB36 port width)
ROM_LANE = 72


def rom_slices(depth: int, width: int) -> list[tuple[int, int]]:
    """The (low bit, width) of each memory of a ``depth`` x ``width`` ROM: one when it holds at
    most ``ROM_SLICE_BITS`` bits, else slices of whole ``ROM_LANE`` lanes of at most that many
    bits (at least one lane), the last one the rest."""
    if depth * width <= ROM_SLICE_BITS:
        return [(0, width)]
    step = max(ROM_LANE, ROM_SLICE_BITS // max(depth, 1) // ROM_LANE * ROM_LANE)
    return [(lo, min(step, width - lo)) for lo in range(0, width, step)]


class _SlicedPort:
    """One read port over several memories (``rom_slices``): ``addr`` (and, synchronous, ``en``)
    fan out to every slice's port, ``data`` is their concatenation."""

    def __init__(self, m: Module, words: list[int], cuts: list[tuple[int, int]], attrs, domain: str):
        ports = []
        for k, (lo, w) in enumerate(cuts):
            mask = (1 << w) - 1
            mem = Memory(shape=unsigned(w), depth=len(words), init=[(v >> lo) & mask for v in words], attrs=attrs)
            m.submodules[f"rom{k}"] = mem
            ports.append(mem.read_port(domain=domain))
        self.addr = Signal(range(max(len(words), 2)), name="rom_addr")
        m.d.comb += [p.addr.eq(self.addr) for p in ports]
        if domain != "comb":
            self.en = Signal(name="rom_en", init=1)  # undriven: always enabled
            m.d.comb += [p.en.eq(self.en) for p in ports]
        # a Signal, not the Cat itself: every field is a slice of ``data``, and Amaranth's domain
        # lowering rebuilds each statement's expressions, so a slice of a Cat would carry (and the
        # netlist emitter re-walk) the whole word per field: S x G fields x the word's width nets
        self.data = Signal(sum(w for _, w in cuts), name="rom_data")
        m.d.comb += self.data.eq(Cat(*(p.data for p in ports)))


def po2_code(w: int, k0: int) -> int:
    """The po2/ternary ROM field of weight ``w`` (0 or +-2^k) against the constant shift ``k0``
    of its output slot: [zero flag, sign, k - k0]."""
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


def _fields(matrix, fs: FoldShape, code) -> list[list[list[int]]]:
    """ROM fields per (cycle t = g * R_in + r, slot s, output slot g'): ``code(w, g')`` for
    w = W[r*S + s, g*G + g'] (0 past n_in / n_out)."""
    n_in, n_out = len(matrix), len(matrix[0]) if matrix else 0
    S, G = fs.S, fs.G

    def w(i: int, j: int):
        return matrix[i][j] if i < n_in and j < n_out else 0

    return [[[code(w(r * S + s, g * G + gi), gi) for gi in range(G)] for s in range(S)]
            for g in range(fs.R_out) for r in range(fs.R_in)]


def _po2_code(matrix: np.ndarray, G: int):
    """``code(w, g')`` of the po2/ternary fields: shifts relative to output slot g''s smallest."""
    ks = column_shifts(matrix, G)
    return lambda w, g: po2_code(int(w), ks[g])


@registry.generator(MvuOp, "mvu")
def generate(op: MvuOp, ins: list[Tensor], prefix: str, where: str, start: Value | None = None,
             rst: Value | None = None):
    (x,) = ins
    wm = elements_to_numpy(op.matrix)
    matrix = wm.tolist()
    offsets = [int(v) for v in elements_to_numpy(op.offset).ravel()]
    fs = fold_shape(x.size, len(offsets), op.R)
    out_spec = elem(op.output.type)
    m = Module()
    xsh = elem_shape(x.spec)
    if op.style.data == "mac":  # a signed field, a multiplier per product
        f = _Fold(m, prefix, start, rst, x.elems, xsh, fs, _fields(matrix, fs, lambda w, g: int(w)),
                  weight_bits(wm, "mac"))
        prods = [[product("mac", f.chunk[s], f.field[s][g]) for s in range(fs.S)] for g in range(fs.G)]
    else:  # po2 / ternary: [zero flag, sign, shift - the slot's smallest shift ks[g] (wiring)]
        f = _Fold(m, prefix, start, rst, x.elems, xsh, fs, _fields(matrix, fs, _po2_code(wm, fs.G)),
                  weight_bits(wm, op.style.data, fs.G))
        ks, kb = column_shifts(wm, fs.G), shift_span(wm, fs.G).bit_length()
        prods = [[product(op.style.data, f.chunk[s], f.field[s][g], ks[g], kb) for s in range(fs.S)]
                 for g in range(fs.G)]
    lo, hi = acc_range(wm, elements_to_numpy(op.offset), x.spec.min_int, x.spec.max_int)
    acc = f.accumulate([tree_sum(row) for row in prods], offsets, lo, hi)
    sh = elem_shape(out_spec)
    elems = []
    for j, a in enumerate(acc):
        y = Signal(sh, name=f"{prefix}_y{j}")
        m.d.comb += y.eq(a)
        elems.append(y)
    return m, Tensor(out_spec, shape_of(op.output.type), elems)


def generate_xnor(op: XnorOp, x: Tensor, prefix: str, start: Value, rst: Value):
    """A folded ``qir.xnor`` (``reuse`` > 1): see the module docstring."""
    n = op.n_in
    k = op.bit()
    one_k = (op.one.value.data >> k) & 1
    w = elements_to_numpy(op.weights).T.tolist()  # (n_in, n_out) bits
    n_out = shape_of(op.output.type)[0]
    fs = fold_shape(n, n_out, op.R)
    m = Module()
    bits = [e[k] for e in x.elems]
    # term = raw ^ c with c = one_k ^ w (the unfolded generator: ~raw where one_k ^ w, else raw); pads: 0 ^ 0
    f = _Fold(m, prefix, start, rst, bits, unsigned(1), fs,
              _fields([[one_k ^ b for b in row] for row in w], fs, lambda c, g: c), 1)
    stmts: list = []
    parts = [popcount([f.chunk[s] ^ f.field[s][g] for s in range(fs.S)], fs.S, f"{prefix}_p{g}", stmts)
             for g in range(fs.G)]
    m.d.comb += stmts
    acc = f.accumulate(parts, [0] * n_out, 0, n)
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

