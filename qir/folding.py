"""Folded layers (reuse factor R, issue #12): what a folded constant-matrix layer *is* and what it
costs, in one place (the folded op's ``cost()``, ``qir report`` and the automatic folding all
call ``estimate``).

A layer y[j] = sum_i x[i] * W[i, j] + off[j] (n_in inputs, n_out outputs) folded by R is computed
over R clock cycles by about 1/R of the arithmetic (FINN's MVAU with SIMD = S, PE = G;
hls4ml's Resource strategy):

- R is split into R_in x R_out (``fold_shape``): S = ceil(n_in / R_in) inputs per cycle for a
  group of G = ceil(n_out / R_out) outputs; cycle t = g * R_in + r (g < R_out output groups,
  r < R_in input chunks) uses inputs r*S .. r*S + S - 1 of outputs g*G .. g*G + G - 1, zero
  weights past n_in / n_out (any R works, no list of valid reuse factors);
  R_in * R_out <= R, the cycles after the last group idle;
- the weights are a ROM of R_in * R_out words of S x G weights (Amaranth ``lib.memory.Memory``);
  ``rom_map`` says where Yosys puts it: block RAM (a synchronous read port one cycle ahead) or
  logic (read asynchronously at the step counter);
- the input is held in a register of chunks (a shift register when R_out = 1, a rotating one
  when the chunks are needed once per output group); G exact-width accumulators (every partial
  sum lies in the union of the partial-sum intervals, which the accumulator's width holds; the
  final sum has the op's exact result type), and with R_out > 1 one output register per output,
  written at the end of its group;
- a new input is accepted every R cycles (``cycles_per_beat`` = R); the result is ready R cycles
  after the input.

Styles (per cycle, S x G products): ``mac`` (multipliers from the ROM word: DSPs),
``po2`` / ``ternary`` (weights 0 or +-2^k: a sign, a zero flag and a shift amount per weight, a
shift-add unit instead of a multiplier), ``xnor`` (binary weights on a two-valued input: a weight
bit per product, XNOR + popcount of S bits, accumulated popcounts).  ``cmvm`` (CSD adder graphs)
has no folded form of its own: folded, it is ``mac``.

**Stream form** (``qir.stream_mvu``, a dense consuming the beats of a flattened stream, FINN's
MVU on a stream): the n_in = N x C inputs arrive as N beats of C; per beat the layer spends
``R_b x R_out`` cycles: ``R_b`` input chunks of ``S = ceil(C / R_b)`` inputs, each multiplied by
``R_out`` output groups of ``G = ceil(n_out / R_out)`` outputs (S x G products per cycle; the ROM
holds N x R_b x R_out words of S x G fields).  One reuse figure R (cycles per beat, what the
automatic folding chooses) maps to ``stream_fold(C, n_out, R)``: R_b = min(R, C), R_out =
min(n_out, max(1, R // C)), so outputs are folded only once a beat is down to one input per cycle.
The ``xnor`` style of the stream form (a binary dense on a flattened two-valued stream) has the
same geometry with 1-bit fields, 1-bit held inputs and popcount accumulators.

``estimate(op, R, style)`` works on a layer op before lowering (``qir.dense``; ``qir.conv`` as
its per-beat kernel, the stream form) and on the lowered ops (``qir.cmvm``, ``qir.xnor``,
``qir.mvu``): no hardware is built, numbers come from the weights and the types only.
"""
from __future__ import annotations

import functools
from math import ceil, log2
from typing import NamedTuple

import numpy as np

from qir.fixed import Fixed

#: the folded implementation styles
FOLD_STYLES = ("mac", "po2", "ternary", "xnor")

#: ``qir report`` / ``estimate`` calibration constants (LUT6 architecture):
#: LUTs per adder bit (carry chain), per 2:1 mux bit, fixed control LUTs (counter, handshake)
LUT_PER_ADDER_BIT = 1.0
LUT_PER_MUX_BIT = 0.5
CONTROL_LUTS = 12
#: XNOR + popcount LUTs per counted bit (``qir.dialect.dataflow_ops.XNOR_LUTS_PER_INPUT``)
XNOR_LUTS_PER_INPUT = 0.78
#: a multiplier goes to a DSP48E2 (27 x 18) when both operands are wider than this; narrower
#: products are LUTs (about a x b / 2)
DSP_MIN_WIDTH = 4
#: Yosys ``memory_libmap`` (synth_xilinx, xcup) costs: a ROM bit in logic, a RAMB18 / RAMB36
#: (``brams_xcu.txt``); it maps a ROM to whichever is cheaper (``rom_map``)
ROM_LOGIC_COST_PER_BIT = 1 / 64
RAMB18_COST, RAMB36_COST = 129, 257
#: the folded ROM form's (``rtl/fold.py``) LUTs per bit where Yosys ``synth_xilinx`` (xcup) differs
#: from the generic figures above, fitted on single folded layers (``tests/test_fold.py::
#: YOSYS_FOLDED``, bench/README.md "Folded layers"): the input hold register's load/shift mux and
#: the chunk select (a LUT3 per bit, not half a LUT6); an accumulator with R_out = 1 (``acc <=
#: start ? part + offset : acc + part``: two adders' worth with non-zero offsets, a load mux
#: beside the carry chain's propagate LUT when every offset is 0), with R_out > 1 (``first ?
#: offset[group] : acc`` merges into the propagate LUT: one per bit, the offset select
#: included); mac's sum of the S products per output (Yosys' carry-save ``$macc``
#: tree of the S products and the accumulator); po2/ternary's product bits (negation, zero/sign
#: select and the sum, ``_datapath``'s ``products x (pw + log2 S)``; the shifter's mux levels stay
#: at ``LUT_PER_MUX_BIT``: MUXF7/8 build them)
ROM_HOLD_LUT_PER_BIT = 1.0
ROM_ACC_LUT_PER_BIT = 2.25
ROM_ACC0_LUT_PER_BIT = 2.0
ROM_GROUP_ACC_LUT_PER_BIT = 1.0
ROM_SUM_LUT_PER_BIT = 1.3
ROM_PO2_LUT_PER_BIT = 2.1
#: (data width, depth) configurations of a RAMB18 / RAMB36 read port (9-bit lanes hold data bits)
RAMB18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
RAMB36_SHAPES = ((1, 32768), (2, 16384), (4, 8192), (9, 4096), (18, 2048), (36, 1024), (72, 512))


