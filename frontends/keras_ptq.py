"""Keras 3 post-training-quantized Dense layers (``model.quantize('int8' | 'int4')``).

What the files hold (docs/quantizer_semantics.md §4): an int8 kernel q with a per-output-unit ``kernel_scale`` ks
(W ~ q / ks), or an int4 kernel packed two per byte (Keras >= 3.14: along the output axis; <= 3.13:
along the input axis) with either per-unit symmetric scales (W ~ q / ks) or per-block asymmetric
scales and zero points (W ~ (q - zp) * scale, blocks of input rows given by g_idx).  By default
int8 (and int4 before Keras 3.14) quantizes the *activations* dynamically per row (AbsMaxQuantizer):
a runtime max-reduction and division with no static fixed-point equivalent, rejected unless
``ptq='weight-only'``.

Weight-only lowering (the default for files without an activation quantizer, the opt-in otherwise):
the integer weights multiply the input on its static fixed-point type exactly (``qir.dense``), then
one ``qir.scale`` applies the per-unit factor 1/ks and the bias.  The factor is real: it is rounded
to nearest with the layer's ``weight`` type width, its binary point placed so that the largest factor
fits; the bias is rounded to the ``bias`` type and the result cast to ``result`` (qir.precision).
Per-block int4 kernels are dequantized as Keras does ((q - zp) * scale in float32) and typed as float
weights.

Literal emulation (``ptq='emulate'``, int8 with dynamic activations): ``DynamicInt8Dense`` below
computes Keras's per-row xq = clip(rne(x * 127/(max|x| + 1e-7)), -127, 127) with a max-abs
reduction, a table of Keras's float32 scales and an exact product, multiplies by the int8 kernel
exactly and divides by sx with a second table; the 1/ks factor and the bias are then typed by the
precision as in weight-only mode.  Not bit-exact to float32 Keras: xq can differ by one where
x * sx lies within a float32 rounding of a half-integer, and the rescale is rounded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qir.frontends.keras_graph import KerasLayer
from qir.frontends.keras_steps import DenseStep, Param, ScaleStep, Step, exact_fixed
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

from qir.dialect import LutOp, MulOp, QuantizeOp, ReduceOp, elem, int_elements, shape_of, tensor_of
from qir.errors import QirError
from qir.exact import build_exact
from qir.fixed import Fixed
from qir.precision import quantize_float

DYNAMIC_ERROR = (
    "Keras {mode} PTQ quantizes activations dynamically per row (AbsMaxQuantizer). This needs a runtime "
    "max-reduction and a division, so it has no static fixed-point equivalent. Re-quantize with "
    "`{config}(activation_quantizer=None)` and give an input fixed-point type, or choose an opt-in below: "
    "ptq='weight-only' (import_keras(..., ptq='weight-only')) lowers the integer weights on the static "
    "input type and rounds the per-channel rescale to the configured precision (not bit-exact to Keras); "
    "ptq='emulate' (int8) emulates the per-row quantization literally with max-abs and reciprocal tables")


def _version(v: str | None) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in str(v).split(".")[:2])
        return major, minor
    except (ValueError, TypeError):
        return (3, 99)  # unknown: assume the current layout


def _dynamic(cfg: dict, mode: str, version: str | None) -> bool:
    qc = cfg.get("quantization_config")
    if isinstance(qc, dict):
        return (qc.get("config") or {}).get("activation_quantizer") is not None
    return mode == "int8" or _version(version) < (3, 14)


def unpack_int4(packed: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Two signed nibbles per int8 along ``axis`` (low nibble = even index) -> int values."""
    b = np.moveaxis(np.asarray(packed).astype(np.int64) & 0xFF, axis, -1)
    lo, hi = ((b & 0xF) ^ 8) - 8, (((b >> 4) & 0xF) ^ 8) - 8
    out = np.stack([lo, hi], axis=-1).reshape(b.shape[:-1] + (2 * b.shape[-1],))[..., :length]
    return np.moveaxis(out, -1, axis)


