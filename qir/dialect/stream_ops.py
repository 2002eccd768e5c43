"""Stream-level ops of the ``qir`` dialect (``--io stream``), registered into ``qir.dialect.QIR``.

At the stream level (a ``qir.model`` with ``io = "stream"``) every tensor between top-level ops
flows as a sequence of *beats*: a beat is one vector along the last axis (one pixel with all its
channels for an H x W x C map, row-major over the leading axes; a 1-D vector is a single beat).
Tensor types are unchanged, so the reference semantics are the plain tensor semantics below;
the beat order only fixes the hardware's port protocol.

- ``qir.window``: the sliding window of a conv/pool, im2col: result[p, (t, c)] =
  x_padded[p*s - pb + t*d, c] (taps t row-major, then channels), padding = ``fill``.  Hardware:
  line buffers + a window register + zero-padding/stride logic (``qir.rtl.stream_window``).
- ``qir.map``: applies the single ``qir.model`` in its region to every beat (the last axis) of
  its input; the body is ordinary dataflow IR (one adder graph / xnor / mac kernel reused for
  every output position).  Hardware: the body's pipeline with a stall enable
  (``qir.rtl.stream_map``).
- ``qir.join``: applies the two-input ``qir.model`` in its region to every pair of beats (same
  leading shape) of its two inputs (an add/concat of two streams).  Hardware: the body's
  pipeline fed when both inputs are valid (``qir.rtl.stream_join``); the fork stages and the
  FIFOs in front of it are hardware only (``rtl/stream_top.py``).
- ``qir.collect``: all beats of a stream as one beat (flatten): result = input flattened
  row-major.  Hardware: a shift register (``qir.rtl.stream_collect``).
- ``qir.stream_mvu``: a constant matrix times the flattened stream (a dense after a Flatten),
  consumed beat by beat: result = flatten(x) @ matrix + offset on mantissas (the numbers of
  ``qir.mvu`` on the ``qir.collect`` of x).  Hardware (``qir.rtl.stream_mvu``, FINN's MVU on a
  stream): each beat of C inputs takes ``reuse`` x ``groups`` cycles (``qir.folding``: S =
  ceil(C / reuse) inputs times P = ceil(n_out / groups) outputs per cycle, weights from a ROM
  addressed by a beat counter, exact accumulators); one output beat per tensor.  Style ``xnor``
  (a binary dense): ``matrix`` holds weight bits and the result is ``qir.xnor``'s on the
  flattened stream (popcounts, or the two codes of a threshold), 1 ROM bit per weight.
"""
from __future__ import annotations

from math import prod

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, DenseIntOrFPElementsAttr, IntegerAttr, StringAttr, TensorType, i64
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
)
from xdsl.traits import NoTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from qir.dialect.dataflow_ops import MvuOp, check_mvu, check_xnor_codes, xnor_bit, xnor_reachable
from qir.dialect.layer_ops import ModelOp
from qir.dialect.types import (
    BareInt,
    ExactResult,
    IntList,
    _check_out_shape,
    _check_same_elem,
    _check_window_params,
    _layer,
    elem,
    elements_to_numpy,
    int_values,
    shape_of,
    window_geometry,
)

_I64_ARRAY = DenseArrayBase.constr(i64)

#: the widest beat a ``qir.collect`` may give: Amaranth's netlist numbers the bits of a cell output
#: or port with 16 bits (``Net.from_cell``); a wider flatten goes through ``qir.stream_mvu``
COLLECT_MAX_BITS = (1 << 16) - 1

#: attribute on the outer qir.model that marks the stream level
IO_ATTR = "io"


def is_stream_model(model) -> bool:
    a = model.attributes.get(IO_ATTR)
    return isinstance(a, StringAttr) and a.data == "stream"


