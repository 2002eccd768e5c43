"""Steps: what Keras layers and quantizers translate into, and how each step becomes qir ops.

A layer handler returns a list of steps; the first step of a layer receives the layer's inputs
(several for Add/Concatenate), every later step the previous step's result.  Steps know their
output shape (checked while planning, before any IR exists) and build their ops once the input
types are known.  Constants are ``Param``: *exact* (dyadic values imported exactly: quantizer
outputs, powers of two) or *float* (real values that the precision configuration rounds to a
type; a step with float constants makes its layer's result cast to the configured result type).

Every op a step builds is exact (``qir.quantize`` is the only op that rounds or saturates), and
its result type is the narrowest one holding every possible result.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from qir.frontends.common import exact_fixed, int_array, same_pads, window_out
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64
from xdsl.ir import Operation, SSAValue

from qir.dialect import (
    LUT_MAX_INPUT_WIDTH,
    AddOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    LeakyReluOp,
    LutOp,
    PadOp,
    PoolOp,
    QuantizeOp,
    ReluOp,
    ReshapeOp,
    ScaleOp,
    StepsOp,
    TransposeOp,
    elem,
    fixed_type,
    int_elements,
    shape_of,
    tensor_of,
)
from qir.errors import QirError
from qir.exact import dense_result
from qir.fixed import Fixed
from qir.precision import quantize_float

Shape = tuple[int, ...]
Emit = Callable[[Operation], SSAValue]


# ------------------------------------------------------------------------------ exact constants
def is_dyadic(values, max_bits: int = 62) -> bool:
    """True when every value is a finite dyadic rational representable in ``max_bits`` bits."""
    try:
        return exact_fixed(values)[1].width <= max_bits
    except QirError:
        return False


@dataclass
class Param:
    """A layer constant: exact dyadic values, or float values typed by the precision."""

    values: np.ndarray  # float64
    exact: bool
    relative: bool = False  # float: keep the type's width, place the binary point for the range

    @staticmethod
    def of_exact(values) -> Param:
        return Param(np.asarray(values, dtype=np.float64), True)

    @staticmethod
    def of_float(values) -> Param:
        return Param(np.asarray(values, dtype=np.float64), False)

    @staticmethod
    def best(values) -> Param:
        """Exact when the values are narrow powers-of-two-friendly dyadics (<= 32 bits), else float."""
        v = np.asarray(values, dtype=np.float64)
        try:
            t = exact_fixed(v)[1]
        except QirError:
            return Param(v, False)
        return Param(v, t.width <= 32)

    def map(self, fn) -> Param:
        return Param(np.asarray(fn(self.values), dtype=np.float64), self.exact, self.relative)

    def resolve(self, t: Fixed | None, what: str) -> tuple[np.ndarray, Fixed]:
        """(mantissas, type): exact, or rounded to nearest (ties to even) and saturated to ``t``."""
        if self.exact:
            return exact_fixed(self.values, what)
        if t is None:
            raise QirError(f"internal: float {what} without a type")
        if self.relative:
            amax = float(np.max(np.abs(self.values))) if self.values.size else 0.0
            t = Fixed(t.width, int(np.floor(np.log2(amax))) + 2 if amax > 0 else 1)
        return quantize_float(self.values, t), t


# ------------------------------------------------------------------------------ step base
class Step:
    """One unit of translation.  ``arity`` inputs (None: any number >= 2)."""

    arity: int | None = 1

    def out_shape(self, shapes: list[Shape]) -> Shape:
        return shapes[0]

    def params(self) -> dict[str, Param]:
        """Float-or-exact constants by role ('weight' or 'bias' precision key)."""
        return {}

    def build(self, xs: list[SSAValue], emit: Emit, types: dict[str, Fixed]) -> SSAValue:
        raise NotImplementedError


def exact_op(cls, operands: list[SSAValue], props: dict, out_shape: Shape, emit: Emit) -> SSAValue:
    """An exact op with the narrowest result type holding every result."""
    return emit(cls.exact(operands, props, out_shape))


def _const_props(prefix: str, mant: np.ndarray, t: Fixed, type_key: str | None = None) -> dict:
    return {prefix: int_elements(mant), type_key or f"{prefix}_type": fixed_type(t)}


# ------------------------------------------------------------------------------ elementwise steps
@dataclass(frozen=True)
class Relu(Step):
    """max(x, 0) on the current type (``qir.relu``)."""

    def build(self, xs, emit, types):
        return emit(ReluOp.create(operands=[xs[0]], result_types=[xs[0].type]))


@dataclass(frozen=True)
class Quantize(Step):
    """Re-grid to ``type`` (``qir.quantize``)."""

    type: Fixed
    rounding: str
    overflow: str

    def build(self, xs, emit, types):
        x = xs[0]
        return emit(QuantizeOp(x, tensor_of(self.type, shape_of(x.type)), self.rounding, self.overflow))


@dataclass(frozen=True)
class Softmax(Step):
    """A softmax; never built (the importer strips a final one or rejects it)."""

    def build(self, xs, emit, types):
        raise QirError("internal: softmax reached the IR builder")


@dataclass(frozen=True)
class SoftmaxTable(Step):
    """A final softmax as the table approximation of ``qir.frontends.softmax`` (``index_type``:
    the exp table's index, ``result_type``: the result; None = the defaults there)."""

    index_type: Fixed | None = None
    result_type: Fixed | None = None

    def build(self, xs, emit, types):
        from qir.frontends.softmax import build_softmax_table

        return build_softmax_table(xs[0], emit, self.index_type, self.result_type)


def scale_shift(x: SSAValue, scale, bias, emit: Emit) -> SSAValue:
    """y = x * scale + bias with exact dyadic scalars or per-channel arrays (``qir.scale``)."""
    props = {}
    if scale is not None:
        m, t = exact_fixed(np.atleast_1d(np.asarray(scale, dtype=np.float64)), "scale")
        props |= _const_props("scale", m, t)
    if bias is not None:
        m, t = exact_fixed(np.atleast_1d(np.asarray(bias, dtype=np.float64)), "shift")
        props |= _const_props("bias", m, t)
    return exact_op(ScaleOp, [x], props, shape_of(x.type), emit)


def clip(x: SSAValue, lo: float | None, hi: float | None, emit: Emit) -> SSAValue:
    """min(max(x, lo), hi) exactly: lo + relu(x - lo), then hi - relu(hi - x); the result keeps
    x's grid and has the narrowest type for [lo, hi]."""
    t = elem(x.type)
    if lo is not None and hi is not None and lo > hi:
        raise QirError(f"internal: empty clip range [{lo}, {hi}]")
    if lo is not None and lo > t.to_real(t.min_int):
        x = scale_shift(x, None, -lo, emit)
        x = emit(ReluOp.create(operands=[x], result_types=[x.type]))
        x = scale_shift(x, None, lo, emit)
    if hi is not None and hi < t.to_real(t.max_int):
        x = scale_shift(x, -1.0, hi, emit)
        x = emit(ReluOp.create(operands=[x], result_types=[x.type]))
        x = scale_shift(x, -1.0, hi, emit)
    return narrow(x, lo if lo is not None else t.to_real(t.min_int),
                  hi if hi is not None else t.to_real(t.max_int), emit)


def narrow(x: SSAValue, lo: float, hi: float, emit: Emit) -> SSAValue:
    """Re-type x (known to lie in [lo, hi] on its grid) to the narrowest type (a no-op quantize)."""
    t = elem(x.type)
    frac = t.frac
    want = Fixed.for_range(int(np.floor(np.ldexp(lo, frac))), int(np.ceil(np.ldexp(hi, frac))), frac)
    if want == t:
        return x
    return emit(QuantizeOp(x, tensor_of(want, shape_of(x.type)), "trn", "sat"))


@dataclass(frozen=True)
class Clip(Step):
    """min(max(x, lo), hi) with bounds on the input grid (None: unbounded)."""

    lo: float | None
    hi: float | None

    def build(self, xs, emit, types):
        return clip(xs[0], self.lo, self.hi, emit)


@dataclass(frozen=True)
class Affine(Step):
    """y = x * scale + bias with exact dyadic scalars (hard sigmoid, alpha scaling)."""

    scale: float | None
    bias: float | None

    def build(self, xs, emit, types):
        return scale_shift(xs[0], self.scale, self.bias, emit)


def step_ge(x: SSAValue, code: int, negate: bool, emit: Emit) -> SSAValue:
    """[n >= code] (or [-n >= code]) as ufixed<1,1> in {0, 1}, n the mantissa of x:
    2*(+-n - code) + 1 is odd, so saturating it to {0, 1} decides the comparison."""
    t = elem(x.type)
    s = np.ldexp(2.0, t.frac) * (-1.0 if negate else 1.0)
    v = scale_shift(x, s, 1.0 - 2.0 * code, emit)
    return emit(QuantizeOp(v, tensor_of(Fixed(1, 1, False), shape_of(x.type)), "trn", "sat"))


@dataclass(frozen=True)
class Sign(Step):
    """x >= 0 ? 1 : -1 (``zero`` = 0 maps to the low value 0 instead of -1 when ``use_01``)."""

    use_01: bool = False

    def build(self, xs, emit, types):
        x = xs[0]
        t = elem(x.type)
        if self.use_01:
            return step_ge(x, 0, False, emit)
        v = scale_shift(x, np.ldexp(2.0, t.frac), 1.0, emit)  # 2n + 1: never 0
        return emit(QuantizeOp(v, tensor_of(Fixed(2, 2, True), shape_of(x.type)), "trn", "sat_sym"))


@dataclass(frozen=True)
class Positive(Step):
    """[x > 0] in {0, 1} (ufixed<1,1>)."""

    def build(self, xs, emit, types):
        return step_ge(xs[0], 1, False, emit)


@dataclass(frozen=True)
class Ternary(Step):
    """sign(x) * [|x| >= threshold] in {-1, 0, 1} (threshold >= 0, compared exactly)."""

    threshold: float

    def build(self, xs, emit, types):
        x = xs[0]
        t = elem(x.type)
        if self.threshold < 0:
            raise QirError(f"ternary threshold {self.threshold} is negative; use a threshold >= 0")
        code = max(int(np.ceil(np.ldexp(self.threshold, t.frac))), 1)  # |n| >= code; sign(0) = 0
        pos = step_ge(x, code, False, emit)
        neg = step_ge(x, code, True, emit)
        neg = scale_shift(neg, -1.0, None, emit)
        return exact_op(AddOp, [pos, neg], {}, shape_of(x.type), emit)


@dataclass(frozen=True)
class LeakyRelu(Step):
    """x >= 0 ? x : alpha * x, alpha a Param (per channel or scalar)."""

    alpha: Param

    def params(self):
        return {"weight": self.alpha}

    def build(self, xs, emit, types):
        m, t = self.alpha.resolve(types.get("weight"), "leaky relu slope")
        props = _const_props("alpha", np.atleast_1d(m), t)
        return exact_op(LeakyReluOp, [xs[0]], props, shape_of(xs[0].type), emit)


@dataclass(frozen=True)
class Table(Step):
    """An elementwise function as a table (``qir.lut``) on the input codes.

    ``fn`` maps real input values (float64) to real outputs.  With ``out_type`` None the outputs
    must be narrow dyadics (exact table); otherwise they are rounded to nearest (ties to even)
    and saturated to ``out_type``.  ``in_type`` (optional) first rounds (rnd_conv) and saturates
    the input to that type (the table's index); else the input must be at most 16 bits wide."""

    name: str
    fn: Callable = field(compare=False)
    in_type: Fixed | None = None
    out_type: Fixed | None = None
    monotone: bool = False  # fn is non-decreasing: a wide input becomes a qir.steps compare chain

    def build(self, xs, emit, types):
        x = xs[0]
        if self.in_type is not None:
            x = emit(QuantizeOp(x, tensor_of(self.in_type, shape_of(x.type)), "rnd_conv", "sat"))
        in_t = elem(x.type)
        if in_t.width > LUT_MAX_INPUT_WIDTH and self.monotone:
            return self._steps(x, in_t, emit)
        if in_t.width > LUT_MAX_INPUT_WIDTH:
            raise QirError(f"{self.name} is computed by a table indexed by its input, but the input "
                           f"type {in_t} is wider than {LUT_MAX_INPUT_WIDTH} bits; quantize the input "
                           "first (a QActivation before it)")
        codes = np.arange(in_t.min_int, in_t.max_int + 1, dtype=np.int64)
        y = np.asarray(self.fn(in_t.to_real(codes)), dtype=np.float64)
        if self.out_type is None:
            mant, out_t = exact_fixed(y, f"{self.name} table")
            if out_t.width > 32:
                raise QirError(f"{self.name} results are not on a narrow fixed-point grid "
                               f"(need {out_t.width} bits)")
        else:
            mant, out_t = quantize_float(y, self.out_type), self.out_type
        return emit(LutOp.create(operands=[x], result_types=[tensor_of(out_t, shape_of(x.type))],
                                 properties={"table": int_elements(mant)}))

    def _steps(self, x, in_t: Fixed, emit):
        """The non-decreasing function on every code of a wide ``in_t`` as its change points
        (bisection over the codes: exact for a monotone step function) -> ``qir.steps``."""
        def f(code: int) -> float:
            return float(np.asarray(self.fn(in_t.to_real(np.array([code], dtype=np.int64))), dtype=np.float64)[0])

        lo, hi = in_t.min_int, in_t.max_int
        points, stack = [], [(lo, f(lo), hi, f(hi))]
        while stack:
            a, fa, b, fb = stack.pop()
            if fa == fb:
                continue
            if len(points) > MAX_STEPS:
                raise QirError(f"{self.name} on the {in_t} input has more than {MAX_STEPS} steps; quantize "
                               "the input first (a QActivation before it)")
            if b == a + 1:
                points.append(b)
                continue
            m = (a + b) // 2
            fm = f(m)
            stack += [(a, fa, m, fm), (m, fm, b, fb)]
        points = sorted(points) or [hi]  # a constant: one threshold that changes nothing
        y = np.array([f(lo)] + [f(c) for c in points], dtype=np.float64)
        if np.any(np.diff(y) < 0):
            raise QirError(f"{self.name} is not monotone on its {in_t} input; quantize the input first")
        if self.out_type is None:
            mant, out_t = exact_fixed(y, f"{self.name} steps")
        else:
            mant, out_t = quantize_float(y, self.out_type), self.out_type
        return emit(StepsOp.create(operands=[x], result_types=[tensor_of(out_t, shape_of(x.type))],
                                   properties={"thresholds": int_elements(np.array(points, dtype=np.int64)),
                                               "values": int_elements(mant)}))


#: most change points a ``qir.steps`` table may have (a quantizer's output codes)
MAX_STEPS = 1 << 12


# ------------------------------------------------------------------------------ affine layer steps
@dataclass
class DenseStep(Step):
    """y = x @ W + b on the last axis (rank > 1 inputs: a 1x..x1 convolution)."""

    kernel: Param  # (n_in, n_out)
    bias: Param | None = None

    def params(self):
        return {"weight": self.kernel} | ({"bias": self.bias} if self.bias is not None else {})

    def out_shape(self, shapes):
        (shape,) = shapes
        n_in, n_out = self.kernel.values.shape
        if not shape or shape[-1] != n_in:
            raise QirError(f"the kernel expects {n_in} input features but the layer receives shape {shape}")
        return shape[:-1] + (n_out,)

    def build(self, xs, emit, types):
        x = xs[0]
        w, wt = self.kernel.resolve(types.get("weight"), "weights")
        props = _const_props("weights", w, wt, "weight_type")
        if self.bias is not None:
            b, bt = self.bias.resolve(types.get("bias"), "bias")
            props |= _const_props("bias", b, bt)
        shape = shape_of(x.type)
        if len(shape) > 1:
            nsp = len(shape) - 1
            props["weights"] = int_elements(w.reshape((1,) * nsp + w.shape))
            props |= {"strides": int_array([1] * nsp), "dilations": int_array([1] * nsp),
                      "pads": int_array([0] * 2 * nsp),
                      "groups": IntegerAttr(1, i64)}
            return exact_op(ConvOp, [x], props, shape[:-1] + (w.shape[1],), emit)
        out_t, n_out = dense_result(x, props)
        return emit(DenseOp.create(operands=[x], result_types=[tensor_of(out_t, [n_out])],
                                   properties=props))


def window_pads(padding: str, spatial: Shape, window, strides, dilations) -> list[int]:
    """ONNX-order pads [begins..., ends...] for Keras padding 'valid' / 'same' / 'causal'."""
    n = len(spatial)
    if padding == "valid":
        return [0] * (2 * n)
    if padding == "same":
        pairs = [same_pads(spatial[i], window[i], strides[i], dilations[i]) for i in range(n)]
        return [p[0] for p in pairs] + [p[1] for p in pairs]
    if padding == "causal" and n == 1:
        return [(window[0] - 1) * dilations[0], 0]
    raise QirError(f"padding {padding!r} is not supported; use 'valid' or 'same'"
                   + (" or 'causal'" if n == 1 else ""))


@dataclass
class ConvStep(Step):
    """N-D convolution, channels last; kernel (k..., C_in/groups, C_out)."""

    kernel: Param
    bias: Param | None
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    padding: str  # Keras padding name
    groups: int = 1
    pads: list[int] = field(default_factory=list)

    def params(self):
        return {"weight": self.kernel} | ({"bias": self.bias} if self.bias is not None else {})

    def out_shape(self, shapes):
        (shape,) = shapes
        k = self.kernel.values.shape
        nsp = len(k) - 2
        if len(shape) != nsp + 1:
            raise QirError(f"a {nsp}-D convolution needs a (spatial x{nsp}, channels) input, got shape {shape}")
        if shape[-1] != k[-2] * self.groups:
            raise QirError(f"the kernel expects {k[-2] * self.groups} input channels but the layer "
                           f"receives shape {shape}")
        self.pads = window_pads(self.padding, shape[:-1], k[:-2], self.strides, self.dilations)
        return window_out(shape[:-1], k[:-2], self.strides, self.dilations, self.pads) + (k[-1],)

    def build(self, xs, emit, types):
        x = xs[0]
        w, wt = self.kernel.resolve(types.get("weight"), "weights")
        props = _const_props("weights", w, wt, "weight_type")
        if self.bias is not None:
            b, bt = self.bias.resolve(types.get("bias"), "bias")
            props |= _const_props("bias", b, bt)
        props |= {"strides": int_array(self.strides), "dilations": int_array(self.dilations),
                  "pads": int_array(self.pads),
                  "groups": IntegerAttr(self.groups, i64)}
        shape = shape_of(x.type)
        out = window_out(shape[:-1], w.shape[:-2], self.strides, self.dilations, self.pads) + (w.shape[-1],)
        return exact_op(ConvOp, [x], props, out, emit)


@dataclass
class ScaleStep(Step):
    """y = x * scale[c] + bias[c] on the last axis (scalars broadcast)."""

    scale: Param | None
    bias: Param | None

    def params(self):
        out = {}
        if self.scale is not None:
            out["weight"] = self.scale
        if self.bias is not None:
            out["bias"] = self.bias
        return out

    def out_shape(self, shapes):
        (shape,) = shapes
        for p in (self.scale, self.bias):
            if p is not None and p.values.size not in (1, shape[-1] if shape else 1):
                raise QirError(f"{p.values.size} per-channel constants do not match the input shape {shape}")
        return shape

    def build(self, xs, emit, types):
        props = {}
        if self.scale is not None:
            m, t = self.scale.resolve(types.get("weight"), "scale")
            props |= _const_props("scale", np.atleast_1d(m), t)
        if self.bias is not None:
            m, t = self.bias.resolve(types.get("bias"), "shift")
            props |= _const_props("bias", np.atleast_1d(m), t)
        return exact_op(ScaleOp, [xs[0]], props, shape_of(xs[0].type), emit)


@dataclass
class BatchNormStep(Step):
    """Keras (Q)BatchNormalization on the last axis: y = x * scale + shift, real-valued
    (folded into the preceding float Dense/Conv when possible, else a ``ScaleStep``)."""

    scale: Param
    shift: Param

    def params(self):
        return {"weight": self.scale, "bias": self.shift}

    def out_shape(self, shapes):
        (shape,) = shapes
        if not shape or self.scale.values.shape != (shape[-1],):
            raise QirError(f"{self.scale.values.size} channels of batch normalization do not match the "
                           f"input shape {shape}; only axis=-1 (channels last) is supported")
        return shape

    def as_scale(self) -> ScaleStep:
        return ScaleStep(self.scale, self.shift)


@dataclass
class PoolStep(Step):
    """Max or average pooling; ``multipliers`` (average): one per valid-element count k=1..A
    (count 'valid'), or one for every window (count 'window')."""

    kind: str
    window: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str
    multiplier: Callable[[int], Param] | None = None  # count k -> multiplier for that window size
    global_flatten: bool = False  # global pooling: drop the spatial axes afterwards
    pads: list[int] = field(default_factory=list)
    count: str = "window"
    mult: Param | None = None

    def params(self):
        return {"weight": self.mult} if self.mult is not None else {}

    def out_shape(self, shapes):
        (shape,) = shapes
        n = len(self.window)
        if len(shape) != n + 1:
            raise QirError(f"{n}-D pooling needs a (spatial x{n}, channels) input, got shape {shape}")
        ones = (1,) * n
        self.pads = window_pads(self.padding, shape[:-1], self.window, self.strides, ones)
        out = window_out(shape[:-1], self.window, self.strides, ones, self.pads)
        if self.kind == "avg":
            from qir.dialect import window_geometry

            geo = window_geometry(shape[:-1], self.window, self.strides, ones, self.pads)
            counts = np.ones((), dtype=np.int64)
            for _, mask in geo:
                counts = np.multiply.outer(counts, mask.sum(axis=1))
            used = sorted({int(c) for c in np.unique(counts)})
            area = int(np.prod(self.window))
            if used == [area]:
                self.count, self.mult = "window", self.multiplier(area).map(np.atleast_1d)
            else:
                ms = [self.multiplier(k) if k in used else Param.of_exact([0.0]) for k in range(1, area + 1)]
                vals = np.concatenate([np.atleast_1d(m.values) for m in ms])
                self.count, self.mult = "valid", Param(vals, all(m.exact for m in ms))
        if self.global_flatten:
            return (shape[-1],)
        return out + (shape[-1],)

    def build(self, xs, emit, types):
        x = xs[0]
        shape = shape_of(x.type)
        ones = (1,) * len(self.window)
        out = window_out(shape[:-1], self.window, self.strides, ones, self.pads) + (shape[-1],)
        props = {"kind": StringAttr(self.kind), "window": int_array(self.window), "strides": int_array(self.strides),
                 "pads": int_array(self.pads)}
        if self.kind == "max":
            v = emit(PoolOp.create(operands=[x], result_types=[tensor_of(elem(x.type), out)], properties=props))
        else:
            m, t = self.mult.resolve(types.get("weight"), "average multiplier")
            props |= {"count": StringAttr(self.count), "multiplier": int_elements(np.atleast_1d(m)),
                      "multiplier_type": fixed_type(t)}
            v = exact_op(PoolOp, [x], props, out, emit)
        if self.global_flatten:
            v = emit(ReshapeOp.create(operands=[v], result_types=[tensor_of(elem(v.type), (shape[-1],))]))
        return v


# ------------------------------------------------------------------------------ shape and merge steps
@dataclass
class ReshapeStep(Step):
    """Row-major reinterpretation (Flatten, Reshape); ``target`` may hold one -1."""

    target: tuple[int, ...]
    resolved: Shape = ()

    def out_shape(self, shapes):
        (shape,) = shapes
        total = int(np.prod(shape))
        tgt = list(self.target)
        if tgt.count(-1) > 1 or any(d == 0 or d < -1 for d in tgt):
            raise QirError(f"cannot reshape to {tuple(tgt)}")
        if -1 in tgt:
            known = int(np.prod([d for d in tgt if d != -1]))
            if known == 0 or total % known:
                raise QirError(f"cannot reshape {shape} to {tuple(tgt)}")
            tgt[tgt.index(-1)] = total // known
        if int(np.prod(tgt)) != total:
            raise QirError(f"cannot reshape {shape} ({total} elements) to {tuple(tgt)}")
        self.resolved = tuple(tgt)
        return self.resolved

    def build(self, xs, emit, types):
        x = xs[0]
        if shape_of(x.type) == self.resolved:
            return x
        return emit(ReshapeOp.create(operands=[x], result_types=[tensor_of(elem(x.type), self.resolved)]))


@dataclass
class TransposeStep(Step):
    perm: tuple[int, ...]

    def out_shape(self, shapes):
        (shape,) = shapes
        if sorted(self.perm) != list(range(len(shape))):
            raise QirError(f"permutation {self.perm} does not match the input shape {shape}")
        return tuple(shape[p] for p in self.perm)

    def build(self, xs, emit, types):
        x = xs[0]
        out = tuple(shape_of(x.type)[p] for p in self.perm)
        return emit(TransposeOp.create(operands=[x], result_types=[tensor_of(elem(x.type), out)],
                                       properties={"perm": int_array(self.perm)}))


@dataclass
class PadStep(Step):
    """Zero padding of the spatial axes: ``spatial`` = [(begin, end) per spatial axis]."""

    spatial: tuple[tuple[int, int], ...]

    def out_shape(self, shapes):
        (shape,) = shapes
        if len(shape) != len(self.spatial) + 1:
            raise QirError(f"{len(self.spatial)}-D zero padding needs a (spatial x{len(self.spatial)}, "
                           f"channels) input, got shape {shape}")
        return tuple(s + a + b for s, (a, b) in zip(shape, self.spatial)) + (shape[-1],)

    def build(self, xs, emit, types):
        x = xs[0]
        shape = shape_of(x.type)
        pads = [a for a, _ in self.spatial] + [0] + [b for _, b in self.spatial] + [0]
        return emit(PadOp.create(operands=[x], result_types=[tensor_of(elem(x.type), self.out_shape([shape]))],
                                 properties={"pads": int_array(pads)}))


@dataclass
class AddStep(Step):
    arity = None

    def out_shape(self, shapes):
        if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
            raise QirError(f"Add needs at least two inputs of one shape, got {shapes}")
        return shapes[0]

    def build(self, xs, emit, types):
        return exact_op(AddOp, list(xs), {}, shape_of(xs[0].type), emit)


@dataclass
class ConcatStep(Step):
    axis: int  # Keras axis (batched tensors; negative counts from the end)
    arity = None
    resolved: int = 0

    def out_shape(self, shapes):
        rank = len(shapes[0])
        ax = self.axis + rank + 1 if self.axis < 0 else self.axis
        if not 1 <= ax <= rank or any(len(s) != rank for s in shapes) or len(shapes) < 2:
            raise QirError(f"cannot concatenate shapes {shapes} on axis {self.axis}")
        ax -= 1
        for s in shapes:
            if s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:]:
                raise QirError(f"cannot concatenate shapes {shapes} on axis {self.axis}")
        self.resolved = ax
        return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]

    def build(self, xs, emit, types):
        shapes = [shape_of(x.type) for x in xs]
        out = self.out_shape(shapes)
        ts = [elem(x.type) for x in xs]
        frac = max(t.frac for t in ts)
        lo = min(t.min_int << (frac - t.frac) for t in ts)
        hi = max(t.max_int << (frac - t.frac) for t in ts)
        t = Fixed.for_range(lo, hi, frac)
        return emit(ConcatOp.create(operands=list(xs), result_types=[tensor_of(t, out)],
                                    properties={"axis": IntegerAttr(self.resolved, i64)}))