def ptq_dense(layer: KerasLayer, ctx, mode: str) -> list:
    cfg = layer.config
    if mode not in ("int8", "int4"):
        raise QirError(f"Keras quantization mode {mode!r} is not supported; supported: int8 and int4 "
                       "(float8, gptq and awq are not)")
    dynamic = _dynamic(cfg, mode, ctx.keras_version)
    if dynamic and ctx.ptq == "emulate" and mode != "int8":
        raise QirError("ptq='emulate' supports int8 Dense layers only (this layer is int4 with dynamic "
                       "activations); use ptq='weight-only'")
    if dynamic and ctx.ptq not in ("weight-only", "emulate"):
        config = "Int8QuantizationConfig" if mode == "int8" else "Int4QuantizationConfig"
        raise QirError(DYNAMIC_ERROR.format(mode=mode, config=config))
    units = cfg.get("units")
    n_in = ctx.in_shape[-1]
    v = ctx.variables(layer)
    use_bias = cfg.get("use_bias", True)
    i = 1
    kernel = v.get("kernel", 0)
    if kernel.dtype.kind not in "iu":
        raise QirError(f"the {mode} kernel has dtype {kernel.dtype}, expected int8")
    bias = None
    if use_bias:
        bias, i = v.floats("bias", 1), 2
    scale = v.floats("kernel_scale", i)
    if mode == "int4":
        if _version(ctx.keras_version) >= (3, 14):
            q = unpack_int4(kernel, units, -1)
        else:
            q = unpack_int4(kernel, n_in, 0)
    else:
        q = kernel.astype(np.int64)
    if q.shape != (n_in, units):
        raise QirError(f"the {mode} kernel unpacks to {q.shape}, not ({n_in}, {units}); the weights do not "
                       "belong to this model")
    if scale.ndim == 2:  # int4 per block: W = (q - zp) * scale[g_idx]
        zero = v.get("kernel_zero", i + 1).astype(np.float32)
        g_idx = v.floats("g_idx", i + 2).astype(np.int64)
        if g_idx.shape != (n_in,) or g_idx.min() < 0 or g_idx.max() >= scale.shape[0]:
            raise QirError("the int4 block indices (g_idx) do not match the kernel")
        w = ((q.astype(np.float32) - zero[g_idx]) * scale[g_idx]).astype(np.float32)
        return [DenseStep(Param.of_float(w), Param.of_float(bias) if bias is not None else None)]
    if scale.shape != (units,):
        raise QirError(f"kernel_scale shape {scale.shape} does not match {units} units")
    inv = 1.0 / scale.astype(np.float64)
    if dynamic and ctx.ptq == "emulate":
        return [DynamicInt8Dense(q),
                ScaleStep(Param(inv, False, relative=True), Param.of_float(bias) if bias is not None else None)]
    return [DenseStep(Param.of_exact(q.astype(np.float64)), None),
            ScaleStep(Param(inv, False, relative=True), Param.of_float(bias) if bias is not None else None)]


# ------------------------------------------------------------------ ptq='emulate' (literal emulation)
#: widest index of the activation-scale tables: the row max |x| is rounded (rnd_conv) to this many
#: bits when its exact type is wider (the scale is then approximate)
EMULATE_INDEX_BITS = 16
#: significant bits of the smallest nonzero 1/sx table entry, and fractional bits kept of acc / sx
EMULATE_RESCALE_BITS = 24


