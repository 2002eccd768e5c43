"""Layer-level spatial, element-wise, layout, product and reduction ops: ``qir.conv``,
``qir.pool``, ``qir.scale``, ``qir.leaky_relu``, ``qir.add``, ``qir.concat``, ``qir.reshape``,
``qir.transpose``, ``qir.pad``, ``qir.lut``, ``qir.mul``, ``qir.reduce``."""
from __future__ import annotations

import itertools

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerAttr, StringAttr, TensorType
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from qir.dialect.layer_ops import WeightedLayerOp
from qir.dialect.types import (
    _FIXED_T,
    _I64_ARRAY,
    BareInt,
    Elementwise,
    ExactResult,
    IntList,
    MaxKeepsType,
    _channel_const,
    _check_bounds,
    _check_in_type,
    _check_out_shape,
    _check_per_channel,
    _check_reuse,
    _check_same_elem,
    _check_window_params,
    _layer,
    elem,
    elements_to_numpy,
    fold_affine,
    int_values,
    shape_of,
    window_geometry,
)
from qir.fixed import Fixed


@irdl_op_definition
class ConvOp(WeightedLayerOp):
    """N-D convolution, channels last: y[p, o] = sum_{t, i} x[p*s - pb + t*d, g*Cg + i] *
    W[t, i, o] + b[o], with g = o // (C_out/groups), zero padding; exact result type;
    ``folded()``: weights (kernel..., C_in/groups, C_out) and bias on one integer grid."""

    name = "qir.conv"
    strides = prop_def(_I64_ARRAY)
    dilations = prop_def(_I64_ARRAY)
    pads = prop_def(_I64_ARRAY)
    groups = prop_def(IntegerAttr)
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
        _check_reuse(self)
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
        self._check_weights_bias(where, c_out)
        _check_bounds(where, out_t, *self.exact_bounds())


POOL_KINDS = ("max", "avg")
POOL_COUNTS = ("window", "valid")


@irdl_op_definition
class PoolOp(MaxKeepsType, IRDLOperation):
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
class ScaleOp(ExactResult, IRDLOperation):
    """y = x * scale[c] + bias[c] per channel (last axis; (1,) broadcasts), exact; either
    constant may be absent (scale 1, bias 0)."""

    name = "qir.scale"
    input = operand_def(TensorType)
    scale = opt_prop_def(DenseIntOrFPElementsAttr)
    scale_type = opt_prop_def(_FIXED_T)
    bias = opt_prop_def(DenseIntOrFPElementsAttr)
    bias_type = opt_prop_def(_FIXED_T)
    output = result_def(TensorType)
    traits = traits_def(Elementwise(), Pure())
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
        _, out_t, ishape = _check_per_channel(self, where)
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
class LeakyReluOp(ExactResult, IRDLOperation):
    """y = x if x >= 0 else alpha[c] * x per channel (last axis; (1,) broadcasts), exact."""

    name = "qir.leaky_relu"
    input = operand_def(TensorType)
    alpha = prop_def(DenseIntOrFPElementsAttr)
    alpha_type = prop_def(_FIXED_T)
    output = result_def(TensorType)
    traits = traits_def(Elementwise(), Pure())
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
        _, out_t, ishape = _check_per_channel(self, where)
        _channel_const(where, "alpha", self.alpha, self.alpha_type, ishape[-1])
        _check_bounds(where, out_t, *self.exact_bounds())


@irdl_op_definition
class AddOp(ExactResult, IRDLOperation):
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
class ConcatOp(ExactResult, IRDLOperation):
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


class _LayoutOp(IRDLOperation):
    """An op that only rearranges (or zero-pads) its input's elements: one tensor in, one out,
    the same element type; ``check_shapes`` states the op's own shape rule."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())

    def exact_spec(self) -> Fixed:
        """The input's element type (layout; zero padding fits every type)."""
        return elem(self.input.type)

    def check_shapes(self, where: str, a: tuple, b: tuple) -> None:
        raise NotImplementedError

    def verify_(self) -> None:
        where = _layer(self)
        _check_same_elem(where, self.input.type, self.output.type)
        self.check_shapes(where, shape_of(self.input.type), shape_of(self.output.type))