@irdl_op_definition
class WindowOp(IRDLOperation):
    """Sliding windows (im2col), channels last: result[p, t*C + c] = x[p*s - pb + t*d, c] for
    every output position p and kernel tap t (row-major), ``fill`` (a mantissa) outside the input."""

    name = "qir.window"
    input = operand_def(TensorType)
    window = prop_def(_I64_ARRAY)
    strides = prop_def(_I64_ARRAY)
    dilations = prop_def(_I64_ARRAY)
    pads = prop_def(_I64_ARRAY)
    fill = prop_def(IntegerAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (IntList, BareInt)
    assembly_format = (
        "$input `window` custom<IntList>($window) `strides` custom<IntList>($strides) "
        "`dilations` custom<IntList>($dilations) `pads` custom<IntList>($pads) "
        "`fill` custom<BareInt>($fill) attr-dict `:` type($input) `->` type($output)"
    )

    def geometry(self):
        return window_geometry(shape_of(self.input.type)[:-1], int_values(self.window), int_values(self.strides),
                               int_values(self.dilations), int_values(self.pads))

    def verify_(self) -> None:
        where = _layer(self)
        _check_same_elem(where, self.input.type, self.output.type)
        ishape, oshape = shape_of(self.input.type), shape_of(self.output.type)
        if len(ishape) < 2 or len(oshape) != len(ishape):
            raise VerifyException(f"{where}: input and result must be (spatial..., channels) tensors of equal rank")
        window = int_values(self.window)
        _check_window_params(where, ishape[:-1], window, int_values(self.strides),
                             int_values(self.dilations), int_values(self.pads))
        _check_out_shape(where, oshape, [o for o, _ in self.geometry()], prod(window) * ishape[-1])
        t = elem(self.input.type)
        if not t.min_int <= self.fill.value.data <= t.max_int:
            raise VerifyException(f"{where}: fill {self.fill.value.data} is not a mantissa of {t}")


class _BeatBodyOp(IRDLOperation):
    """An op whose region holds one ``qir.model`` applied to every beat of its tensor operands
    (``qir.map``: one, ``qir.join``: two): body input k takes the beats (last axis) of operand k,
    all operands and the result share the leading (beat-index) shape, the body's one output gives
    the result's beats; element types equal across the boundary."""

    output = result_def(TensorType)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())

    def model(self) -> ModelOp:
        return self.body.block.first_op

    def verify_(self) -> None:
        where, what = _layer(self), self.name
        ops = list(self.body.block.ops)
        if len(ops) != 1 or not isinstance(ops[0], ModelOp):
            raise VerifyException(f"{where}: the body of {what} must be exactly one qir.model")
        m = ops[0]
        ins, outs = m.inputs(), list(m.output().outs)
        if len(ins) != len(self.operands) or len(outs) != 1:
            raise VerifyException(f"{where}: the {what} body model needs {len(self.operands)} input(s) and one output")
        oshape = shape_of(self.output.type)
        for k, (v, bi) in enumerate(zip(self.operands, ins)):
            ishape, b = shape_of(v.type), shape_of(bi.result.type)
            if len(b) != 1 or ishape[:-1] != oshape[:-1] or ishape[-1:] != b:
                raise VerifyException(f"{where}: body input {k} {b} does not take the beats of {ishape} "
                                      f"(result {oshape})")
            if elem(bi.result.type) != elem(v.type):
                raise VerifyException(f"{where}: body input {k} element type differs from the {what} operand")
        bo = shape_of(outs[0].type)
        if len(bo) != 1 or oshape[-1:] != bo or elem(outs[0].type) != elem(self.output.type):
            raise VerifyException(f"{where}: body result {bo} does not give the beats of {oshape}")


@irdl_op_definition
class MapOp(_BeatBodyOp):
    """Applies the ``qir.model`` in its region to every beat (last-axis vector) of the input."""

    name = "qir.map"
    input = operand_def(TensorType)
    assembly_format = "$input attr-dict `:` type($input) `->` type($output) $body"


@irdl_op_definition
class CollectOp(IRDLOperation):
    """All beats of a stream as one beat: the input flattened row-major (a 1-D result)."""

    name = "qir.collect"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($output)"

    def verify_(self) -> None:
        where = _layer(self)
        _check_same_elem(where, self.input.type, self.output.type)
        if shape_of(self.output.type) != (prod(shape_of(self.input.type)),):
            raise VerifyException(f"{where}: result must be the 1-D flattening of the input")


@irdl_op_definition
class JoinOp(_BeatBodyOp):
    """Applies the two-input ``qir.model`` in its region to every pair of beats of ``lhs`` and
    ``rhs`` (equal leading shapes): result[p] = body(lhs[p], rhs[p])."""

    name = "qir.join"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    assembly_format = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($output) $body"