@dataclass(frozen=True)
class DynamicInt8Dense(Step):
    """Keras 3 int8 Dense with its dynamic per-row activation quantization, emulated literally
    (``ptq='emulate'``); result = (xq @ q) / sx, then a ``ScaleStep`` applies 1/ks and the bias.

    ``a = qir.reduce x kind "maxabs"`` over the last axis (exact; rounded to
    ``EMULATE_INDEX_BITS`` bits if wider); ``sx = qir.lut a``: Keras's float32
    ``127 / (a + 1e-7)``, every entry exactly (entry 0 is 0: x is all zero there);
    ``xq = qir.quantize (qir.mul x, sx)`` with ``rnd_conv`` (round half to even) and ``sat_sym``
    ([-127, 127]); ``acc = qir.dense xq`` with the int8 kernel (exact); ``z = qir.mul acc,
    qir.lut a`` with entries 1/sx rounded to ``EMULATE_RESCALE_BITS`` significant bits, rounded
    to ``EMULATE_RESCALE_BITS`` fractional bits.  The product x * sx is exact here, while Keras
    rounds it to float32 before rounding to an integer, so xq can differ by one where x * sx lies
    within a float32 ulp of a half-integer (and wherever the max had to be rounded).  Measured
    (tests/test_ptq_emulate.py): docs/quantizer_semantics.md §5.3: Dense on 2003 fixed<16,3> rows, every xq equal
    and max |y - Keras| 4.1e-6 with a fixed<24,6> precision; a 16-12-4 model on 1000 fixed<10,2>
    rows, 4 of 16000 first-layer codes differ, all at x = max|x|/2 (x * 127/max = 63.5 exactly:
    float32 rounds the product onto the tie, half-to-even gives 64, the exact product gives 63)."""

    kernel: np.ndarray = field(compare=False)  # int (n_in, units)

    def out_shape(self, shapes):
        (shape,) = shapes
        n_in, units = self.kernel.shape
        if not shape or shape[-1] != n_in:
            raise QirError(f"the kernel expects {n_in} input features but the layer receives shape {shape}")
        return shape[:-1] + (units,)

    def build(self, xs, emit, types):
        x = xs[0]
        shape = shape_of(x.type)
        rshape = shape[:-1] + (1,)
        axis = len(shape) - 1
        a = _exact_op(ReduceOp, [x], {"kind": StringAttr("maxabs"), "axis": IntegerAttr(axis, i64)}, rshape, emit)
        at = elem(a.type)
        if at.width > EMULATE_INDEX_BITS:
            at = Fixed(EMULATE_INDEX_BITS, at.integer, False)
            a = emit(QuantizeOp(a, tensor_of(at, rshape), "rnd_conv", "sat"))
        amax = at.to_real(np.arange(at.min_int, at.max_int + 1, dtype=np.int64)).astype(np.float32)
        with np.errstate(divide="ignore"):
            sx32 = np.float32(127.0) / (amax + np.float32(1e-7))
        sx = np.where(amax == 0, 0.0, sx32.astype(np.float64))
        sx_m, sx_t = exact_fixed(sx, "activation scales")
        s = _lut(a, sx_m, sx_t, emit)
        p = _exact_op(MulOp, [x, s], {}, shape, emit)
        xq = emit(QuantizeOp(p, tensor_of(Fixed(8, 8), shape), "rnd_conv", "sat_sym"))
        acc = DenseStep(Param.of_exact(self.kernel.astype(np.float64)), None).build([xq], emit, {})
        inv = np.where(sx == 0, 0.0, 1.0 / np.where(sx == 0, 1.0, sx))
        nz = inv[inv > 0]
        frac = EMULATE_RESCALE_BITS - int(np.floor(np.log2(nz.min()))) - 1 if nz.size else 0
        integer = max(int(np.floor(np.log2(inv.max()))) + 1, 1 - frac) if nz.size else 1
        inv_t = Fixed(integer + frac, integer, False)
        r = _lut(a, quantize_float(inv, inv_t), inv_t, emit)
        z = _exact_op(MulOp, [acc, r], {}, shape_of(acc.type), emit)
        zt = elem(z.type)
        if zt.frac > EMULATE_RESCALE_BITS:
            zt = Fixed(zt.width - (zt.frac - EMULATE_RESCALE_BITS), zt.integer, zt.signed)
            z = emit(QuantizeOp(z, tensor_of(zt, shape_of(acc.type)), "rnd_conv", "sat"))
        return z


def _exact_op(cls, operands, props, shape, emit):
    return emit(build_exact(cls, operands, props, shape))


def _lut(x, mant, t, emit):
    return emit(LutOp.create(operands=[x], result_types=[tensor_of(t, shape_of(x.type))],
                             properties={"table": int_elements(mant)}))
