"""Keras 3 post-training-quantized Dense layers (``model.quantize('int8' | 'int4')``).

What the files hold (notes §4): an int8 kernel q with a per-output-unit ``kernel_scale`` ks
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
"""
from __future__ import annotations

import numpy as np

from qir.errors import QirError
from qir.frontends.keras_graph import KerasLayer
from qir.frontends.keras_steps import DenseStep, Param, ScaleStep

DYNAMIC_ERROR = (
    "Keras {mode} PTQ quantizes activations dynamically per row (AbsMaxQuantizer). This needs a runtime "
    "max-reduction and a division, so it has no static fixed-point equivalent. Re-quantize with "
    "`{config}(activation_quantizer=None)` and give an input fixed-point type, or choose an opt-in below: "
    "ptq='weight-only' (import_keras(..., ptq='weight-only')) lowers the integer weights on the static "
    "input type and rounds the per-channel rescale to the configured precision (not bit-exact to Keras)")


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
    if _dynamic(cfg, mode, ctx.keras_version) and ctx.ptq != "weight-only":
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
    return [DenseStep(Param.of_exact(q.astype(np.float64)), None),
            ScaleStep(Param(inv, False, relative=True), Param.of_float(bias) if bias is not None else None)]
