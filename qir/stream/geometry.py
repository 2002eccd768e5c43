"""The geometry of the stream stages, as the cycle model, the stage graph, the generators
(``rtl/stream_*.py``) and ``qir report`` see it: how a ``qir.window`` walks its padded map, what a
``qir.collect`` and a ``qir.stream_mvu`` take per image, which model-input beats every beat of a
stream value needs (``needs``), and the FIFO depth a join input needs so that nothing can deadlock
(``fifo_depth``).  Pure Python over the ops of ``qir.dialect``; no hardware is built here."""
from __future__ import annotations

from bisect import bisect_right
from math import prod

from qir.dialect import elem, int_values, shape_of
from qir.errors import QirError


class WindowGeometry:
    """The 2-D view of a ``qir.window`` (1-D windows get H = 1).

    The stage walks the *padded* map, one step per cycle, row-major: Hp x Wp steps per image
    (Hp = pt + H + pb, Wp = pl + W + pr).  A step inside the input (``interior_row`` and
    ``interior_col``) consumes one input beat; a step in the padding consumes nothing.  A step at
    padded position (py, px) with py >= span_h - 1, px >= span_w - 1 and the stride phase right
    (``emit_row`` and ``emit_col``) emits the window whose bottom-right corner it is."""

    def __init__(self, op):
        ishape = shape_of(op.input.type)
        sp = ishape[:-1]
        k, s, d, p = (int_values(op.window), int_values(op.strides), int_values(op.dilations),
                      int_values(op.pads))
        n = len(sp)
        if n == 1:
            sp, k, s, d, p = (1, sp[0]), (1, k[0]), (1, s[0]), (1, d[0]), (0, p[0], 0, p[1])
        elif n != 2:
            raise QirError(f"--io stream: {n}-D windows are not supported (1-D and 2-D only)")
        self.H, self.W = sp
        self.C = ishape[-1]
        self.kh, self.kw = k
        self.sh, self.sw = s
        self.dh, self.dw = d
        self.pt, self.pl, self.pb, self.pr = p[0], p[1], p[2], p[3]
        self.Hp, self.Wp = self.H + self.pt + self.pb, self.W + self.pl + self.pr
        self.span_h, self.span_w = (self.kh - 1) * self.dh + 1, (self.kw - 1) * self.dw + 1
        self.OH = (self.Hp - self.span_h) // self.sh + 1
        self.OW = (self.Wp - self.span_w) // self.sw + 1
        self.ew = elem(op.input.type).width
        self.fill = op.fill.value.data
        self.taps = self.kh * self.kw

    def interior_row(self, py: int) -> bool:
        return self.pt <= py < self.pt + self.H

    def interior_col(self, px: int) -> bool:
        return self.pl <= px < self.pl + self.W

    def emit_row(self, py: int) -> bool:
        q = py - (self.span_h - 1)
        return q >= 0 and q % self.sh == 0 and q // self.sh < self.OH

    def emit_col(self, px: int) -> bool:
        q = px - (self.span_w - 1)
        return q >= 0 and q % self.sw == 0 and q // self.sw < self.OW

    @property
    def memory_bits(self) -> int:
        """Bits of the line buffer: span_h - 1 rows of the padded width."""
        return (self.span_h - 1) * self.C * self.ew * self.Wp if self.span_h > 1 else 0

    @property
    def steps(self) -> int:
        """Steps (cycles at full rate) of one image's walk."""
        return self.Hp * self.Wp


def collect_geometry(op) -> tuple[int, int]:
    """(beats per tensor, beat width in bits) of a ``qir.collect``."""
    ishape = shape_of(op.input.type)
    return prod(ishape[:-1]), ishape[-1] * elem(op.input.type).width


def stream_mvu_timing(op) -> tuple[int, int]:
    """(beats per tensor, cycles per beat) of a ``qir.stream_mvu``: R_b input chunks x G output
    groups per beat."""
    return op.beats, op.R * op.G


def needs(ops, in_value, beats_in: int) -> dict:
    """Per stream value, per beat j of one image: the model-input beats needed before it exists
    (``ops``: the stream ops in order; a window's output beat needs the input up to its emitting
    step, a collect or stream_mvu all its input beats, a map its own beat, a join the later of
    its two)."""
    from qir.dialect.stream_ops import CollectOp, JoinOp, MapOp, StreamMvuOp

    need = {in_value: list(range(1, beats_in + 1))}
    for op in ops:
        if isinstance(op, MapOp):
            need[op.output] = need[op.input]
        elif isinstance(op, JoinOp):
            need[op.output] = [max(a, b) for a, b in zip(need[op.lhs], need[op.rhs])]
        elif isinstance(op, CollectOp):
            need[op.output] = [need[op.input][collect_geometry(op)[0] - 1]]
        elif isinstance(op, StreamMvuOp):
            need[op.output] = [need[op.input][op.beats - 1]]
        else:
            g, src, out, taken = WindowGeometry(op), need[op.input], [], 0
            for py in range(g.Hp):
                for px in range(g.Wp):
                    if g.interior_row(py) and g.interior_col(px):
                        taken += 1
                    if g.emit_row(py) and g.emit_col(px):
                        out.append(src[taken - 1] if taken else 0)
            need[op.output] = out
    return need


def fifo_depth(need_this: list[int], need_other: list[int], holding: int) -> int:
    """Beats of FIFO a join input needs so that no pattern can deadlock.

    ``need_x[j]``: the model-input beats that must have entered before beat j of branch x can
    exist (``needs``); ``holding``: the beats the stages on this branch between its fork and the
    join are guaranteed to hold when stalled (one output register per registered stage).
    While the join waits for the other branch's beat j, the fork must have given that branch
    need_other[j] model-input beats; this branch must have taken all but the last of them (the
    fork's taken flag keeps the last one for it), and all of its beats j .. that exist by then
    wait, so depth = max_j(#{m : need_this[m] <= need_other[j] - 1} - j) - holding (>= 0)."""
    worst = max((bisect_right(need_this, n - 1) - j for j, n in enumerate(need_other)), default=0)
    return max(0, worst - holding)
