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

Dataflow ops (what lowering/ produces and rtl/ consumes):
  ``qir.cmvm``      constant-matrix times vector on integer mantissas plus a constant offset,
                    with an implementation ``style`` (mac, ...); result type is exact
  ``qir.reg``       a pipeline register (one clock cycle), with its ``stage`` number

Semantics are defined by the numpy reference interpreter in ``qir.sim.interpreter``.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolNameConstraint,
    TensorType,
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
    return TensorType(fixed_type(spec), list(shape))


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


# ---------------------------------------------------------------------------- dataflow ops
CMVM_STYLES = ("mac",)


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


QIR = Dialect(
    "qir",
    [ModelOp, InputOp, OutputOp, DenseOp, ReluOp, QuantizeOp, CmvmOp, RegOp],
    [FixedType, UFixedType],
)