@irdl_op_definition
class ReshapeOp(_LayoutOp):
    """Reinterpret the elements in row-major (NHWC) order; same element type (Flatten)."""

    name = "qir.reshape"
    assembly_format = "$input attr-dict `:` type($input) `->` type($output)"

    def check_shapes(self, where: str, a: tuple, b: tuple) -> None:
        if int(np.prod(a)) != int(np.prod(b)):
            raise VerifyException(f"{where}: cannot reshape {a} ({int(np.prod(a))} elements) to {b} "
                                  f"({int(np.prod(b))} elements)")


@irdl_op_definition
class TransposeOp(_LayoutOp):
    """Permute the (unbatched) axes: result axis i is input axis perm[i]; same element type."""

    name = "qir.transpose"
    perm = prop_def(_I64_ARRAY)
    custom_directives = (IntList,)
    assembly_format = "$input `perm` custom<IntList>($perm) attr-dict `:` type($input) `->` type($output)"

    def check_shapes(self, where: str, a: tuple, b: tuple) -> None:
        perm = int_values(self.perm)
        if sorted(perm) != list(range(len(a))):
            raise VerifyException(f"{where}: perm {list(perm)} is not a permutation of 0..{len(a) - 1}")
        if tuple(a[p] for p in perm) != b:
            raise VerifyException(f"{where}: result shape {b} != {tuple(a[p] for p in perm)} (input permuted)")


@irdl_op_definition
class PadOp(_LayoutOp):
    """Zero padding of every (unbatched) axis; pads = [begin_0, .., begin_n-1, end_0, .., end_n-1]."""

    name = "qir.pad"
    pads = prop_def(_I64_ARRAY)
    custom_directives = (IntList,)
    assembly_format = "$input `pads` custom<IntList>($pads) attr-dict `:` type($input) `->` type($output)"

    def check_shapes(self, where: str, a: tuple, b: tuple) -> None:
        pads = int_values(self.pads)
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
    traits = traits_def(Elementwise(), Pure())
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


@irdl_op_definition
class StepsOp(IRDLOperation):
    """y = values[#{k : x >= thresholds[k]}] on mantissas: a monotone elementwise step function
    given by its ascending input thresholds (mantissas of the input type) and its K + 1 result
    mantissas (FINN's MultiThreshold).  The frontend writes it for a table whose input is too wide
    to index (``qir.lut``), e.g. ``quantized_relu_po2`` on an accumulator."""

    name = "qir.steps"
    input = operand_def(TensorType)
    thresholds = prop_def(DenseIntOrFPElementsAttr)
    values = prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Elementwise(), Pure())
    assembly_format = ("$input `thresholds` `(` $thresholds `)` `values` `(` $values `)` attr-dict `:` "
                       "type($input) `->` type($output)")

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        if shape_of(self.input.type) != shape_of(self.output.type):
            raise VerifyException(f"{where}: qir.steps must keep the shape")
        t, v = elements_to_numpy(self.thresholds), elements_to_numpy(self.values)
        if t.ndim != 1 or v.shape != (t.size + 1,):
            raise VerifyException(f"{where}: qir.steps needs K thresholds and K + 1 values, got {t.shape} / {v.shape}")
        if t.size and (np.any(np.diff(t) <= 0) or t[0] <= in_t.min_int or t[-1] > in_t.max_int):
            raise VerifyException(f"{where}: thresholds must ascend strictly within ({in_t.min_int}, "
                                  f"{in_t.max_int}] (input mantissas of {in_t})")
        _check_in_type(v, out_t, f"{where} values")


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
class MulOp(ExactResult, IRDLOperation):
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
class ReduceOp(MaxKeepsType, IRDLOperation):
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


#: the ops of this module, registered with the dialect (qir.dialect.QIR)
OPS = (ConvOp, PoolOp, ScaleOp, LeakyReluOp, AddOp, ConcatOp, ReshapeOp, TransposeOp, PadOp, LutOp, MulOp, ReduceOp,
       StepsOp)
