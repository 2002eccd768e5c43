"""The fixed-point types of the ``qir`` dialect and the helpers every op shares: constants as
numpy arrays, exact bounds and their one checker, window geometry, custom syntax directives."""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import IRDLOperation, base, irdl_attr_definition
from xdsl.irdl.declarative_assembly_format import AttributeVariable, CustomDirective, irdl_custom_directive
from xdsl.rewriter import Rewriter
from xdsl.traits import OpTrait
from xdsl.utils.exceptions import VerifyException

from qir.errors import QirError
from qir.fixed import MAX_WIDTH, Fixed


# ------------------------------------------------------------------------------------ traits
class Elementwise(OpTrait):
    """Each output element depends on the same input element alone (per-channel constants at
    most): value-set analyses may run a chain of such ops on enumerated codes
    (``qir.lowering.value_sets``)."""


class LayerStage(OpTrait):
    """A constant-matrix layer: ``qir-pipeline`` (default mode) gives it a stage of its own."""


def tree_levels(n_inputs: int) -> int:
    """Adder levels of a balanced sum of ``n_inputs`` products, plus one for the products."""
    return max((max(n_inputs, 1) - 1).bit_length(), 1) + 1


class ExactResult:
    """Mixin of the ops whose result type is derived exactly (the arithmetic ops never round or
    overflow): ``exact_bounds()`` is the op's fact, the verifier checks the result type against it
    (``_check_bounds``, the one checker), ``exact_spec()`` is the narrowest type holding it
    (``qir-infer-widths``), and ``exact()`` builds the op with that type."""

    def exact_bounds(self) -> tuple[int, int, int]:
        """(lo, hi, frac): bounds of every possible result mantissa on the grid 2^-frac."""
        raise NotImplementedError

    def exact_spec(self) -> Fixed:
        """The narrowest type that holds every result exactly."""
        return Fixed.for_range(*self.exact_bounds())

    @classmethod
    def exact(cls, operands, properties: dict, shape=None):
        """The op on ``operands`` with ``properties`` and its result type inferred (the
        narrowest exact one, of ``shape``; default: the first operand's shape), as xDSL's
        ``arith`` builders infer theirs."""
        operands = list(operands)
        shape = shape_of(operands[0].type) if shape is None else tuple(shape)
        op = cls.create(operands=operands, result_types=[tensor_of(Fixed(62, 31), shape)], properties=properties)
        Rewriter.replace_value_with_new_type(op.results[0], tensor_of(op.exact_spec(), shape))
        return op


class MaxKeepsType(ExactResult):
    """``ExactResult`` of an op with a ``kind`` (``qir.pool``, ``qir.reduce``): ``max`` picks one of
    its inputs, so it keeps the input type; the other kinds get the narrowest exact type."""

    def exact_spec(self) -> Fixed:
        if self.kind.data == "max":
            return elem(self.input.type)
        return Fixed.for_range(*self.exact_bounds())


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
            # the bytes xDSL's from_list packs (little-endian two's complement), straight from
            # numpy: from_list normalizes every value in Python (a 16384 x 128 layer took ~20 s)
            raw = arr.astype(np.int64).astype(f"<i{bits // 8}").tobytes() if arr.size else b""
            return DenseIntOrFPElementsAttr(t, BytesAttr(raw))
    raise QirError("a constant needs more than 64 bits; such weights are not supported")