@irdl_op_definition
class StreamMvuOp(ExactResult, IRDLOperation):
    """A dense layer on the flattened stream ``input`` (rank >= 2, beats of C = its last axis),
    consumed beat by beat: result[j] = sum_i flat(input)[i] * matrix[i, j] + offset[j] on
    mantissas, result frac = input frac + shift, exact result type (the numbers of ``qir.mvu``
    on ``qir.collect(input)``).  Folding (``qir.folding``): every beat takes ``reuse`` = R_b input
    chunks (S = ceil(C / R_b) inputs each, 1 <= R_b <= C) times ``groups`` = G output groups
    (P = ceil(n_out / G) outputs each, 1 <= G <= n_out): R_b x G cycles per beat.  ``style``:
    ``mac`` (multipliers), ``po2`` / ``ternary`` (shift-add), ``xnor``; ``impl "rom"``.

    Style ``xnor`` (a binary dense, ``qir-stream-mvu`` from ``lowering/xnor.py``'s plan): the
    numbers of ``qir.xnor`` on the flattened input with weights = ``matrix`` transposed: ``matrix``
    is an (n_in, n_out) 0/1 matrix (1 = +), ``one``/``zero`` the input's two codes (bit(x) =
    bit k of x's code equals bit k of ``one``, k the lowest bit where they differ),
    p[j] = #{i : bit(x[i]) == matrix[i, j]}; the result is p (offset 0, shift 0) or, with
    ``thresholds``/``below``/``above`` (``qir-fold-threshold``), above[j] if p[j] >= T[j] else
    below[j]."""

    name = "qir.stream_mvu"
    input = operand_def(TensorType)
    matrix = prop_def(DenseIntOrFPElementsAttr)
    offset = prop_def(DenseIntOrFPElementsAttr)
    shift = prop_def(IntegerAttr)
    style = prop_def(StringAttr)
    reuse = prop_def(IntegerAttr)
    groups = prop_def(IntegerAttr)
    impl = prop_def(StringAttr)
    one = opt_prop_def(IntegerAttr)
    zero = opt_prop_def(IntegerAttr)
    thresholds = opt_prop_def(DenseIntOrFPElementsAttr)
    below = opt_prop_def(DenseIntOrFPElementsAttr)
    above = opt_prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `matrix` `(` $matrix `)` `offset` `(` $offset `)` `shift` $shift `style` $style "
        "(`one` $one^ `zero` $zero)? "
        "(`thresholds` `(` $thresholds^ `)` `below` `(` $below `)` `above` `(` $above `)`)? "
        "`reuse` $reuse `groups` $groups `impl` $impl attr-dict `:` type($input) `->` type($output)"
    )

    @property
    def is_xnor(self) -> bool:
        return self.style.data == "xnor"

    def bit(self) -> int:
        """xnor: the bit of an input code that tells ``one`` from ``zero``."""
        return xnor_bit(self.one.value.data, self.zero.value.data)

    def threshold_table(self):
        """xnor: (thresholds, below, above) as int64 arrays of shape (n_out,); None without."""
        if self.thresholds is None:
            return None
        return (elements_to_numpy(self.thresholds), elements_to_numpy(self.below), elements_to_numpy(self.above))

    def reachable(self) -> list[list[int]]:
        """xnor: per output element, the codes it can take (sorted): ``qir.xnor``'s."""
        return xnor_reachable(self.threshold_table(), prod(shape_of(self.input.type)), shape_of(self.output.type)[0])

    @property
    def R(self) -> int:
        """R_b: input chunks per beat."""
        return self.reuse.value.data

    @property
    def G(self) -> int:
        """Output groups per chunk."""
        return self.groups.value.data

    @property
    def beat(self) -> int:
        """C: inputs per beat."""
        return shape_of(self.input.type)[-1]

    @property
    def beats(self) -> int:
        """N: beats per tensor."""
        return prod(shape_of(self.input.type)[:-1])

    def cost(self) -> dict:
        """``qir.folding.estimate`` of the stream form (LUT, FF, DSP, ROM bits, cycles per beat)."""
        from qir.folding import estimate

        return estimate(self, self.R, self.style.data)

    def exact_bounds(self):
        """The numbers of qir.mvu (the input's elements in any order); xnor: the popcount's
        [0, n_in] on the integer grid, or the threshold codes on the result's grid."""
        if not self.is_xnor:
            return MvuOp.exact_bounds(self)
        if self.thresholds is None:
            return 0, prod(shape_of(self.input.type)), 0
        codes = [c for cs in self.reachable() for c in cs] or [0]
        return min(codes), max(codes), elem(self.output.type).frac

    def verify_(self) -> None:
        where = _layer(self)
        ishape, oshape = shape_of(self.input.type), shape_of(self.output.type)
        if len(ishape) < 2 or len(oshape) != 1:
            raise VerifyException(f"{where}: qir.stream_mvu takes a stream (rank >= 2) and returns a 1-D tensor")
        if self.is_xnor:
            self._verify_xnor(where, prod(ishape), oshape[0])
        else:
            if self.one is not None or self.thresholds is not None:
                raise VerifyException(f"{where}: one/zero/thresholds belong to the xnor style only")
            check_mvu(self, prod(ishape))
        if self.impl.data != "rom":
            raise VerifyException(f"{where}: qir.stream_mvu has impl \"rom\" only, got {self.impl.data!r}")
        if not 1 <= self.R <= ishape[-1]:
            raise VerifyException(f"{where}: reuse (input chunks per beat) must be in 1..{ishape[-1]}, got {self.R}")
        if not 1 <= self.G <= oshape[0]:
            raise VerifyException(f"{where}: groups (output groups) must be in 1..{oshape[0]}, got {self.G}")

    def _verify_xnor(self, where: str, n_in: int, n_out: int) -> None:
        m, off = elements_to_numpy(self.matrix), elements_to_numpy(self.offset)
        if m.shape != (n_in, n_out) or off.shape != (n_out,):
            raise VerifyException(f"{where}: matrix {m.shape} / offset {off.shape} do not match "
                                  f"({n_in}, {n_out}) / ({n_out},)")
        if (m.size and not np.isin(m, (0, 1)).all()) or (off.size and off.any()) or self.shift.value.data:
            raise VerifyException(f"{where}: the xnor style has a 0/1 weight-bit matrix, zero offset and shift 0")
        if self.one is None or self.zero is None:
            raise VerifyException(f"{where}: the xnor style needs the input codes one and zero")
        check_xnor_codes(self, where, elem(self.input.type, f"{where} input"),
                         elem(self.output.type, f"{where} result"), n_in, n_out)


OPS = [WindowOp, MapOp, JoinOp, CollectOp, StreamMvuOp]