def geometry(n_in: int, R: int) -> tuple[int, int]:
    """(S, steps): inputs per cycle and cycles per input of a layer with ``n_in`` inputs folded
    by ``R`` (steps = R; the last ``R*S - n_in`` input slots are zero padding)."""
    if not isinstance(R, (int, np.integer)) or isinstance(R, bool) or R < 1:
        raise ValueError(f"reuse must be an integer >= 1, got {R!r}")
    return max(1, -(-n_in // R)), int(R)


class FoldShape(NamedTuple):
    """How a layer folded by R is built (``fold_shape``)."""
    R: int      # cycles per input vector
    R_in: int   # input chunks per output group
    R_out: int  # output groups
    S: int      # inputs per cycle (ceil(n_in / R_in))
    G: int      # outputs per cycle (ceil(n_out / R_out))

    @property
    def depth(self) -> int:
        """ROM words: one per working cycle (R_in x R_out <= R)."""
        return self.R_in * self.R_out


def fold_shape(n_in: int, n_out: int, R: int) -> FoldShape:
    """The split of R into R_in input chunks x R_out output groups (R_in = R // R_out).

    Rule: the R_out in 1 .. min(R, n_out) with the fewest products per cycle
    S x G = ceil(n_in / (R // R_out)) x ceil(n_out / R_out), ties to the smallest R_out (folding
    over inputs only while it is as cheap: it needs no output registers).  So R <= n_in folds over
    inputs as before when R divides n_in, and R up to n_in x n_out keeps shrinking the arithmetic
    (one product per cycle at R = n_in x n_out)."""
    geometry(n_in, R)  # validates R
    best = None
    for r_out in range(1, max(1, min(R, n_out)) + 1):
        r_in = R // r_out
        s, g = -(-n_in // r_in) if n_in else 1, -(-n_out // r_out) if n_out else 1
        if best is None or max(s, 1) * g < best.S * best.G:
            best = FoldShape(int(R), r_in, r_out, max(s, 1), g)
    return best


def rom_map(depth: int, width: int) -> dict:
    """Where Yosys ``synth_xilinx`` (xcup) puts a synchronous-read ROM of ``depth`` x ``width``
    bits: the cheaper of logic (``ROM_LOGIC_COST_PER_BIT`` per bit) and block RAM (the fewest
    RAMB18 / RAMB36 of one read-port shape); LUTRAM is never used for a ROM (``prune_rom``).
    Returns ``{"rom": "logic" | "bram", "lut", "bram18"}``: in logic about ``width`` LUT6 per 64
    words (the MUXF7/8 mux wider ROMs for free; measured, bench/README.md "Folded layers");
    ``bram18`` counts RAMB18 equivalents (a RAMB36 is 2)."""
    if depth <= 1 or width <= 0:
        return {"rom": "logic", "lut": 0, "bram18": 0}
    cands = []
    for shapes, cost, size in ((RAMB18_SHAPES, RAMB18_COST, 1), (RAMB36_SHAPES, RAMB36_COST, 2)):
        for w, d in shapes:
            n = -(-width // w) * -(-depth // d)
            cands.append((n * cost, n * size))
    bram_cost, bram18 = min(cands)
    if depth * width * ROM_LOGIC_COST_PER_BIT <= bram_cost:
        return {"rom": "logic", "lut": width * -(-depth // 64), "bram18": 0}
    return {"rom": "bram", "lut": 0, "bram18": bram18}


def stream_fold(beat: int, n_out: int, R: int) -> tuple[int, int]:
    """(R_b, R_out) of a stream-consuming layer (``qir.stream_mvu``) with ``beat`` inputs per beat
    and ``n_out`` outputs at R cycles per beat (module docstring): input chunks per beat and output
    groups, R_b x R_out <= R cycles per beat."""
    geometry(1, R)
    rb = min(int(R), max(beat, 1))
    return rb, min(max(n_out, 1), max(1, int(R) // max(beat, 1)))


def _int64(m: np.ndarray) -> np.ndarray | None:
    """``m`` (integer objects) as int64 when every entry is below 2^62 in magnitude, else None:
    the numpy fast path of the helpers below for multi-million-weight layers (issue #12)."""
    try:
        out = m.astype(np.int64)
    except OverflowError:
        return None
    return out if not out.size or int(np.abs(out).max()) < 1 << 62 else None


def weight_bits(matrix: np.ndarray, style: str, G: int | None = None) -> int:
    """Bits per weight in the ROM: ``mac`` the two's-complement width of the weights' range,
    ``po2``/``ternary`` sign + zero flag + shift amount (relative to the output slot's smallest
    shift, ``slot_shifts``; ``G`` outputs per cycle, None = all), ``xnor`` one bit."""
    m = np.asarray(matrix, dtype=object)
    if style == "xnor":
        return 1
    if style in ("po2", "ternary"):  # shift relative to the slot's smallest (a constant shift)
        return 2 + shift_span(m, G).bit_length()
    small = _int64(m)
    if small is not None:
        lo, hi = (int(small.min()), int(small.max())) if small.size else (0, 0)
    else:
        lo = min((int(v) for v in m.ravel()), default=0)
        hi = max((int(v) for v in m.ravel()), default=0)
    return Fixed.for_range(min(lo, -1), max(hi, 0), 0).width  # a signed field (rtl/fold.py)


def _shifts(matrix: np.ndarray) -> np.ndarray:
    """k per entry for the weights +-2^k (-1 for zeros; other magnitudes give floor(log2))."""
    m = np.asarray(matrix, dtype=object)
    small = _int64(m)
    if small is not None:
        a = np.abs(small)
        k = np.full(a.shape, -1, dtype=np.int64)
        nz = a > 0
        k[nz] = np.floor(np.log2(a[nz].astype(np.float64))).astype(np.int64)
        return k  # exact for magnitudes below 2^52 that are powers of two (the po2 styles)
    return np.vectorize(lambda v: abs(int(v)).bit_length() - 1, otypes=[np.int64])(m) if m.size else \
        np.zeros(m.shape, dtype=np.int64)


def column_shifts(matrix: np.ndarray, G: int | None = None) -> list[int]:
    """Per output slot (``G`` outputs per cycle, output j in slot j % G; None = one slot per
    column), the smallest k of its non-zero weights +-2^k (0 for a zero slot): a po2/ternary
    product is ``(x << k_slot) << field shift``, the first shift being wiring."""
    k = _shifts(matrix)
    n_out = k.shape[1] if k.ndim == 2 else 0
    G = G or n_out
    big = np.where(k < 0, np.iinfo(np.int64).max, k)
    mins = big.min(axis=0) if k.size else np.full(n_out, np.iinfo(np.int64).max, dtype=np.int64)
    slots = [min((int(mins[j]) for j in range(gi, n_out, G)), default=np.iinfo(np.int64).max) for gi in range(G)]
    return [0 if v == np.iinfo(np.int64).max else int(v) for v in slots]


def shift_span(matrix: np.ndarray, G: int | None = None) -> int:
    """The largest (shift - slot shift) over the non-zero po2 weights: the field's shift range."""
    k = _shifts(matrix)
    if not k.size:
        return 0
    G = G or k.shape[1]
    base = np.asarray(column_shifts(matrix, G), dtype=np.int64)[np.arange(k.shape[1]) % G]
    d = np.where(k >= 0, k - base[None, :], 0)
    return int(d.max())


def acc_range(matrix: np.ndarray, offset, in_lo: int, in_hi: int) -> tuple[int, int]:
    """[lo, hi] of every partial sum offset[j] + sum over any subset of inputs of x[i] * W[i, j]
    (x in [in_lo, in_hi], containing 0), over all outputs: the accumulators' range."""
    m = np.asarray(matrix, dtype=object)
    small = _int64(m)
    bound = max(abs(in_lo), abs(in_hi), 1) * m.shape[0]
    if small is not None and m.size and int(np.abs(small).max()) * bound < 1 << 62:
        m = small  # exact in int64: every partial sum is below 2^62
    a, b = m * in_lo, m * in_hi
    neg = np.minimum(np.minimum(a, b), 0).sum(axis=0) if m.size else np.zeros(m.shape[1], dtype=object)
    pos = np.maximum(np.maximum(a, b), 0).sum(axis=0) if m.size else np.zeros(m.shape[1], dtype=object)
    off = np.asarray(offset, dtype=object).reshape(-1)
    lo = min([int(v) for v in neg + np.minimum(off, 0)] + [0])
    hi = max([int(v) for v in pos + np.maximum(off, 0)] + [0])
    return lo, hi


def estimate_matrix(matrix: np.ndarray, offset, in_t: Fixed, R: int, style: str, beat: int | None = None,
                    groups: int = 1) -> dict:
    """The folded hardware of ``y = x @ matrix + offset`` (integer mantissas, x of type
    ``in_t``) at reuse ``R`` in ``style``, as ``rtl/fold.py`` builds it (``fold_shape``):
    ``lut``, ``ff``, ``dsp``, ``memory_bits`` (weight-ROM bits in block RAM), ``rom_bits`` (all
    weight-ROM bits), ``rom`` (``rom_map``: "bram" or "logic", whose LUTs ``lut`` includes),
    ``bram18``, ``cycles_per_beat`` (= R) and ``S``/``G``/``R_in``/``R_out``/``acc_bits``/
    ``weight_bits`` for information.  ``beat``: the stream form (``qir.stream_mvu``): x arrives as
    beats of ``beat`` inputs, each taking R input chunks x ``groups`` output groups
    (``cycles_per_beat`` = R x groups, ``_estimate_stream``)."""
    if style not in FOLD_STYLES:
        raise ValueError(f"folded style must be one of {', '.join(FOLD_STYLES)}, got {style!r}")
    m = np.asarray(matrix, dtype=object)
    n_in, n_out = m.shape
    if beat is not None:
        return _estimate_stream(m, offset, in_t, R, style, beat, groups)
    fs = fold_shape(n_in, n_out, R)
    S, G, steps = fs.S, fs.G, fs.R
    wb = weight_bits(m, style, G)
    acc_w, xw = _acc_width(m, offset, in_t, style)
    products = S * G
    folded = steps > 1
    # folded: the Yosys-measured ROM-form terms (ROM_*_LUT_PER_BIT); with R_out > 1 the group's
    # offset select is part of the accumulator's LUT, the output registers' enables one per group
    no_offset = not np.any(np.asarray(offset, dtype=object).reshape(-1) != 0)
    cal = dict(acc_lut=ROM_GROUP_ACC_LUT_PER_BIT if fs.R_out > 1 else
               ROM_ACC0_LUT_PER_BIT if no_offset else ROM_ACC_LUT_PER_BIT,
               sum_lut=ROM_SUM_LUT_PER_BIT, po2_lut=ROM_PO2_LUT_PER_BIT) if folded else {}
    lut, dsp = _datapath(style, S, G, products, xw, wb, acc_w, G, **cal)
    # input: the held chunks (a 2:1 mux per bit: load / shift) and the live-or-held first chunk;
    # a shift register of R_in - 1 chunks, or all R_in rotating when every group needs them
    hold_bits = ((fs.R_in - (fs.R_out == 1)) * S * xw) if folded else 0
    lut += ROM_HOLD_LUT_PER_BIT * (hold_bits + S * xw) if folded else 0
    out_bits = n_out * acc_w if fs.R_out > 1 else 0  # output registers, written per group
    lut += fs.R_out if fs.R_out > 1 else 0
    rom_bits = fs.depth * products * wb if folded else 0
    rom = rom_map(fs.depth, products * wb) if folded else {"rom": "logic", "lut": 0, "bram18": 0}
    lut += rom["lut"]
    lut += CONTROL_LUTS if folded else 0
    counters = (max((steps - 1).bit_length(), 1) + 1 + (max((fs.R_in - 1).bit_length(), 1) if fs.R_in > 1 else 0)
                + (fs.R_out.bit_length() if fs.R_out > 1 else 0)) if folded else 0
    ff = G * acc_w + out_bits + hold_bits + counters
    return {"lut": int(round(lut)), "ff": int(ff), "dsp": int(dsp),
            "memory_bits": int(rom_bits if rom["rom"] == "bram" else 0), "rom_bits": int(rom_bits),
            "rom": rom["rom"], "bram18": int(rom["bram18"]), "cycles_per_beat": int(steps), "S": S, "G": G,
            "R_in": fs.R_in, "R_out": fs.R_out, "acc_bits": acc_w, "weight_bits": wb}


def _acc_width(m: np.ndarray, offset, in_t: Fixed, style: str) -> tuple[int, int]:
    """(accumulator width, product input width) of a folded layer."""
    if style == "xnor":
        return max(m.shape[0].bit_length(), 1), 1
    lo, hi = acc_range(m, offset, in_t.min_int, in_t.max_int)
    return Fixed.for_range(lo, hi, 0).width, in_t.width


def _estimate_stream(m: np.ndarray, offset, in_t: Fixed, R: int, style: str, beat: int, groups: int) -> dict:
    """``estimate_matrix`` of the stream form (``qir.stream_mvu``, ``rtl/stream_mvu.py``): S x G
    products per cycle, G accumulating adders (with R_out > 1 each selects one of its slot's R_out
    accumulators: a mux bit per accumulator bit), a beat register and a chunk register, the ROM of
    N x R x R_out words (``rom_map``), the accumulators and an output register."""
    n_in, n_out = m.shape
    S, _ = geometry(beat, R)
    r_out = max(1, int(groups))
    G = -(-n_out // r_out)
    wb = weight_bits(m, style, G)
    acc_w, xw = _acc_width(m, offset, in_t, style)
    products = S * G
    lut, dsp = _datapath(style, S, G, products, xw, wb, acc_w, G)  # one accumulating adder per slot
    words = (n_in // max(beat, 1)) * R * r_out
    rom_bits = words * products * wb
    rom = rom_map(words, products * wb)
    lut += rom["lut"]
    hold_bits = beat * xw + S * xw
    lut += LUT_PER_MUX_BIT * (beat * xw + (n_out if r_out > 1 else 0) * acc_w) + CONTROL_LUTS
    ff = 2 * n_out * acc_w + hold_bits + 2 * max((words - 1).bit_length(), 1) + 4
    return {"lut": int(round(lut)), "ff": int(ff), "dsp": int(dsp),
            "memory_bits": int(rom_bits if rom["rom"] == "bram" else 0), "rom_bits": int(rom_bits),
            "rom": rom["rom"], "bram18": int(rom["bram18"]), "cycles_per_beat": int(R * r_out), "S": S, "G": G,
            "R_in": int(R), "R_out": r_out, "acc_bits": acc_w, "weight_bits": wb}


def _datapath(style: str, S: int, P: int, products: int, xw: int, wb: int, acc_w: int, n_acc: int,
              acc_lut: float = LUT_PER_ADDER_BIT, sum_lut: float = LUT_PER_ADDER_BIT,
              po2_lut: float = LUT_PER_ADDER_BIT):
    """(LUTs, DSPs) of one cycle's S x P products, their sums per output slot and ``n_acc``
    accumulators: the one product/adder cost of every folded form.  ``acc_lut`` / ``sum_lut`` /
    ``po2_lut``: LUTs per accumulator bit, per bit of mac's product sums, per po2/ternary
    product-and-sum bit (the ROM form's measured ``ROM_*_LUT_PER_BIT``; the generic adder bit
    by default)."""
    dsp = 0
    if style == "xnor":
        lut = XNOR_LUTS_PER_INPUT * products + acc_lut * acc_w * n_acc
    elif style == "mac":
        pw = xw + wb
        if xw > DSP_MIN_WIDTH and wb > DSP_MIN_WIDTH:
            dsp = products * ceil(max(xw, wb) / 27) * ceil(min(xw, wb) / 18)
            mul_luts = 0
        else:
            mul_luts = products * xw * wb / 2
        lut = mul_luts + sum_lut * (products - P) * (pw + log2(max(S, 1))) + acc_lut * acc_w * n_acc
    else:  # po2 / ternary: a shifter (log2 of the shift span mux levels) and a negation per product
        pw = xw + (1 << max(wb - 2, 0)) - 1
        shift_luts = products * pw * LUT_PER_MUX_BIT * max(wb - 2, 0)
        lut = shift_luts + po2_lut * products * (pw + log2(max(S, 1))) + acc_lut * acc_w * n_acc
    return lut, dsp


def auto_fold_style(matrix: np.ndarray) -> str:
    """The folded style from the weights alone: ``po2`` when every weight is 0 or +-2^k,
    ``ternary`` when also one magnitude, else ``mac`` (``xnor`` needs the value-set proof of a
    two-valued input, which only the lowering has)."""
    small = _int64(np.asarray(matrix, dtype=object))
    if small is not None:
        mags = {int(v) for v in np.unique(np.abs(small))} - {0}
    else:
        mags = {abs(int(v)) for v in np.asarray(matrix, dtype=object).ravel()} - {0}
    if any(v & (v - 1) for v in mags):
        return "mac"
    return "ternary" if len(mags) <= 1 else "po2"


def _layer_matrix(op):
    """(matrix, offset, input type) of a layer or dataflow op, per beat for a ``qir.conv``."""
    from qir.dialect import elem, elements_to_numpy

    name = op.name
    if name == "qir.dense":
        w, off, _ = op.folded()
        return np.asarray(w, dtype=object), np.asarray(off, dtype=object), elem(op.input.type)
    if name == "qir.conv":  # the (taps * C_in, C_out) kernel matrix, zero outside a group
        w, off, _ = op.folded()
        taps, cg, c_out = int(np.prod(w.shape[:-2])), w.shape[-2], w.shape[-1]
        g = op.groups.value.data
        wt = np.asarray(w, dtype=object).reshape(taps, cg, c_out)
        k = np.zeros((taps, cg * g, c_out), dtype=object)
        og = c_out // g
        for o in range(c_out):
            k[:, (o // og) * cg:(o // og + 1) * cg, o] = wt[:, :, o]
        return k.reshape(taps * cg * g, c_out), np.asarray(off, dtype=object), elem(op.input.type)
    if name in ("qir.cmvm", "qir.mvu", "qir.stream_mvu"):
        return (elements_to_numpy(op.matrix).astype(object), elements_to_numpy(op.offset).astype(object),
                elem(op.input.type))
    if name == "qir.xnor":
        w = elements_to_numpy(op.weights).T.astype(object) * 2 - 1
        return w, np.zeros(w.shape[1], dtype=object), Fixed(1, 1, False)
    raise ValueError(f"estimate: {name} is not a folded-layer op (qir.dense, qir.conv, qir.cmvm, qir.xnor, qir.mvu, "
                     "qir.stream_mvu)")


#: folded implementations (``qir.mvu``'s ``impl``): ``rom`` (weight ROM + product units, any
#: style), ``muxgraph`` (R constant adder graphs multiplexed into one, ``qir.muxgraph``: the
#: adder-graph styles cmvm/po2/ternary, folded over the outputs into P <= R phases, R <=
#: MUXGRAPH_MAX_R) and ``digitserial`` (the unfolded adder graph on D <= R input digits,
#: shift-accumulated, ``qir.digitserial``: the adder-graph styles, inputs of 2 or more bits)
IMPLS = ("rom", "muxgraph", "digitserial")
MUXGRAPH_MAX_R = 4
#: merged graph / unfolded graph adder LUTs by phases P (``MuxGraph.target_cost`` over
#: ``AdderGraph.lut_bits``, measured with ``build_mux`` on qkeras_3layer's four layers, summed:
#: P = 2 26,821 / 23,968 = 1.12 (1.07-1.19 per layer), P = 3 23,343 = 0.97 (0.88-1.20), P = 4
#: 28,082 = 1.17 (1.07-1.30)), in Yosys's count (``qir.muxgraph.bit_luts``: two 2:1-multiplexed
#: operands are two LUTs, a 4:1 mux two); 1.0 or more: no cheaper than not folding
MUXGRAPH_FACTOR = {1: 1.0, 2: 1.12, 3: 0.97, 4: 1.17}
#: Yosys ``synth_xilinx`` LUT cells (INV included) per ``MuxGraph.target_cost`` LUT, for ``qir
#: report`` (its adder graphs have ``qir.report.LUT_PER_ADDER_BIT``): qkeras_3layer at R = 2,
#: ``--io parallel``: 31,834 LUTs for merged graphs of 26,821 plus 3,312 other estimated LUTs
#: (a 16x16 layer at P = 2, 3, 4: 1.10, 1.10, 1.02)
MUXGRAPH_LUT_PER_BIT = 1.06
#: the searched unfolded graph's LUT bits / the rough unfolded estimate (``estimate`` at R = 1):
#: 0.69, 0.67, 0.66, 0.69 on qkeras_3layer's layers
MUXGRAPH_SEARCH = 0.68


#: a multiplexed adder graph is offered automatically only up to this many non-zero CSD digits
#: in the matrix (the adders before sharing, what its search and merge scale with): its
#: lowering searches every phase (twice above ``BOTH_SPLITS_MAX``) and then pairs the phases'
#: adders: measured (``build_mux``, P = 3, this 2-core machine under load) 13.3 s CPU for a random
#: 64 x 32 matrix of 8-bit weights (5,658 digits; its R = 1 search 7.3 s), while a 576 x 64 layer
#: of 16-bit weights ran for more than 9 minutes (bench/README.md "Held-out-style models",
#: qk_autoq_cifar10); qkeras_3layer's layers have 254-1,628 digits.  A pinned ``impl`` still
#: builds it
MUXGRAPH_MAX_DIGITS = 1 << 13


def csd_digit_count(matrix: np.ndarray) -> int:
    """Non-zero CSD digits of all entries of ``matrix``."""
    return sum(_csd_digits(abs(int(v))) for v in np.asarray(matrix, dtype=object).ravel() if v)


def digits_at_most(matrix: np.ndarray, bound: int) -> bool:
    """``csd_digit_count(matrix) <= bound`` (every non-zero entry has a digit: a big matrix is
    refused without counting)."""
    m = np.asarray(matrix)
    return np.count_nonzero(m) <= bound and csd_digit_count(m) <= bound


def muxgraph_searchable(matrix: np.ndarray) -> bool:
    """A multiplexed adder graph of ``matrix`` is cheap enough to search (``MUXGRAPH_MAX_DIGITS``)."""
    return digits_at_most(matrix, MUXGRAPH_MAX_DIGITS)


def muxgraph_phases(matrix: np.ndarray, R: int) -> int:
    """The phases P (2 .. min(R, outputs)) of the cheapest multiplexed adder graph for reuse
    R <= MUXGRAPH_MAX_R (``MUXGRAPH_FACTOR``; fewer phases than R cycles just idle), 0 when none
    (beyond MUXGRAPH_MAX_R the ROM form keeps shrinking with R, a merged graph cannot)."""
    n_out = np.asarray(matrix).shape[1]
    ps = range(2, min(R, n_out) + 1) if R <= MUXGRAPH_MAX_R else range(0)
    return min(ps, key=lambda p: (MUXGRAPH_FACTOR[p], p), default=0)


def estimate_muxgraph(matrix: np.ndarray, offset, in_t: Fixed, R: int, out_width: int | None = None) -> dict:
    """The multiplexed-adder-graph implementation (``qir.muxgraph``) of ``y = x @ matrix +
    offset`` folded by R, before its search: P = ``muxgraph_phases`` phases over the outputs, the
    unfolded adder-graph estimate times ``MUXGRAPH_FACTOR[P]``; FFs: the held input, a register
    per output, the phase."""
    m = np.asarray(matrix, dtype=object)
    n_in, n_out = m.shape
    P = muxgraph_phases(m, R) or 1
    nz = [abs(int(v)) for v in m.ravel() if v]
    digits = sum(_csd_digits(v) for v in nz)
    wb = weight_bits(m, "mac")
    adders = ADDER_SHARING * LUT_PER_ADDER_BIT * max(digits - n_out, 0) * (in_t.width + wb / 2)
    if out_width is None:
        lo, hi = acc_range(m, offset, in_t.min_int, in_t.max_int)
        out_width = Fixed.for_range(lo, hi, 0).width
    lut = adders * MUXGRAPH_SEARCH * MUXGRAPH_FACTOR[P] + CONTROL_LUTS
    ff = n_in * in_t.width + n_out * out_width + P
    return {"lut": int(round(lut)), "ff": int(ff), "dsp": 0, "memory_bits": 0, "cycles_per_beat": int(R),
            "S": n_in, "G": -(-n_out // P), "acc_bits": out_width, "weight_bits": wb, "impl": "muxgraph", "phases": P,
            "rom_bits": 0, "rom": "logic", "bram18": 0}


def impl_estimates(matrix: np.ndarray, offset, in_t: Fixed, R: int, style: str) -> dict[str, dict]:
    """The estimates of every implementation offered for a layer folded by R > 1 in ``style``:
    ``rom`` always; for the adder-graph styles (cmvm, po2, ternary) ``muxgraph`` (at least 2
    outputs and R <= MUXGRAPH_MAX_R: ``muxgraph_phases``; at most ``MUXGRAPH_MAX_DIGITS`` CSD
    digits) and ``digitserial`` (an input of 2 or
    more bits, at most ``DIGITSERIAL_MAX_WEIGHTS`` weights and ``DIGITSERIAL_MAX_DIGITS`` CSD
    digits: its lowering searches the whole
    layer's adder graph, as R = 1 does; a pinned ``impl`` still builds it)."""
    m = np.asarray(matrix, dtype=object)
    out = {"rom": estimate_matrix(m, offset, in_t, R, "mac" if style == "cmvm" else style)}
    if style in ("cmvm", "po2", "ternary") and R >= 2:
        if muxgraph_phases(m, R) and muxgraph_searchable(m):
            out["muxgraph"] = estimate_muxgraph(m, offset, in_t, R)
        if in_t.width >= 2 and m.size <= DIGITSERIAL_MAX_WEIGHTS and digits_at_most(m, DIGITSERIAL_MAX_DIGITS):
            out["digitserial"] = estimate_digitserial(m, offset, in_t, R)
    return out


def choose_impl(matrix: np.ndarray, offset, in_t: Fixed, R: int, style: str) -> str:
    """The implementation of a layer folded by R > 1 in ``style``: the offered one
    (``impl_estimates``: rom; muxgraph and digitserial for the adder-graph styles) with the
    fewest estimated LUTs (the budget ``qir-fold-auto`` plans with; the ROM's DSPs are reported,
    not traded), the earlier of rom, muxgraph, digitserial on a tie: never one the estimate says
    is bigger than another offered one."""
    if R < 2:
        return "rom"
    ests = impl_estimates(matrix, offset, in_t, R, style)
    return min(ests, key=lambda k: (ests[k]["lut"], IMPLS.index(k)))


def _estimate_lowered_muxgraph(op) -> dict:
    """A lowered ``qir.muxgraph``: its merged graph's LUT bits (``MuxGraph.target_cost``)."""
    from qir.dialect import elem, shape_of

    g = op.graph()
    out_t = elem(op.output.type)
    in_t = elem(op.input.type)
    lut = g.target_cost("xilinx") * MUXGRAPH_LUT_PER_BIT + CONTROL_LUTS
    return {"lut": int(round(lut)), "ff": g.register_bits(out_t.width), "dsp": 0, "memory_bits": 0,
            "cycles_per_beat": op.R, "S": shape_of(op.input.type)[0], "acc_bits": out_t.width,
            "weight_bits": 0, "style": op.style.data, "impl": "muxgraph", "implementation": "muxgraph",
            "phases": op.P, "adders": g.n_adders, "in_bits": in_t.width, "G": len(g.slots), "rom_bits": 0,
            "rom": "logic", "bram18": 0}


def estimate(op, R: int, style: str | None = None, beat: int | None = None) -> dict:
    """Estimated hardware of layer ``op`` folded by ``R`` (1 = not folded), without building it.

    ``op``: a ``qir.dense`` or ``qir.conv`` (its per-beat kernel, the ``--io stream`` form) before
    lowering, or a lowered ``qir.cmvm`` / ``qir.xnor`` / ``qir.mvu``.  ``style``: one of
    ``FOLD_STYLES`` (``xnor`` only when the input is provably two-valued, which the caller
    knows: the lowering decides it), None = from the op (``qir.mvu``'s style, ``xnor`` for a
    ``qir.xnor``) or from the weights (``auto_fold_style``).  ``beat``: the layer consumes a
    flattened stream beat by beat (``qir.stream_mvu``; ``beat`` inputs per beat, R = cycles per
    beat, ``stream_fold``); a ``qir.stream_mvu`` op is always that.
    Returns ``{"lut", "ff", "dsp", "memory_bits", "cycles_per_beat", "style", ...}``; at R = 1
    the figures are the unfolded layer's rough size (one product per non-zero weight), not the
    adder-graph search's result (``qir report`` has that after lowering).
    """
    geometry(1, R)  # validates R
    if op.name == "qir.muxgraph":
        return _estimate_lowered_muxgraph(op)
    if op.name == "qir.digitserial":
        return _estimate_lowered_digitserial(op)
    matrix, offset, in_t = _layer_matrix(op)
    explicit = style is not None
    if style is None:
        st = getattr(op, "style", None)
        style = "xnor" if op.name == "qir.xnor" else (st.data if st is not None and st.data in FOLD_STYLES
                                                      else auto_fold_style(matrix))
    if op.name == "qir.stream_mvu" or beat is not None:  # the stream form: a ROM only
        st = "mac" if style == "cmvm" else style
        rb, g = (op.R, op.G) if op.name == "qir.stream_mvu" else stream_fold(beat, matrix.shape[1], R)
        c = op.beat if op.name == "qir.stream_mvu" else beat
        return {**estimate_matrix(matrix, offset, in_t, rb, st, beat=c, groups=g), "style": st, "impl": "rom",
                "implementation": f"rom {st}"}
    # the implementation: a lowered qir.mvu's own, else the cheaper (muxgraph only for the
    # adder-graph styles: the automatic one, or cmvm/po2/ternary given)
    graph_style = "cmvm" if style == "mac" and not explicit else style
    pinned = op.attributes.get("impl") if op.name in ("qir.dense", "qir.conv") else None
    if op.name == "qir.mvu":
        impl = op.impl.data
    elif pinned is not None and pinned.data in IMPLS:  # an ``impl`` attribute on the layer pins it
        impl = pinned.data if graph_style in ("cmvm", "po2", "ternary") else "rom"
        if impl == "digitserial" and in_t.width < 2:
            impl = choose_impl(matrix, offset, in_t, R, graph_style)
    elif R > 1 and graph_style in ("cmvm", "po2", "ternary"):
        impl = choose_impl(matrix, offset, in_t, R, graph_style)
    else:
        impl = "rom"
    if R > 1 and impl == "muxgraph":
        out = estimate_muxgraph(matrix, offset, in_t, R)
        out.update(style=graph_style, implementation="muxgraph")
        return out
    if R > 1 and impl == "digitserial" and in_t.width >= 2:
        out = estimate_digitserial(matrix, offset, in_t, R)
        out.update(style=graph_style, implementation=f"digitserial ({out['digits']} x {out['digit_bits']} bits)")
        return out
    if style == "cmvm":
        style = "mac"
    out = estimate_matrix(matrix, offset, in_t, R, style)
    out["style"] = style
    if R > 1:
        out.update(impl="rom", implementation=f"rom {style}")
    if R == 1:  # unfolded: constants wired in, no ROM, no hold register, no accumulator
        nz = [abs(int(v)) for v in matrix.ravel() if v]
        out.update(ff=0, memory_bits=0, rom_bits=0, rom="logic", bram18=0)
        if style == "xnor":
            out.update(lut=int(round(XNOR_LUTS_PER_INPUT * matrix.size)), dsp=0)
        elif style == "mac" and explicit:  # multipliers for the weights that are not +-2^k
            pw = in_t.width + out["weight_bits"]
            out.update(dsp=sum(1 for v in nz if v & (v - 1)) if in_t.width > DSP_MIN_WIDTH else 0,
                       lut=int(round(LUT_PER_ADDER_BIT * max(len(nz) - matrix.shape[1], 0) * pw)))
        else:  # an adder graph: one adder per CSD digit beyond the first of a column, about
            # ADDER_SHARING of them left after common subexpressions
            digits = sum(_csd_digits(v) for v in nz)
            width = in_t.width + out["weight_bits"] / 2
            out.update(dsp=0, lut=int(round(ADDER_SHARING * LUT_PER_ADDER_BIT * max(digits - matrix.shape[1], 0)
                                            * width)))
    return out


#: fraction of an adder graph's CSD-digit adders left after subexpression sharing (rough)
ADDER_SHARING = 0.7


@functools.lru_cache(maxsize=1 << 17)
def _csd_digits(v: int) -> int:
    """Non-zero digits of v >= 0 in canonical signed-digit form."""
    n = 0
    while v:
        if v & 1:
            n += 1
            v = v + 1 if v & 2 else v - 1
        v >>= 1
    return n


#: digit-serial adder graphs (``impl = "digitserial"``, ``qir.digitserial``): Yosys
#: ``synth_xilinx`` LUTs (INV included) per LUT bit of the searched digit graph
#: (``AdderGraph.lut_bits``; ``qir.report.LUT_PER_ADDER_BIT`` for the unfolded graph): fitted on
#: qkeras_3layer at R = 2 (four digit-serial layers, 13,169 graph LUT bits, 2,056 accumulator
#: bits, 512 digit-mux bits; Yosys 22,694 LUTs for the design, estimate 22,736), the searched /
#: rough graph ratio (as ``MUXGRAPH_SEARCH``), LUTs per bit of an accumulator (an adder whose
#: first operand is a 2:1 mux of the offset constant and the shifted register: one LUT6) and per
#: bit of the digit multiplexer (live digit at the start or the held one)
DIGITSERIAL_LUT_PER_BIT = 1.28
#: digit-serial is offered automatically up to this many weights (the planner's searched-R = 1
#: limit, ``qir.lowering.fold_auto.EXACT_R1_MAX_WEIGHTS``): beyond it the whole-layer adder-graph
#: search takes minutes (a 784 x 256 layer), which folding is there to avoid
DIGITSERIAL_MAX_WEIGHTS = 1 << 16
#: ... and up to this many non-zero CSD digits (the search's adders before sharing; the planner's
#: searched-R = 1 limit too, ``fold_auto.unfolded_graph``): a 576 x 64 layer of 16-bit weights
#: (qk_autoq_cifar10) is within the weight limit but its search would take many minutes; the
#: R = 1 search of a random 64 x 32 matrix of 8-bit weights (5,658 digits) took 7.3 s CPU here
DIGITSERIAL_MAX_DIGITS = 1 << 14
DIGITSERIAL_SEARCH = MUXGRAPH_SEARCH
DIGITSERIAL_ACC_LUT_PER_BIT = 1.0
DIGITSERIAL_MUX_LUT_PER_BIT = 1.0


def rough_graph_luts(matrix: np.ndarray, in_bits: int) -> float:
    """The rough LUTs of the unfolded adder graph of ``matrix`` on ``in_bits``-bit inputs: one
    adder per CSD digit beyond the first of a column, ``ADDER_SHARING`` of them left after
    sharing, each ``in_bits`` + half the weight bits wide (``estimate`` at R = 1)."""
    m = np.asarray(matrix, dtype=object)
    digits = sum(_csd_digits(abs(int(v))) for v in m.ravel() if v)
    wb = weight_bits(m, "mac")
    return ADDER_SHARING * LUT_PER_ADDER_BIT * max(digits - m.shape[1], 0) * (in_bits + wb / 2)


def estimate_digitserial(matrix: np.ndarray, offset, in_t: Fixed, R: int, graph_luts: float | None = None,
                         digits: int | None = None) -> dict:
    """The digit-serial implementation (``qir.digitserial``) of ``y = x @ matrix + offset``
    folded by R: D digits of k bits (``qir.digitserial.digit_shape``); LUTs: the adder graph at
    the digit width (``graph_luts``: the searched digit graph's LUT bits, else the rough
    ``rough_graph_luts`` x ``DIGITSERIAL_SEARCH``), one accumulator adder per output (its exact
    width, ``partial_ranges``), the digit multiplexer (n_in x k) and, for D > 2, the hold shift
    register's load/shift multiplexer ((D - 2) x k per input), the control; FFs: the held digits,
    the accumulators and the retired low bits per output, the step counter."""
    from qir.digitserial import digit_shape, partial_ranges

    m = np.asarray(matrix, dtype=object)
    n_in, n_out = m.shape
    n = in_t.width
    D, k = digit_shape(n, digits or R)
    if graph_luts is None:
        graph_luts = rough_graph_luts(m, k) * DIGITSERIAL_SEARCH
    ranges = partial_ranges(m, offset, in_t.min_int, n, D, k)
    acc_bits = [range_bits_of(lo, hi) for lo, hi in ranges]
    lut = (graph_luts * DIGITSERIAL_LUT_PER_BIT + DIGITSERIAL_ACC_LUT_PER_BIT * sum(acc_bits)
           + DIGITSERIAL_MUX_LUT_PER_BIT * n_in * k + LUT_PER_MUX_BIT * n_in * k * max(D - 2, 0) + CONTROL_LUTS)
    ff = n_in * k * (D - 1) + sum(acc_bits) + n_out * k * (D - 1) + max((D - 1).bit_length(), 1)
    return {"lut": int(round(lut)), "ff": int(ff), "dsp": 0, "memory_bits": 0, "cycles_per_beat": int(R),
            "S": n_in, "G": n_out, "acc_bits": max(acc_bits, default=1), "weight_bits": weight_bits(m, "mac"),
            "impl": "digitserial", "digits": D, "digit_bits": k, "graph_lut": int(round(graph_luts)),
            "rom_bits": 0, "rom": "logic", "bram18": 0}


def digitserial_searched(est: dict, g, bits: int | None = None) -> dict:
    """``est`` (an ``estimate_digitserial`` result) with its graph priced by the searched
    unfolded adder graph ``g`` (``qir.addergraph.AdderGraph`` of the same matrix) re-costed at
    the digit width (``qir.digitserial.digit_graph``: the same nodes on k-bit digits), the scale
    on which ``qir-fold-auto`` prices R = 1 (``unfolded_luts``); ``bits``: that digit graph's
    LUT bits when the caller has them already (the planner keeps them per digit width)."""
    from qir.digitserial import digit_graph

    if bits is None:
        bits = digit_graph(g, est["digit_bits"]).lut_bits()
    # the graph at the R = 1 figure's factor (``LUT_PER_ADDER_BIT`` per searched LUT bit): the
    # planner compares graph bits with graph bits
    lut = est["lut"] - est["graph_lut"] * DIGITSERIAL_LUT_PER_BIT + bits * LUT_PER_ADDER_BIT
    return {**est, "lut": int(round(lut)), "graph_lut": int(bits)}


def muxgraph_searched(est: dict, g) -> dict:
    """``est`` (an ``estimate_muxgraph`` result) priced from the searched unfolded adder graph
    ``g`` of the same matrix: its LUT bits x ``MUXGRAPH_FACTOR[P]`` + the control (the scale of
    ``qir-fold-auto``'s R = 1 figure; ``estimate_muxgraph`` is the rough graph x
    ``MUXGRAPH_SEARCH`` x the factor)."""
    lut = g.lut_bits() * LUT_PER_ADDER_BIT * MUXGRAPH_FACTOR[est.get("phases", 1)] + CONTROL_LUTS
    return {**est, "lut": int(round(lut))}


def range_bits_of(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement (lo < 0) or unsigned type holding [lo, hi]."""
    from qir.addergraph import range_bits

    return range_bits(lo, hi)


def _estimate_lowered_digitserial(op) -> dict:
    """A lowered ``qir.digitserial``: its digit graph's LUT bits (``AdderGraph.lut_bits``)."""
    from qir.dialect import elem, elements_to_numpy

    out = estimate_digitserial(op.matrix(), elements_to_numpy(op.offset), elem(op.input.type), op.R,
                               graph_luts=op.graph().lut_bits(), digits=op.D)
    out.update(style=op.style.data, implementation=f"digitserial ({op.D} x {op.k} bits)",
               adders=op.graph().n_adders, in_bits=elem(op.input.type).width)
    return out
