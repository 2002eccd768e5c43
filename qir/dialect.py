"""The ``qir`` dialect: fixed-point types and layer-level and dataflow ops.

Types
  ``!qir.fixed<W,I>`` / ``!qir.ufixed<W,I>``  ap_fixed / ap_ufixed (I counts the sign bit),
  used as the element type of builtin tensors: ``tensor<16x!qir.fixed<16,6>>``.

Layer-level ops (what frontends produce; one source layer may become several ops, all carrying
``layer = "<source layer name>"``):
  ``qir.model``     a network: one block of ops, no arguments, ended by ``qir.output``
  ``qir.input``     a model input of a given type
  ``qir.dense``     y = x @ W + b with integer-mantissa weights/bias and their fixed types;
                    the result type must hold the exact result (no rounding, no overflow)
  ``qir.relu``      max(x, 0), same type
  ``qir.quantize``  re-grid to another fixed type with explicit rounding and overflow modes
  ``qir.output``    the model outputs (terminator)

Spatial, elementwise and shape ops (layer level; tensors are NHWC without the batch axis:
``tensor<L x C>`` 1-D, ``tensor<H x W x C>`` 2-D; lists print as ``[a, b]``; ``pads`` are
``[begin_0, .., begin_n-1, end_0, .., end_n-1]`` per spatial/tensor axis, ONNX order):
  ``qir.conv``       N-D convolution: weights (kernel..., C_in/groups, C_out) + weight_type,
                     optional bias (C_out) + bias_type, ``strides``, ``dilations``, zero ``pads``,
                     ``groups`` (depthwise: groups = C_in, C_out = C_in * multiplier, output
                     channel g*M + m); out = (in + pb + pe - d*(k-1) - 1) // s + 1; exact result
  ``qir.pool``       ``kind "max"``: largest valid element per window (padding never wins),
                     result type = input type.  ``kind "avg"``: zero-padded window sum times a
                     constant ``multiplier`` (mantissas + type): ``count "window"`` one
                     multiplier for all windows (count_include_pad; QKeras Q(1/A)), ``count
                     "valid"`` multiplier[k-1] for a window with k elements inside the input;
                     exact result.  Global pooling = window of the full spatial size
  ``qir.scale``      y = x * scale[c] + bias[c] on the last axis ((1,) broadcasts; either may be
                     absent), exact (unfoldable batchnorm, ApplyAlpha, Mul/Add by a constant)
  ``qir.leaky_relu`` y = x >= 0 ? x : alpha[c] * x, alpha mantissas + type, exact
  ``qir.add``        elementwise sum of >= 2 same-shape tensors, binary points aligned, exact
  ``qir.concat``     concatenation on ``axis``; result frac >= every input's, range holds all
  ``qir.reshape``    row-major (NHWC) reinterpretation, same element type (Flatten)
  ``qir.transpose``  result axis i = input axis perm[i], same element type
  ``qir.pad``        zero padding of every axis, same element type
  ``qir.lut``        y = table[x - min_int] (dense i32 of 2^W_in result mantissas, W_in <= 16)
  ``qir.mul``        y = a * b elementwise, b of a's shape or broadcast numpy-style ((1,), (C,),
                     a reduce result); exact, frac = sum of fracs
  ``qir.reduce``     ``kind "sum"|"max"|"maxabs"`` over ``axis``, keepdims (that axis becomes 1);
                     sum/maxabs exact, max keeps the input type

Dataflow ops (what lowering/ produces and rtl/ consumes):
  ``qir.cmvm``      constant-matrix times vector on integer mantissas plus a constant offset,
                    with an implementation ``style`` (mac, ...); result type is exact
  ``qir.reg``       a pipeline register (one clock cycle), with its ``stage`` number
  ``qir.xnor``      binary weights x two-valued input: XNOR + popcount, optionally compared
                    with per-output integer thresholds (a folded batchnorm + sign)
  ``qir.threshold`` per-channel step x >= T ? above : below (a folded batchnorm + sign)

Semantics are defined by the numpy reference interpreter in ``qir.sim.interpreter``.
"""
from __future__ import annotations

import itertools
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolNameConstraint,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    VarConstraint,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    opt_attr_def,
    opt_prop_def,
    operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.irdl.declarative_assembly_format import (
    AttributeVariable,
    CustomDirective,
    irdl_custom_directive,
)
from xdsl.traits import HasParent, IsolatedFromAbove, IsTerminator, NoTerminator, Pure, SymbolOpInterface
from xdsl.utils.exceptions import VerifyException

from qir.errors import QirError
from qir.fixed import MAX_WIDTH, OVERFLOW_MODES, ROUNDING_MODES, Fixed


# ------------------------------------------------------------------------------------- types
class _FixedBase(ParametrizedAttribute, TypeAttribute):
    width: IntAttr
    integer: IntAttr
    SIGNED: ClassVar[bool]

    def __init__(self, width: int, integer: int):
        super().__init__(IntAttr(width), IntAttr(integer))

    @classmethod
    def parse_parameters(cls, parser):
        with parser.in_angle_brackets():
            w = parser.parse_integer(allow_boolean=False, allow_negative=False)
            parser.parse_punctuation(",")
            i = parser.parse_integer(allow_boolean=False, allow_negative=True)
        return (IntAttr(w), IntAttr(i))

    def print_parameters(self, printer) -> None:
        printer.print_string(f"<{self.width.data},{self.integer.data}>")

    def verify(self) -> None:
        if not 1 <= self.width.data <= MAX_WIDTH:
            raise VerifyException(
                f"{self.name}: width must be between 1 and {MAX_WIDTH}, got {self.width.data}"
            )

    @property
    def spec(self) -> Fixed:
        return Fixed(self.width.data, self.integer.data, self.SIGNED)


@irdl_attr_definition
class FixedType(_FixedBase):
    """``!qir.fixed<W,I>``: signed, W bits, I integer bits including the sign."""

    name = "qir.fixed"
    width: IntAttr
    integer: IntAttr
    SIGNED: ClassVar[bool] = True


@irdl_attr_definition
class UFixedType(_FixedBase):
    """``!qir.ufixed<W,I>``: unsigned, W bits, I integer bits."""

    name = "qir.ufixed"
    width: IntAttr
    integer: IntAttr
    SIGNED: ClassVar[bool] = False


def fixed_type(spec: Fixed) -> FixedType | UFixedType:
    return FixedType(spec.width, spec.integer) if spec.signed else UFixedType(spec.width, spec.integer)


def tensor_of(spec: Fixed, shape) -> TensorType:
    from qir.safety import check_elements  # every tensor a frontend builds is bounded

    return TensorType(fixed_type(spec), list(check_elements(shape)))


def elem(t: Attribute, what: str = "value") -> Fixed:
    """The fixed-point element format of a tensor (or scalar) type."""
    if isinstance(t, TensorType):
        t = t.element_type
    if not isinstance(t, _FixedBase):
        raise VerifyException(f"{what} must have a !qir.fixed/!qir.ufixed element type, got {t}")
    return t.spec


def shape_of(t: Attribute) -> tuple[int, ...]:
    if not isinstance(t, TensorType):
        raise VerifyException(f"expected a tensor type, got {t}")
    return tuple(t.get_shape())


# ------------------------------------------------------------------------- constant helpers
def int_elements(values: np.ndarray) -> DenseIntOrFPElementsAttr:
    """A dense integer literal (i32 when it fits, else i64) holding ``values`` exactly."""
    arr = np.asarray(values)
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    for bits in (32, 64):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            t = TensorType(IntegerType(bits), list(arr.shape))
            return DenseIntOrFPElementsAttr.from_list(t, [int(v) for v in arr.ravel()])
    raise QirError("a constant needs more than 64 bits; such weights are not supported")