def elements_to_numpy(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The integers of a dense literal as an int64 array of its shape (cached per attribute)."""
    cached = _NP_CACHE.get(id(attr))
    if cached is not None and cached[0] is attr:
        _NP_CACHE.move_to_end(id(attr))
        return cached[1]
    et = attr.get_element_type()
    if not isinstance(et, IntegerType) or et.width.data not in (8, 16, 32, 64):
        raise VerifyException(f"expected an i8/i16/i32/i64 dense literal, got {et}")
    dt = np.dtype(f"<i{et.width.data // 8}")
    raw = np.frombuffer(attr.data.data, dtype=dt).astype(np.int64)
    shape = attr.get_shape()
    arr = np.broadcast_to(raw, shape).copy() if raw.size == 1 else raw.reshape(shape)
    arr.setflags(write=False)
    _NP_CACHE[id(attr)] = (attr, arr)  # the entry holds attr, so its id is not reused while cached
    if len(_NP_CACHE) > _NP_CACHE_SIZE:
        _NP_CACHE.popitem(last=False)
    return arr


#: id(attr) -> (attr, array), least recently used first; bounded so that weights of models that
#: are gone do not stay alive (attributes hash by value, which would be slow for big literals)
_NP_CACHE: OrderedDict[int, tuple[DenseIntOrFPElementsAttr, np.ndarray]] = OrderedDict()
_NP_CACHE_SIZE = 512


def _check_in_type(values: np.ndarray, t: Fixed, what: str) -> None:
    if values.size and (values.min() < t.min_int or values.max() > t.max_int):
        raise VerifyException(
            f"{what}: mantissas [{values.min()}, {values.max()}] do not fit {t} "
            f"[{t.min_int}, {t.max_int}]"
        )


def _check_reuse(op: IRDLOperation) -> None:
    """A layer op's optional ``reuse = R : i64`` attribute (issue #12, ``qir.folding``): an integer
    R >= 1 (absent = 1)."""
    a = op.attributes.get("reuse")
    if a is None:
        return
    v = getattr(getattr(a, "value", None), "data", None)
    if not isinstance(a, IntegerAttr) or isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise VerifyException(f"{_layer(op)}: reuse must be an integer >= 1 (write reuse = 4 : i64), got {a}")


def _layer(op: IRDLOperation) -> str:
    a = op.attributes.get("layer")
    return f"layer '{a.data}'" if isinstance(a, StringAttr) else f"'{op.name}'"


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


def _check_1d(op: IRDLOperation, where: str) -> None:
    """A vector op (``input`` and result 1-D tensors)."""
    if len(shape_of(op.input.type)) != 1 or len(shape_of(op.output.type)) != 1:
        raise VerifyException(f"{where}: {op.name} takes and returns 1-D tensors")


def _check_vector(op: IRDLOperation, where: str) -> tuple[Fixed, Fixed, int, int]:
    """A vector op: fixed-point input and result, both 1-D (``_check_1d``); returns (input type,
    result type, n_in, n_out)."""
    in_t = elem(op.input.type, f"{where} input")
    out_t = elem(op.output.type, f"{where} result")
    _check_1d(op, where)
    (n_in,), (n_out,) = shape_of(op.input.type), shape_of(op.output.type)
    return in_t, out_t, n_in, n_out


def _check_per_channel(op: IRDLOperation, where: str) -> tuple[Fixed, Fixed, tuple[int, ...]]:
    """A per-channel elementwise op (``qir.threshold``, ``qir.scale``, ``qir.leaky_relu``):
    fixed-point input and result of one non-scalar shape; returns (input type, result type,
    shape)."""
    in_t = elem(op.input.type, f"{where} input")
    out_t = elem(op.output.type, f"{where} result")
    ishape = shape_of(op.input.type)
    if not ishape or ishape != shape_of(op.output.type):
        raise VerifyException(f"{where}: {op.name} must keep the (non-scalar) shape")
    return in_t, out_t, ishape


def _check_shifted_result(op: IRDLOperation, where: str, in_t: Fixed, out_t: Fixed) -> None:
    """The result of a constant product (``shift`` property: result frac = input frac + shift)
    is on exactly that grid and holds ``op.exact_bounds()``."""
    frac = in_t.frac + op.shift.value.data
    if out_t.frac != frac:
        raise VerifyException(f"{where}: result must have exactly {frac} fractional bits, has {out_t.frac}")
    _check_bounds(where, out_t, *op.exact_bounds())


def matrix_exact_bounds(op: IRDLOperation, matrix: np.ndarray) -> tuple[int, int, int]:
    """``ExactResult.exact_bounds`` of ``x @ matrix + offset`` (the op's ``offset`` and ``shift``
    properties), x anywhere in the input type's range: (lo, hi, frac) over every output."""
    in_t = elem(op.input.type)
    lo, hi = dense_bounds(in_t, matrix, elements_to_numpy(op.offset))
    return int(min(lo, default=0)), int(max(hi, default=0)), in_t.frac + op.shift.value.data


#: op -> ((attributes the graph was built from), graph) of ``cached_graph``; weak, so erased ops and
#: their weights go
_GRAPH_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_graph(op: IRDLOperation, key: tuple, build):
    """The op's decoded graph (``qir.addergraph``, ``qir.muxgraph``, ``qir.digitserial``):
    ``build()`` once, again only when an attribute of ``key`` is no longer the same object."""
    hit = _GRAPH_CACHE.get(op)
    if hit is not None and all(a is b for a, b in zip(hit[0], key)):
        return hit[1]
    value = build()
    _GRAPH_CACHE[op] = (key, value)
    return value


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


def window_taps(geometry, strides, dilations, pads, out_sp):
    """For every output position (row-major) and kernel tap (row-major): the input spatial index,
    or None when the tap lies in the padding.  Yields (position, tap, input index)."""
    n = len(out_sp)
    masks = [mask for _, mask in geometry]
    for p in itertools.product(*map(range, out_sp)):
        for t in itertools.product(*(range(m.shape[1]) for m in masks)):
            if all(masks[d][p[d], t[d]] for d in range(n)):
                yield p, t, tuple(p[d] * strides[d] - pads[d] + t[d] * dilations[d] for d in range(n))


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




def dense_bounds(in_t: Fixed, w: np.ndarray, offset: np.ndarray, in_lo=None, in_hi=None):
    """Exact per-output mantissa bounds of ``x @ w + offset`` for x in the input type's range
    (or the per-element interval [in_lo, in_hi] when given)."""
    n_in = w.shape[0]
    lo = np.full(n_in, in_t.min_int, dtype=object) if in_lo is None else np.asarray(in_lo, dtype=object)
    hi = np.full(n_in, in_t.max_int, dtype=object) if in_hi is None else np.asarray(in_hi, dtype=object)
    big = max([abs(int(v)) for v in (lo.min(), lo.max(), hi.min(), hi.max())] if n_in else [0])
    wmax = int(np.abs(w.astype(object)).max()) if w.size else 0
    if big < 1 << 62 and big * wmax * max(n_in, 1) < 1 << 62 and w.size:  # exact in int64 (multi-million-weight layers)
        w64 = w.astype(np.int64)
        a, b = lo.astype(np.int64)[:, None] * w64, hi.astype(np.int64)[:, None] * w64
        return (np.minimum(a, b).sum(axis=0).astype(object) + offset.astype(object),
                np.maximum(a, b).sum(axis=0).astype(object) + offset.astype(object))
    wo = w.astype(object)
    a, b = lo[:, None] * wo, hi[:, None] * wo
    out_lo = np.minimum(a, b).sum(axis=0) + offset.astype(object)
    out_hi = np.maximum(a, b).sum(axis=0) + offset.astype(object)
    return out_lo, out_hi