def elements_to_numpy(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The integers of a dense literal as an int64 array of its shape (cached per attribute)."""
    cached = _NP_CACHE.get(id(attr))
    if cached is not None and cached[0] is attr:
        return cached[1]
    et = attr.get_element_type()
    if not isinstance(et, IntegerType) or et.width.data not in (8, 16, 32, 64):
        raise VerifyException(f"expected an i8/i16/i32/i64 dense literal, got {et}")
    dt = np.dtype(f"<i{et.width.data // 8}")
    raw = np.frombuffer(attr.data.data, dtype=dt).astype(np.int64)
    shape = attr.get_shape()
    arr = np.broadcast_to(raw, shape).copy() if raw.size == 1 else raw.reshape(shape)
    arr.setflags(write=False)
    _NP_CACHE[id(attr)] = (attr, arr)
    return arr


_NP_CACHE: dict[int, tuple[DenseIntOrFPElementsAttr, np.ndarray]] = {}


def _check_in_type(values: np.ndarray, t: Fixed, what: str) -> None:
    if values.size and (values.min() < t.min_int or values.max() > t.max_int):
        raise VerifyException(
            f"{what}: mantissas [{values.min()}, {values.max()}] do not fit {t} "
            f"[{t.min_int}, {t.max_int}]"
        )


def _layer(op: IRDLOperation) -> str:
    a = op.attributes.get("layer")
    return f"layer '{a.data}'" if isinstance(a, StringAttr) else f"'{op.name}'"


# ------------------------------------------------------------------------- layer-level ops
@irdl_op_definition
class ModelOp(IRDLOperation):
    name = "qir.model"
    sym_name = prop_def(SymbolNameConstraint())
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), SymbolOpInterface(), NoTerminator())
    assembly_format = "$sym_name attr-dict-with-keyword $body"

    def __init__(self, name: str, body):
        super().__init__(properties={"sym_name": StringAttr(name)}, regions=[body])

    @property
    def block(self):
        return self.body.block

    def inputs(self) -> list["InputOp"]:
        return [op for op in self.block.ops if isinstance(op, InputOp)]

    def output(self) -> "OutputOp":
        last = self.block.last_op
        assert isinstance(last, OutputOp)
        return last

    def verify_(self) -> None:
        last = self.body.block.last_op
        if not isinstance(last, OutputOp):
            raise VerifyException(f"qir.model @{self.sym_name.data} must end with qir.output")
        if not self.inputs():
            raise VerifyException(f"qir.model @{self.sym_name.data} has no qir.input")


@irdl_op_definition
class InputOp(IRDLOperation):
    name = "qir.input"
    port = prop_def(StringAttr)
    result = result_def(TensorType)
    traits = traits_def(HasParent(ModelOp))
    assembly_format = "$port attr-dict `:` type($result)"

    def __init__(self, port: str, t: TensorType, layer: str | None = None):
        attrs = {"layer": StringAttr(layer)} if layer else {}
        super().__init__(properties={"port": StringAttr(port)}, result_types=[t], attributes=attrs)

    def verify_(self) -> None:
        elem(self.result.type, "qir.input result")


@irdl_op_definition
class OutputOp(IRDLOperation):
    name = "qir.output"
    outs = var_operand_def(TensorType)
    traits = traits_def(IsTerminator(), HasParent(ModelOp))
    assembly_format = "$outs attr-dict `:` type($outs)"

    def __init__(self, *values):
        super().__init__(operands=[list(values)])

    def verify_(self) -> None:
        if not self.outs:
            raise VerifyException("qir.output needs at least one value")
        for v in self.outs:
            elem(v.type, "qir.output operand")


def dense_bounds(in_t: Fixed, w: np.ndarray, offset: np.ndarray, in_lo=None, in_hi=None):
    """Exact per-output mantissa bounds of ``x @ w + offset`` for x in the input type's range
    (or the per-element interval [in_lo, in_hi] when given)."""
    n_in = w.shape[0]
    lo = np.full(n_in, in_t.min_int, dtype=object) if in_lo is None else np.asarray(in_lo, dtype=object)
    hi = np.full(n_in, in_t.max_int, dtype=object) if in_hi is None else np.asarray(in_hi, dtype=object)
    wo = w.astype(object)
    a, b = lo[:, None] * wo, hi[:, None] * wo
    out_lo = np.minimum(a, b).sum(axis=0) + offset.astype(object)
    out_hi = np.maximum(a, b).sum(axis=0) + offset.astype(object)
    return out_lo, out_hi


@irdl_op_definition
class DenseOp(IRDLOperation):
    """y = x @ (W * 2^-fw) + (b * 2^-fb), exact (the result type must hold every result)."""

    name = "qir.dense"
    input = operand_def(TensorType)
    weights = prop_def(DenseIntOrFPElementsAttr)
    weight_type = prop_def(base(FixedType) | base(UFixedType))
    bias = opt_prop_def(DenseIntOrFPElementsAttr)
    bias_type = opt_prop_def(base(FixedType) | base(UFixedType))
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `weights` `(` $weights `:` $weight_type `)` "
        "(`bias` `(` $bias^ `:` $bias_type `)`)? attr-dict `:` type($input) `->` type($output)"
    )

    def folded(self):
        """(matrix, offset, frac): the op as one integer matrix-vector product plus offset whose
        result has ``frac`` fractional bits; bias and products aligned without loss."""
        in_t, wt = elem(self.input.type), self.weight_type.spec
        w = elements_to_numpy(self.weights)
        pf = in_t.frac + wt.frac
        if self.bias is None:
            return w, np.zeros(w.shape[1], dtype=np.int64), pf, 0
        bt = self.bias_type.spec
        b = elements_to_numpy(self.bias)
        if bt.frac <= pf:
            return w, b.astype(object) * (1 << (pf - bt.frac)), pf, 0
        s = bt.frac - pf
        return w.astype(object) * (1 << s), b, bt.frac, s

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        wshape = tuple(self.weights.get_shape())
        if wshape != (n_in, n_out):
            raise VerifyException(f"{where}: weights shape {wshape} != ({n_in}, {n_out})")
        if (self.bias is None) != (self.bias_type is None):
            raise VerifyException(f"{where}: bias and its type go together")
        _check_in_type(elements_to_numpy(self.weights), self.weight_type.spec, f"{where} weights")
        if self.bias is not None:
            if tuple(self.bias.get_shape()) != (n_out,):
                raise VerifyException(f"{where}: bias shape {tuple(self.bias.get_shape())} != ({n_out},)")
            _check_in_type(elements_to_numpy(self.bias), self.bias_type.spec, f"{where} bias")
        w, off, frac, _ = self.folded()
        _check_exact_result(where, in_t, out_t, w, off, frac)


def _check_exact_result(where, in_t: Fixed, out_t: Fixed, w, off, frac) -> None:
    if out_t.frac < frac:
        raise VerifyException(
            f"{where}: result type {out_t} has {out_t.frac} fractional bits but the exact result "
            f"needs {frac}; run qir-infer-widths or quantize explicitly with qir.quantize"
        )
    lo, hi = dense_bounds(in_t, w, off)
    lo, hi = int(min(lo, default=0)), int(max(hi, default=0))
    scale = 1 << (out_t.frac - frac)
    if not out_t.contains(lo * scale, hi * scale):
        need = Fixed.for_range(lo, hi, frac)
        raise VerifyException(
            f"{where}: result type {out_t} cannot hold the exact results "
            f"[{lo * 2.0 ** -frac}, {hi * 2.0 ** -frac}]; it needs at least {need} "
            "(run qir-infer-widths)"
        )


@irdl_op_definition
class ReluOp(IRDLOperation):
    name = "qir.relu"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    output = result_def(T)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input)"

    def verify_(self) -> None:
        elem(self.input.type, f"{_layer(self)} input")


@irdl_op_definition
class QuantizeOp(IRDLOperation):
    """Re-grid to the result type: round dropped LSBs with ``rounding``, then ``overflow``."""

    name = "qir.quantize"
    input = operand_def(TensorType)
    rounding = prop_def(StringAttr)
    overflow = prop_def(StringAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `rounding` $rounding `overflow` $overflow attr-dict `:` type($input) `->` type($output)"
    )

    def __init__(self, value, t: TensorType, rounding: str, overflow: str, layer: str | None = None):
        attrs = {"layer": StringAttr(layer)} if layer else {}
        super().__init__(
            operands=[value], result_types=[t], attributes=attrs,
            properties={"rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")
        elem(self.output.type, f"{where} result")
        if shape_of(self.input.type) != shape_of(self.output.type):
            raise VerifyException(f"{where}: qir.quantize must keep the shape")
        if self.rounding.data not in ROUNDING_MODES:
            raise VerifyException(
                f"{where}: rounding {self.rounding.data!r} is not one of {', '.join(ROUNDING_MODES)}"
            )
        if self.overflow.data not in OVERFLOW_MODES:
            raise VerifyException(
                f"{where}: overflow {self.overflow.data!r} is not one of {', '.join(OVERFLOW_MODES)}"
            )


# ------------------------------------------------------------- layer-level ops: spatial & more
@irdl_custom_directive
class IntList(CustomDirective):
    """``[1, 2, 3]`` for a ``DenseArrayBase`` of i64 (strides, pads, window, perm)."""

    values: AttributeVariable

    def parse(self, parser, state) -> None:
        items = parser.parse_comma_separated_list(
            parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
        )
        self.values.set(state, DenseArrayBase.from_list(i64, items))

    def print(self, printer, state, op) -> None:
        state.print_whitespace(printer)
        arr = self.values.get(op)
        printer.print_string("[" + ", ".join(str(v) for v in arr.get_values()) + "]")


@irdl_custom_directive
class BareInt(CustomDirective):
    """A bare integer for an i64 ``IntegerAttr`` (``groups 2``, ``axis 1``)."""

    value: AttributeVariable

    def parse(self, parser, state) -> None:
        self.value.set(state, IntegerAttr(parser.parse_integer(allow_boolean=False), i64))

    def print(self, printer, state, op) -> None:
        state.print_whitespace(printer)
        printer.print_string(str(self.value.get(op).value.data))


_FIXED_T = base(FixedType) | base(UFixedType)
_I64_ARRAY = DenseArrayBase.constr(i64)


def int_values(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


def _channel_const(where: str, what: str, attr, t, channels: int) -> np.ndarray:
    """A per-channel constant (shape (C,) or (1,), broadcast over the last axis), checked
    against its type; returned with shape (C,)."""
    v = elements_to_numpy(attr)
    if v.shape not in ((channels,), (1,)):
        raise VerifyException(f"{where}: {what} shape {v.shape} must be ({channels},) or (1,)")
    _check_in_type(v, t.spec, f"{where} {what}")
    return np.broadcast_to(v, (channels,))


def _check_bounds(where: str, out_t: Fixed, lo: int, hi: int, frac: int) -> None:
    """The result type must hold every exact result in [lo, hi] * 2^-frac (mantissas)."""
    if out_t.frac < frac:
        raise VerifyException(
            f"{where}: result type {out_t} has {out_t.frac} fractional bits but the exact result "
            f"needs {frac}; run qir-infer-widths or quantize explicitly with qir.quantize"
        )
    scale = 1 << (out_t.frac - frac)
    if not out_t.contains(lo * scale, hi * scale):
        need = Fixed.for_range(lo, hi, frac)
        raise VerifyException(
            f"{where}: result type {out_t} cannot hold the exact results "
            f"[{lo * 2.0 ** -frac}, {hi * 2.0 ** -frac}]; it needs at least {need} "
            "(run qir-infer-widths)"
        )


def _check_same_elem(where: str, in_type, out_type) -> None:
    if elem(in_type, f"{where} input") != elem(out_type, f"{where} result"):
        raise VerifyException(
            f"{where}: result element type {elem(out_type)} must equal the input's {elem(in_type)}"
        )


def fold_affine(in_frac: int, w: np.ndarray, wt: Fixed, b, bt: Fixed | None):
    """(w, b, frac): ``x*w*2^-wt.frac + b*2^-bt.frac`` as integers on one grid with ``frac``
    fractional bits (the bias aligned to the products, or the weights to a finer bias)."""
    pf = in_frac + wt.frac
    if b is None:
        return w, np.zeros(w.shape[-1], dtype=np.int64), pf
    if bt.frac <= pf:
        return w, np.asarray(b).astype(object) * (1 << (pf - bt.frac)), pf
    return w.astype(object) * (1 << (bt.frac - pf)), np.asarray(b), bt.frac


def window_geometry(in_shape, window, strides, dilations, pads):
    """Per spatial dim: (output size, valid-tap mask of shape (out, window)); pads are
    [begin_0, .., begin_n-1, end_0, .., end_n-1] (ONNX order)."""
    n = len(in_shape)
    dims = []
    for d in range(n):
        size, k, s, dl = in_shape[d], window[d], strides[d], dilations[d]
        pb, pe = pads[d], pads[n + d]
        out = (size + pb + pe - dl * (k - 1) - 1) // s + 1
        pos = np.arange(max(out, 0))[:, None] * s - pb + np.arange(k)[None, :] * dl
        dims.append((out, (pos >= 0) & (pos < size)))
    return dims


def _check_window_params(where, spatial, window, strides, dilations, pads, what="window") -> None:
    n = len(spatial)
    if len(window) != n or len(strides) != n or len(dilations) != n or len(pads) != 2 * n:
        raise VerifyException(
            f"{where}: {n} spatial dims need {n} {what} sizes, {n} strides, {n} dilations and "
            f"{2 * n} pads, got {len(window)}, {len(strides)}, {len(dilations)} and {len(pads)}"
        )
    if min(window + strides + dilations, default=1) < 1 or min(pads, default=0) < 0:
        raise VerifyException(f"{where}: {what} sizes, strides and dilations must be >= 1 and pads >= 0")


def _check_out_shape(where, got, spatial_out, channels) -> None:
    want = tuple(spatial_out) + (channels,)
    if min(spatial_out, default=1) < 1:
        raise VerifyException(f"{where}: the window does not fit the (padded) input")
    if tuple(got) != want:
        raise VerifyException(f"{where}: result shape {tuple(got)} != expected {want}")


@irdl_op_definition
class ConvOp(IRDLOperation):
    """N-D convolution, channels last: y[p, o] = sum_{t, i} x[p*s - pb + t*d, g*Cg + i] *
    W[t, i, o] + b[o], with g = o // (C_out/groups), zero padding; exact result type."""

    name = "qir.conv"
    input = operand_def(TensorType)
    weights = prop_def(DenseIntOrFPElementsAttr)
    weight_type = prop_def(_FIXED_T)
    bias = opt_prop_def(DenseIntOrFPElementsAttr)
    bias_type = opt_prop_def(_FIXED_T)
    strides = prop_def(_I64_ARRAY)
    dilations = prop_def(_I64_ARRAY)
    pads = prop_def(_I64_ARRAY)
    groups = prop_def(IntegerAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (IntList, BareInt)
    assembly_format = (
        "$input `weights` `(` $weights `:` $weight_type `)` "
        "(`bias` `(` $bias^ `:` $bias_type `)`)? "
        "`strides` custom<IntList>($strides) `dilations` custom<IntList>($dilations) "
        "`pads` custom<IntList>($pads) `groups` custom<BareInt>($groups) "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def geometry(self):
        spatial = shape_of(self.input.type)[:-1]
        k = tuple(self.weights.get_shape())[:-2]
        return window_geometry(spatial, k, int_values(self.strides), int_values(self.dilations), int_values(self.pads))

    def folded(self):
        """(w, b, frac): weights (kernel..., C_in/groups, C_out) and bias on one integer grid."""
        b = None if self.bias is None else elements_to_numpy(self.bias)
        bt = None if self.bias_type is None else self.bias_type.spec
        return fold_affine(elem(self.input.type).frac, elements_to_numpy(self.weights),
                           self.weight_type.spec, b, bt)

    def exact_bounds(self):
        """(lo, hi, frac): tight mantissa bounds over every output (border windows see fewer taps)."""
        in_t = elem(self.input.type)
        w, off, frac = self.folded()
        ktaps = w.shape[:-2]
        wo = w.reshape(-1, w.shape[-2], w.shape[-1]).astype(object)
        a, b = wo * in_t.min_int, wo * in_t.max_int
        tmin = np.minimum(a, b).sum(axis=1)  # (taps, C_out)
        tmax = np.maximum(a, b).sum(axis=1)
        per_dim = [np.unique(mask, axis=0) for _, mask in self.geometry()]
        lo = hi = None
        for combo in itertools.product(*per_dim):
            m = np.ones(ktaps, dtype=bool)
            for d, row in enumerate(combo):
                m = m & row.reshape((1,) * d + (-1,) + (1,) * (len(ktaps) - d - 1))
            sel = m.ravel()
            clo = tmin[sel].sum(axis=0) + off.astype(object)
            chi = tmax[sel].sum(axis=0) + off.astype(object)
            cl, ch = int(min(clo, default=0)), int(max(chi, default=0))
            lo, hi = (cl, ch) if lo is None else (min(lo, cl), max(hi, ch))
        return lo, hi, frac

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        ishape, oshape = shape_of(self.input.type), shape_of(self.output.type)
        wshape = tuple(self.weights.get_shape())
        n = len(ishape) - 1
        if n < 1 or len(oshape) != len(ishape):
            raise VerifyException(f"{where}: input and result must be (spatial..., channels) tensors "
                                  f"of equal rank, got {ishape} and {oshape}")
        if len(wshape) != n + 2:
            raise VerifyException(f"{where}: weights shape {wshape} must be (kernel x{n}, C_in/groups, C_out)")
        groups, c_in, c_out = self.groups.value.data, ishape[-1], wshape[-1]
        if groups < 1 or c_in % groups or c_out % groups or wshape[-2] * groups != c_in:
            raise VerifyException(f"{where}: groups {groups} does not fit {c_in} input channels, "
                                  f"weights shape {wshape}")
        _check_window_params(where, ishape[:-1], wshape[:-2], int_values(self.strides),
                             int_values(self.dilations), int_values(self.pads), "kernel")
        _check_out_shape(where, oshape, [o for o, _ in self.geometry()], c_out)
        if (self.bias is None) != (self.bias_type is None):
            raise VerifyException(f"{where}: bias and its type go together")
        _check_in_type(elements_to_numpy(self.weights), self.weight_type.spec, f"{where} weights")
        if self.bias is not None:
            if tuple(self.bias.get_shape()) != (c_out,):
                raise VerifyException(f"{where}: bias shape {tuple(self.bias.get_shape())} != ({c_out},)")
            _check_in_type(elements_to_numpy(self.bias), self.bias_type.spec, f"{where} bias")
        _check_bounds(where, out_t, *self.exact_bounds())


POOL_KINDS = ("max", "avg")
POOL_COUNTS = ("window", "valid")


@irdl_op_definition
class PoolOp(IRDLOperation):
    """Max or average pooling, channels last.  ``max``: the largest valid element of each window
    (padding never wins); result type = input type.  ``avg``: the zero-padded window sum times
    a constant multiplier, exact: count ``window`` uses multiplier[0] everywhere, count
    ``valid`` uses multiplier[k-1] where k window elements lie inside the input."""

    name = "qir.pool"
    input = operand_def(TensorType)
    kind = prop_def(StringAttr)
    window = prop_def(_I64_ARRAY)
    strides = prop_def(_I64_ARRAY)
    pads = prop_def(_I64_ARRAY)
    count = opt_prop_def(StringAttr)
    multiplier = opt_prop_def(DenseIntOrFPElementsAttr)
    multiplier_type = opt_prop_def(_FIXED_T)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (IntList,)
    assembly_format = (
        "$input `kind` $kind `window` custom<IntList>($window) `strides` custom<IntList>($strides) "
        "`pads` custom<IntList>($pads) "
        "(`count` $count^ `multiplier` `(` $multiplier `:` $multiplier_type `)`)? "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def geometry(self):
        window = int_values(self.window)
        return window_geometry(shape_of(self.input.type)[:-1], window, int_values(self.strides),
                               (1,) * len(window), int_values(self.pads))

    def counts(self) -> np.ndarray:
        """Valid (non-padding) elements of each window, shape (out spatial...)."""
        c = np.ones((), dtype=np.int64)
        for _, mask in self.geometry():
            c = np.multiply.outer(c, mask.sum(axis=1))
        return c

    def multipliers(self) -> np.ndarray:
        """multiplier mantissa per window-element count k (index k), shape (A + 1,)."""
        m = elements_to_numpy(self.multiplier)
        area = int(np.prod(int_values(self.window)))
        if self.count.data == "window":
            return np.full(area + 1, m[0], dtype=np.int64)
        return np.concatenate([[0], m])

    def exact_bounds(self):
        """(lo, hi, frac) of an average pool: sum of k inputs times the multiplier for k."""
        in_t = elem(self.input.type)
        mt = self.multiplier_type.spec
        m = self.multipliers()
        lo = hi = None
        for k in np.unique(self.counts()):
            k = int(k)
            prods = [k * in_t.min_int * int(m[k]), k * in_t.max_int * int(m[k])]
            lo = min(prods) if lo is None else min(lo, *prods)
            hi = max(prods) if hi is None else max(hi, *prods)
        return lo, hi, in_t.frac + mt.frac

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        ishape, oshape = shape_of(self.input.type), shape_of(self.output.type)
        if len(ishape) < 2 or len(oshape) != len(ishape):
            raise VerifyException(f"{where}: input and result must be (spatial..., channels) tensors "
                                  f"of equal rank, got {ishape} and {oshape}")
        window = int_values(self.window)
        _check_window_params(where, ishape[:-1], window, int_values(self.strides), (1,) * len(window),
                             int_values(self.pads))
        _check_out_shape(where, oshape, [o for o, _ in self.geometry()], ishape[-1])
        if int(self.counts().min()) < 1:
            raise VerifyException(f"{where}: a pooling window lies entirely in the padding; "
                                  "pads must be smaller than the window")
        kind = self.kind.data
        if kind not in POOL_KINDS:
            raise VerifyException(f"{where}: kind {kind!r} is not one of {', '.join(POOL_KINDS)}")
        if kind == "max":
            if self.count is not None or self.multiplier is not None:
                raise VerifyException(f"{where}: max pooling takes no count or multiplier")
            _check_same_elem(where, self.input.type, self.output.type)
            return
        if self.count is None or self.multiplier is None or self.multiplier_type is None:
            raise VerifyException(f"{where}: average pooling needs count and multiplier")
        if self.count.data not in POOL_COUNTS:
            raise VerifyException(f"{where}: count {self.count.data!r} is not one of {', '.join(POOL_COUNTS)}")
        area = int(np.prod(window))
        want = (1,) if self.count.data == "window" else (area,)
        m = elements_to_numpy(self.multiplier)
        if m.shape != want:
            raise VerifyException(f"{where}: count {self.count.data!r} needs a multiplier of shape "
                                  f"{want}, got {m.shape}")
        _check_in_type(m, self.multiplier_type.spec, f"{where} multiplier")
        _check_bounds(where, out_t, *self.exact_bounds())


@irdl_op_definition
class ScaleOp(IRDLOperation):
    """y = x * scale[c] + bias[c] per channel (last axis; (1,) broadcasts), exact; either
    constant may be absent (scale 1, bias 0)."""

    name = "qir.scale"
    input = operand_def(TensorType)
    scale = opt_prop_def(DenseIntOrFPElementsAttr)
    scale_type = opt_prop_def(_FIXED_T)
    bias = opt_prop_def(DenseIntOrFPElementsAttr)
    bias_type = opt_prop_def(_FIXED_T)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input (`scale` `(` $scale^ `:` $scale_type `)`)? (`bias` `(` $bias^ `:` $bias_type `)`)? "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def folded(self):
        """(s, t, frac): per-channel integer multiplier and offset, result = x*s + t at ``frac``."""
        channels = shape_of(self.input.type)[-1]
        if self.scale is None:
            s, st = np.ones(channels, dtype=np.int64), Fixed(1, 1, False)
        else:
            s, st = np.broadcast_to(elements_to_numpy(self.scale), (channels,)), self.scale_type.spec
        b = None if self.bias is None else np.broadcast_to(elements_to_numpy(self.bias), (channels,))
        bt = None if self.bias_type is None else self.bias_type.spec
        return fold_affine(elem(self.input.type).frac, s, st, b, bt)

    def exact_bounds(self):
        in_t = elem(self.input.type)
        s, t, frac = self.folded()
        so, to = s.astype(object), np.asarray(t).astype(object)
        a, b = so * in_t.min_int + to, so * in_t.max_int + to
        return int(np.minimum(a, b).min()), int(np.maximum(a, b).max()), frac

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        ishape = shape_of(self.input.type)
        if not ishape or ishape != shape_of(self.output.type):
            raise VerifyException(f"{where}: qir.scale must keep the (non-scalar) shape")
        if (self.scale is None) != (self.scale_type is None) or (self.bias is None) != (self.bias_type is None):
            raise VerifyException(f"{where}: each constant and its type go together")
        if self.scale is None and self.bias is None:
            raise VerifyException(f"{where}: qir.scale needs a scale, a bias or both")
        if self.scale is not None:
            _channel_const(where, "scale", self.scale, self.scale_type, ishape[-1])
        if self.bias is not None:
            _channel_const(where, "bias", self.bias, self.bias_type, ishape[-1])
        _check_bounds(where, out_t, *self.exact_bounds())


@irdl_op_definition
class LeakyReluOp(IRDLOperation):
    """y = x if x >= 0 else alpha[c] * x per channel (last axis; (1,) broadcasts), exact."""

    name = "qir.leaky_relu"
    input = operand_def(TensorType)
    alpha = prop_def(DenseIntOrFPElementsAttr)
    alpha_type = prop_def(_FIXED_T)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `alpha` `(` $alpha `:` $alpha_type `)` attr-dict `:` type($input) `->` type($output)"
    )

    def exact_bounds(self):
        """(lo, hi, frac): frac = input frac + max(alpha frac, 0)."""
        in_t, at = elem(self.input.type), self.alpha_type.spec
        a = np.broadcast_to(elements_to_numpy(self.alpha), (shape_of(self.input.type)[-1],))
        frac = in_t.frac + max(at.frac, 0)
        pos_scale = 1 << (frac - in_t.frac)
        neg_scale = 1 << (frac - in_t.frac - at.frac)
        lo, hi = 0, in_t.max_int * pos_scale
        if in_t.min_int < 0:
            for av in (int(a.min()), int(a.max())):
                for x in (in_t.min_int, -1):
                    v = av * x * neg_scale
                    lo, hi = min(lo, v), max(hi, v)
        return lo, hi, frac

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        ishape = shape_of(self.input.type)
        if not ishape or ishape != shape_of(self.output.type):
            raise VerifyException(f"{where}: qir.leaky_relu must keep the (non-scalar) shape")
        _channel_const(where, "alpha", self.alpha, self.alpha_type, ishape[-1])
        _check_bounds(where, out_t, *self.exact_bounds())


@irdl_op_definition
class AddOp(IRDLOperation):
    """Elementwise sum of two or more same-shape tensors, binary points aligned, exact."""

    name = "qir.add"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$inputs attr-dict `:` type($inputs) `->` type($output)"

    def exact_bounds(self):
        ts = [elem(v.type) for v in self.inputs]
        frac = max(t.frac for t in ts)
        lo = sum(t.min_int << (frac - t.frac) for t in ts)
        hi = sum(t.max_int << (frac - t.frac) for t in ts)
        return lo, hi, frac

    def verify_(self) -> None:
        where = _layer(self)
        if len(self.inputs) < 2:
            raise VerifyException(f"{where}: qir.add needs at least two inputs")
        out_t = elem(self.output.type, f"{where} result")
        shape = shape_of(self.output.type)
        for i, v in enumerate(self.inputs):
            elem(v.type, f"{where} input {i}")
            if shape_of(v.type) != shape:
                raise VerifyException(f"{where}: input {i} shape {shape_of(v.type)} != result shape {shape}")
        _check_bounds(where, out_t, *self.exact_bounds())


@irdl_op_definition
class ConcatOp(IRDLOperation):
    """Concatenation along ``axis`` (of the unbatched shape); every input is placed exactly on
    the result grid, so the result type must have at least the finest input's fractional bits
    and hold every input's range."""

    name = "qir.concat"
    inputs = var_operand_def(TensorType)
    axis = prop_def(IntegerAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (BareInt,)
    assembly_format = "$inputs `axis` custom<BareInt>($axis) attr-dict `:` type($inputs) `->` type($output)"

    def exact_bounds(self):
        ts = [elem(v.type) for v in self.inputs]
        frac = max(t.frac for t in ts)
        lo = min(t.min_int << (frac - t.frac) for t in ts)
        hi = max(t.max_int << (frac - t.frac) for t in ts)
        return lo, hi, frac

    def verify_(self) -> None:
        where = _layer(self)
        if not self.inputs:
            raise VerifyException(f"{where}: qir.concat needs at least one input")
        out_t = elem(self.output.type, f"{where} result")
        oshape = shape_of(self.output.type)
        axis = self.axis.value.data
        if not 0 <= axis < len(oshape):
            raise VerifyException(f"{where}: axis {axis} out of range for rank {len(oshape)}")
        total = 0
        for i, v in enumerate(self.inputs):
            elem(v.type, f"{where} input {i}")
            s = shape_of(v.type)
            if len(s) != len(oshape) or s[:axis] + s[axis + 1:] != oshape[:axis] + oshape[axis + 1:]:
                raise VerifyException(f"{where}: input {i} shape {s} does not match result shape "
                                      f"{oshape} outside axis {axis}")
            total += s[axis]
        if total != oshape[axis]:
            raise VerifyException(f"{where}: inputs give {total} along axis {axis}, result has {oshape[axis]}")
        _check_bounds(where, out_t, *self.exact_bounds())


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    """Reinterpret the elements in row-major (NHWC) order; same element type (Flatten)."""

    name = "qir.reshape"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($output)"

    def verify_(self) -> None:
        where = _layer(self)
        _check_same_elem(where, self.input.type, self.output.type)
        a, b = shape_of(self.input.type), shape_of(self.output.type)
        if int(np.prod(a)) != int(np.prod(b)):
            raise VerifyException(f"{where}: cannot reshape {a} ({int(np.prod(a))} elements) to {b} "
                                  f"({int(np.prod(b))} elements)")


@irdl_op_definition
class TransposeOp(IRDLOperation):
    """Permute the (unbatched) axes: result axis i is input axis perm[i]; same element type."""

    name = "qir.transpose"
    input = operand_def(TensorType)
    perm = prop_def(_I64_ARRAY)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (IntList,)
    assembly_format = "$input `perm` custom<IntList>($perm) attr-dict `:` type($input) `->` type($output)"

    def verify_(self) -> None:
        where = _layer(self)
        _check_same_elem(where, self.input.type, self.output.type)
        a, b, perm = shape_of(self.input.type), shape_of(self.output.type), int_values(self.perm)
        if sorted(perm) != list(range(len(a))):
            raise VerifyException(f"{where}: perm {list(perm)} is not a permutation of 0..{len(a) - 1}")
        if tuple(a[p] for p in perm) != b:
            raise VerifyException(f"{where}: result shape {b} != {tuple(a[p] for p in perm)} (input permuted)")


@irdl_op_definition
class PadOp(IRDLOperation):
    """Zero padding of every (unbatched) axis; pads = [begin_0, .., begin_n-1, end_0, .., end_n-1]."""

    name = "qir.pad"
    input = operand_def(TensorType)
    pads = prop_def(_I64_ARRAY)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (IntList,)
    assembly_format = "$input `pads` custom<IntList>($pads) attr-dict `:` type($input) `->` type($output)"

    def verify_(self) -> None:
        where = _layer(self)
        _check_same_elem(where, self.input.type, self.output.type)
        a, b, pads = shape_of(self.input.type), shape_of(self.output.type), int_values(self.pads)
        n = len(a)
        if len(pads) != 2 * n or min(pads, default=0) < 0:
            raise VerifyException(f"{where}: need {2 * n} non-negative pads, got {list(pads)}")
        want = tuple(a[d] + pads[d] + pads[n + d] for d in range(n))
        if b != want:
            raise VerifyException(f"{where}: result shape {b} != padded shape {want}")


#: Widest input a ``qir.lut`` accepts (the table has 2^W entries).
LUT_MAX_INPUT_WIDTH = 16


@irdl_op_definition
class LutOp(IRDLOperation):
    """y = table[x - min_int(x type)] on mantissas: an elementwise function given by its full
    table of result mantissas (exact by definition)."""

    name = "qir.lut"
    input = operand_def(TensorType)
    table = prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input `table` `(` $table `)` attr-dict `:` type($input) `->` type($output)"

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        if shape_of(self.input.type) != shape_of(self.output.type):
            raise VerifyException(f"{where}: qir.lut must keep the shape")
        if in_t.width > LUT_MAX_INPUT_WIDTH:
            raise VerifyException(f"{where}: input type {in_t} is wider than the {LUT_MAX_INPUT_WIDTH} "
                                  "bits a table can index; quantize the input first")
        t = elements_to_numpy(self.table)
        if t.shape != (1 << in_t.width,):
            raise VerifyException(f"{where}: table shape {t.shape} != ({1 << in_t.width},) for input {in_t}")
        _check_in_type(t, out_t, f"{where} table")


# ---------------------------------------------------------------------------- dataflow ops
#: ``mac``: multipliers (DSPs); ``cmvm``: shared adder graph of CSD digits; ``ternary``: weights in
#: {-1, 0, 1}, adds/subtracts only; ``po2``: weights 0 or +-2^k, shifts only (see qir.addergraph).
CMVM_STYLES = ("mac", "cmvm", "ternary", "po2")


@irdl_op_definition
class CmvmOp(IRDLOperation):
    """out[j] = sum_i in[i] * matrix[i, j] + offset[j] on mantissas; result frac = in frac + shift."""

    name = "qir.cmvm"
    input = operand_def(TensorType)
    matrix = prop_def(DenseIntOrFPElementsAttr)
    offset = prop_def(DenseIntOrFPElementsAttr)
    shift = prop_def(IntegerAttr)
    style = prop_def(StringAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `matrix` `(` $matrix `)` `offset` `(` $offset `)` `shift` $shift `style` $style "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        m, off = elements_to_numpy(self.matrix), elements_to_numpy(self.offset)
        if m.shape != (n_in, n_out) or off.shape != (n_out,):
            raise VerifyException(f"{where}: matrix {m.shape} / offset {off.shape} do not match "
                                  f"({n_in}, {n_out}) / ({n_out},)")
        if self.style.data not in CMVM_STYLES:
            raise VerifyException(f"{where}: style {self.style.data!r} is not one of {', '.join(CMVM_STYLES)}")
        frac = in_t.frac + self.shift.value.data
        if out_t.frac != frac:
            raise VerifyException(f"{where}: result must have exactly {frac} fractional bits, has {out_t.frac}")
        _check_exact_result(where, in_t, out_t, m, off, frac)


@irdl_op_definition
class RegOp(IRDLOperation):
    """A pipeline register: the value one clock cycle later (stage = pipeline stage it ends)."""

    name = "qir.reg"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    output = result_def(T)
    stage = prop_def(IntegerAttr)
    assembly_format = "$input `stage` $stage attr-dict `:` type($input)"



# ------------------------------------------------------------------ adder graphs (issue 5)
#: styles a ``qir.addergraph`` may record (the ``qir.cmvm`` style it was lowered from)
ADDERGRAPH_STYLES = ("cmvm", "ternary", "po2")


@irdl_op_definition
class AdderGraphOp(IRDLOperation):
    """A constant matrix-vector product as an explicit graph of two-input adders.

    Values ``v``: the input mantissas ``v[0..n_in-1]``, then one per row of ``nodes``
    ``[a, sa, b, sb, sign]``: ``v[k] = (v[a] << sa) + sign * (v[b] << sb)`` (a, b < k).
    Sums: one per row of ``outputs`` ``[node, shift, sign]``:
    ``acc[j] = offset[j] + sign * (v[node] << shift)`` (node -1: ``offset[j]`` alone), on the
    grid with ``input frac + shift`` fractional bits (the op's ``shift`` property).
    Without ``acc_type`` the result is ``acc``, whose type must hold it exactly.  With
    ``acc_type`` (the exact type of ``acc``) the op also applies a fused epilogue: ``relu``
    (when ``relu`` is true) then ``qir.quantize`` to the result type with ``rounding`` and
    ``overflow``.  ``stages`` (one per node, then one per output) and ``latency`` place the
    adders in pipeline stages: stage s runs after s clock edges, operands from earlier stages
    are registered, and the result is ``latency`` cycles after the input (all outputs are in
    stage ``latency``).  Registers change timing only, never values.
    """

    name = "qir.addergraph"
    input = operand_def(TensorType)
    nodes = prop_def(DenseIntOrFPElementsAttr)
    outputs = prop_def(DenseIntOrFPElementsAttr)
    offset = prop_def(DenseIntOrFPElementsAttr)
    shift = prop_def(IntegerAttr)
    style = prop_def(StringAttr)
    stages = prop_def(DenseIntOrFPElementsAttr)
    latency = prop_def(IntegerAttr)
    acc_type = opt_prop_def(base(FixedType) | base(UFixedType))
    relu = opt_prop_def(IntegerAttr)
    rounding = opt_prop_def(StringAttr)
    overflow = opt_prop_def(StringAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `nodes` `(` $nodes `)` `outputs` `(` $outputs `)` `offset` `(` $offset `)` "
        "`shift` $shift `style` $style `stages` `(` $stages `)` `latency` $latency "
        "(`epilogue` `(` $acc_type^ `relu` $relu `rounding` $rounding `overflow` $overflow `)`)? "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def graph(self):
        """The ``qir.lowering.adder_graph.AdderGraph`` this op computes (input bounds from the
        input type; cached per op properties)."""
        from qir.lowering.adder_graph import AdderGraph

        key = (id(self.nodes), id(self.outputs), id(self.offset), id(self.input.type))
        hit = _GRAPH_CACHE.get(id(self))
        if hit is not None and hit[0] == key and hit[1] is self.nodes:
            return hit[2]
        in_t = elem(self.input.type)
        n_in = shape_of(self.input.type)[0] if shape_of(self.input.type) else 1
        nodes = elements_to_numpy(self.nodes).reshape(-1, 5).tolist()
        outs = elements_to_numpy(self.outputs).reshape(-1, 3).tolist()
        g = AdderGraph(n_in, [in_t.min_int] * n_in, [in_t.max_int] * n_in,
                       a=[r[0] for r in nodes], sa=[r[1] for r in nodes], b=[r[2] for r in nodes],
                       sb=[r[3] for r in nodes], sign=[r[4] for r in nodes],
                       onode=[r[0] for r in outs], oshift=[r[1] for r in outs], osign=[r[2] for r in outs],
                       offset=[int(v) for v in elements_to_numpy(self.offset).ravel()])
        _GRAPH_CACHE[id(self)] = (key, self.nodes, g)
        return g

    @property
    def acc_spec(self) -> Fixed:
        """The exact type of the sums (the result type when there is no epilogue)."""
        return self.acc_type.spec if self.acc_type is not None else elem(self.output.type)

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        if len(shape_of(self.input.type)) != 1 or len(shape_of(self.output.type)) != 1:
            raise VerifyException(f"{where}: qir.addergraph takes and returns 1-D tensors")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        nodes, outs = elements_to_numpy(self.nodes), elements_to_numpy(self.outputs)
        off, st = elements_to_numpy(self.offset), elements_to_numpy(self.stages)
        if nodes.ndim != 2 or nodes.shape[1] != 5:
            raise VerifyException(f"{where}: nodes must be an N x 5 array [a, sa, b, sb, sign]")
        if outs.shape != (n_out, 3) or off.shape != (n_out,):
            raise VerifyException(f"{where}: outputs must be {n_out} x 3 [node, shift, sign] and offset ({n_out},)")
        n_nodes = n_in + nodes.shape[0]
        for k, (a, sa, b, sb, sg) in enumerate(nodes.tolist(), start=n_in):
            if not (0 <= a < k and 0 <= b < k) or sa < 0 or sb < 0 or sg not in (-1, 1):
                raise VerifyException(f"{where}: node {k} = [{a}, {sa}, {b}, {sb}, {sg}] must use earlier nodes, "
                                      "non-negative shifts and sign +-1")
        for j, (k, sh, sg) in enumerate(outs.tolist()):
            if not -1 <= k < n_nodes or sh < 0 or sg not in (-1, 1):
                raise VerifyException(f"{where}: output {j} = [{k}, {sh}, {sg}] is not a node, shift >= 0, sign +-1")
        if self.style.data not in ADDERGRAPH_STYLES:
            raise VerifyException(f"{where}: style {self.style.data!r} is not one of {', '.join(ADDERGRAPH_STYLES)}")
        lat = self.latency.value.data
        if st.shape != (nodes.shape[0] + n_out,):
            raise VerifyException(f"{where}: stages must have one entry per node and per output "
                                  f"({nodes.shape[0] + n_out}), has {st.shape}")
        stl = st.tolist()
        node_st = [0] * n_in + stl[:nodes.shape[0]]
        for k, (a, _, b, _, _) in enumerate(nodes.tolist(), start=n_in):
            if not node_st[a] <= node_st[k] >= node_st[b] or node_st[k] > lat:
                raise VerifyException(f"{where}: node {k} is in stage {node_st[k]}, before an operand or after "
                                      f"the latency {lat}")
        for j, (k, _, _) in enumerate(outs.tolist()):
            if stl[nodes.shape[0] + j] != lat or (k >= 0 and node_st[k] > lat):
                raise VerifyException(f"{where}: output {j} must be in the last stage {lat}")
        acc = self.acc_spec
        frac = in_t.frac + self.shift.value.data
        if acc.frac != frac:
            raise VerifyException(f"{where}: the sums must have exactly {frac} fractional bits, have {acc.frac}")
        g = self.graph()
        lo = min((g.out_bounds(j)[0] for j in range(n_out)), default=0)
        hi = max((g.out_bounds(j)[1] for j in range(n_out)), default=0)
        if not acc.contains(lo, hi):
            raise VerifyException(f"{where}: the sums [{lo}, {hi}] (mantissas) do not fit {acc}; it needs "
                                  f"{Fixed.for_range(lo, hi, frac)}")
        epi = (self.acc_type, self.relu, self.rounding, self.overflow)
        if any(e is None for e in epi) and any(e is not None for e in epi):
            raise VerifyException(f"{where}: the epilogue needs acc_type, relu, rounding and overflow together")
        if self.rounding is not None:
            if self.rounding.data not in ROUNDING_MODES or self.overflow.data not in OVERFLOW_MODES:
                raise VerifyException(f"{where}: epilogue rounding/overflow must be one of {', '.join(ROUNDING_MODES)}"
                                      f" / {', '.join(OVERFLOW_MODES)}")
        if self.style.data in ("ternary", "po2"):
            mags = {abs(int(v)) for v in g.matrix().ravel()} - {0}
            if any(v & (v - 1) for v in mags) or (self.style.data == "ternary" and len(mags) > 1):
                raise VerifyException(f"{where}: style {self.style.data!r} needs weights "
                                      + ("in {-c, 0, c} (c a power of two)" if self.style.data == "ternary"
                                         else "0 or +-2^k"))


_GRAPH_CACHE: dict[int, tuple] = {}


@irdl_op_definition
class ThresholdOp(IRDLOperation):
    """A per-channel step: ``y = above[c] if x >= thresholds[c] else below[c]`` on mantissas
    (channel = last axis; (1,) broadcasts).  Thresholds are input mantissas in
    [min_int, max_int + 1] of the input type (min_int: always above, max_int + 1: always below);
    below/above are result mantissas.  ``qir-fold-threshold`` writes it for a batchnorm + sign
    chain after a non-binary layer."""

    name = "qir.threshold"
    input = operand_def(TensorType)
    thresholds = prop_def(DenseIntOrFPElementsAttr)
    below = prop_def(DenseIntOrFPElementsAttr)
    above = prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `thresholds` `(` $thresholds `)` `below` `(` $below `)` `above` `(` $above `)` "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def table(self):
        """(thresholds, below, above), each broadcast to shape (C,)."""
        c = shape_of(self.input.type)[-1]
        return tuple(np.broadcast_to(elements_to_numpy(a), (c,)) for a in (self.thresholds, self.below, self.above))

    def reachable(self) -> list[list[int]]:
        """Per element (row-major), the codes it can take (sorted)."""
        in_t = elem(self.input.type)
        per_channel = []
        for t, b, a in zip(*(v.tolist() for v in self.table())):
            codes = ({b} if t > in_t.min_int else set()) | ({a} if t <= in_t.max_int else set())
            per_channel.append(sorted(codes))
        size = int(np.prod(shape_of(self.input.type)))
        return [per_channel[k % len(per_channel)] for k in range(size)]

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        ishape = shape_of(self.input.type)
        if not ishape or ishape != shape_of(self.output.type):
            raise VerifyException(f"{where}: qir.threshold must keep the (non-scalar) shape")
        for name in ("thresholds", "below", "above"):
            v = elements_to_numpy(getattr(self, name))
            if v.shape not in ((ishape[-1],), (1,)):
                raise VerifyException(f"{where}: {name} shape {v.shape} must be ({ishape[-1]},) or (1,)")
        t, b, a = self.table()
        if t.size and (t.min() < in_t.min_int or t.max() > in_t.max_int + 1):
            raise VerifyException(f"{where}: thresholds must lie in [{in_t.min_int}, {in_t.max_int + 1}] "
                                  f"(input mantissas of {in_t}, or one past the largest)")
        _check_in_type(b, out_t, f"{where} below")
        _check_in_type(a, out_t, f"{where} above")


# ----------------------------------------------------------- binary layers: XNOR + popcount
def xnor_bit(one: int, zero: int) -> int:
    """The bit of the raw two's-complement code that tells ``one`` from ``zero``: the lowest bit
    in which they differ."""
    d = one ^ zero
    return (d & -d).bit_length() - 1


@irdl_op_definition
class XnorOp(IRDLOperation):
    """A binary-weight, binary-activation dense layer: XNOR of input bits and weight bits, then
    popcount, optionally compared with a per-output threshold.

    Every input code means one bit: ``bit(x) = 1`` iff bit k of x's raw two's-complement code
    equals bit k of ``one``, k = the lowest bit in which the codes ``one`` and ``zero`` differ
    (for x in {one, zero}: x == one).  ``weights`` is an (n_out, n_in) 0/1 matrix (1 = +).
    ``p[j] = #{i : bit(x[i]) == weights[j, i]}`` in [0, n_in].  Without thresholds the result is
    ``p`` (an integer-grid type holding [0, n_in]).  With ``thresholds`` T (in [0, n_in + 1]) and
    the codes ``below``/``above`` (result mantissas), ``y[j] = above[j] if p[j] >= T[j] else
    below[j]``.
    """

    name = "qir.xnor"
    input = operand_def(TensorType)
    weights = prop_def(DenseIntOrFPElementsAttr)
    one = prop_def(IntegerAttr)
    zero = prop_def(IntegerAttr)
    thresholds = opt_prop_def(DenseIntOrFPElementsAttr)
    below = opt_prop_def(DenseIntOrFPElementsAttr)
    above = opt_prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (BareInt,)
    assembly_format = (
        "$input `weights` `(` $weights `)` `one` custom<BareInt>($one) `zero` custom<BareInt>($zero) "
        "(`thresholds` `(` $thresholds^ `)` `below` `(` $below `)` `above` `(` $above `)`)? "
        "attr-dict `:` type($input) `->` type($output)"
    )

    @property
    def n_in(self) -> int:
        return shape_of(self.input.type)[0]

    def bit(self) -> int:
        return xnor_bit(self.one.value.data, self.zero.value.data)

    def levels(self) -> int:
        """Adder levels of the popcount tree, plus one for the threshold compare."""
        return max((self.n_in - 1).bit_length(), 1) + (self.thresholds is not None)

    def threshold_table(self):
        """(thresholds, below, above) as int64 arrays of shape (n_out,); None without thresholds."""
        if self.thresholds is None:
            return None
        return (elements_to_numpy(self.thresholds), elements_to_numpy(self.below), elements_to_numpy(self.above))

    def reachable(self) -> list[list[int]]:
        """Per output element, the codes it can take (sorted)."""
        n, n_out = self.n_in, shape_of(self.output.type)[0]
        tt = self.threshold_table()
        if tt is None:
            return [list(range(n + 1)) for _ in range(n_out)]
        out = []
        for t, b, a in zip(*(v.tolist() for v in tt)):
            codes = ({b} if t > 0 else set()) | ({a} if t <= n else set())
            out.append(sorted(codes))
        return out

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        if len(shape_of(self.input.type)) != 1 or len(shape_of(self.output.type)) != 1:
            raise VerifyException(f"{where}: qir.xnor takes and returns 1-D tensors")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        w = elements_to_numpy(self.weights)
        if w.shape != (n_out, n_in):
            raise VerifyException(f"{where}: weights shape {w.shape} != ({n_out}, {n_in}) (outputs x inputs)")
        if w.size and not np.isin(w, (0, 1)).all():
            raise VerifyException(f"{where}: weights must be bits (0 = -, 1 = +)")
        one, zero = self.one.value.data, self.zero.value.data
        if one == zero or not (in_t.contains(one, one) and in_t.contains(zero, zero)):
            raise VerifyException(f"{where}: the codes one {one} and zero {zero} must be two different "
                                  f"mantissas of the input type {in_t}")
        present = [a is not None for a in (self.thresholds, self.below, self.above)]
        if any(present) and not all(present):
            raise VerifyException(f"{where}: thresholds, below and above go together")
        if self.thresholds is None:
            _check_bounds(where, out_t, 0, n_in, 0)
            return
        t, b, a = self.threshold_table()
        for name, v in (("thresholds", t), ("below", b), ("above", a)):
            if v.shape != (n_out,):
                raise VerifyException(f"{where}: {name} shape {v.shape} != ({n_out},)")
        if t.size and (t.min() < 0 or t.max() > n_in + 1):
            raise VerifyException(f"{where}: thresholds must lie in [0, {n_in + 1}] (0: always above, "
                                  f"{n_in + 1}: always below)")
        _check_in_type(b, out_t, f"{where} below")
        _check_in_type(a, out_t, f"{where} above")

# ------------------------------------------------- layer-level ops: products and reductions
def broadcast_index(a_shape, b_shape) -> np.ndarray:
    """For every element of a tensor of ``a_shape`` (row-major), the flat index of the element
    of ``b_shape`` it meets under ``qir.mul`` broadcasting (numpy rules, b right-aligned, each
    of b's axes equal to a's or 1)."""
    size = int(np.prod(b_shape)) if b_shape else 1
    idx = np.arange(size, dtype=np.int64).reshape(tuple(b_shape))
    return np.broadcast_to(idx, tuple(a_shape)).ravel()


def _broadcastable(a_shape, b_shape) -> bool:
    if len(b_shape) > len(a_shape):
        return False
    tail = a_shape[len(a_shape) - len(b_shape):]
    return all(bd in (1, ad) for ad, bd in zip(tail, b_shape))


@irdl_op_definition
class MulOp(IRDLOperation):
    """y = a * b elementwise on mantissas, exact: result frac = a frac + b frac and the result
    type holds every product of the two types' ranges.  ``b`` has ``a``'s shape or broadcasts
    to it numpy-style (right-aligned, each of its axes equal to ``a``'s or 1: ``(1,)`` is one
    scalar for all elements, ``(C,)`` one value per channel, a ``qir.reduce`` result one per
    row); the result has ``a``'s shape."""

    name = "qir.mul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($output)"

    def exact_bounds(self):
        a, b = elem(self.lhs.type), elem(self.rhs.type)
        prods = [x * y for x in (a.min_int, a.max_int) for y in (b.min_int, b.max_int)]
        return min(prods), max(prods), a.frac + b.frac

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.lhs.type, f"{where} input 0")
        elem(self.rhs.type, f"{where} input 1")
        out_t = elem(self.output.type, f"{where} result")
        a, b, o = shape_of(self.lhs.type), shape_of(self.rhs.type), shape_of(self.output.type)
        if o != a:
            raise VerifyException(f"{where}: result shape {o} != first input shape {a}")
        if not _broadcastable(a, b):
            raise VerifyException(f"{where}: second input shape {b} does not broadcast to {a} "
                                  "(right-aligned, each axis equal or 1)")
        _check_bounds(where, out_t, *self.exact_bounds())


#: ``sum``: exact sum (adder tree); ``max``: largest element (comparator tree), result type =
#: input type; ``maxabs``: largest |element| (exact, unsigned when the input can be negative)
REDUCE_KINDS = ("sum", "max", "maxabs")


@irdl_op_definition
class ReduceOp(IRDLOperation):
    """A reduction over one ``axis`` with keepdims semantics: the result shape is the input
    shape with that axis set to 1.  ``sum`` is exact (result type holds n * the input range on
    the input grid), ``max`` keeps the input element type, ``maxabs`` = max |x| (exact)."""

    name = "qir.reduce"
    input = operand_def(TensorType)
    kind = prop_def(StringAttr)
    axis = prop_def(IntegerAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    custom_directives = (BareInt,)
    assembly_format = "$input `kind` $kind `axis` custom<BareInt>($axis) attr-dict `:` type($input) `->` type($output)"

    def exact_bounds(self):
        t = elem(self.input.type)
        n = shape_of(self.input.type)[self.axis.value.data]
        lo, hi = t.min_int, t.max_int
        if self.kind.data == "sum":
            return n * lo, n * hi, t.frac
        if self.kind.data == "maxabs":
            mags = (abs(lo), abs(hi))
            return (0 if lo <= 0 <= hi else min(mags)), max(mags), t.frac
        return lo, hi, t.frac

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        ishape, oshape = shape_of(self.input.type), shape_of(self.output.type)
        axis = self.axis.value.data
        if not 0 <= axis < len(ishape):
            raise VerifyException(f"{where}: axis {axis} out of range for rank {len(ishape)}")
        want = ishape[:axis] + (1,) + ishape[axis + 1:]
        if oshape != want:
            raise VerifyException(f"{where}: result shape {oshape} != {want} (the reduced axis is kept with size 1)")
        if ishape[axis] < 1:
            raise VerifyException(f"{where}: cannot reduce an empty axis")
        kind = self.kind.data
        if kind not in REDUCE_KINDS:
            raise VerifyException(f"{where}: kind {kind!r} is not one of {', '.join(REDUCE_KINDS)}")
        if kind == "max":
            _check_same_elem(where, self.input.type, self.output.type)
            return
        _check_bounds(where, out_t, *self.exact_bounds())


QIR = Dialect(
    "qir",
    [ModelOp, InputOp, OutputOp, DenseOp, ReluOp, QuantizeOp, CmvmOp, RegOp,
     ConvOp, PoolOp, ScaleOp, LeakyReluOp, AddOp, ConcatOp, ReshapeOp, TransposeOp, PadOp, LutOp,
     AdderGraphOp, MulOp, ReduceOp, XnorOp, ThresholdOp],
    [FixedType, UFixedType],
)

# Stream-level ops (--io stream) live in qir/stream_ops.py; registered here.
from qir.stream_ops import STREAM_OPS  # noqa: E402

QIR = Dialect("qir", [*QIR.operations, *STREAM_OPS], list(QIR.attributes))
