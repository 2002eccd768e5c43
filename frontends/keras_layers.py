"""Layer handlers of the Keras frontend: one function per family of Keras/QKeras layer classes,
registered with ``@layer_handler``, translating a layer (its config, its weights and its input
shapes) into steps (``keras_steps``).

Weights are quantized here, in their Keras layout (the channel axis for auto scales is the last
one), before any reshape: depthwise kernels (k..., C_in, M) become grouped convolution kernels
(k..., 1, C_in*M) only afterwards.  Float weights stay float (``Param.of_float``) and are typed
later by the precision configuration.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from qir.frontends.keras import ImportContext, layer_handler
from qir.frontends.keras_graph import KerasLayer
from qir.frontends.keras_quantizers import (
    F32,
    Quantizer,
    resolve_activation,
    resolve_quantizer,
)
from qir.frontends.keras_steps import (
    AddStep,
    BatchNormStep,
    Clip,
    ConcatStep,
    ConvStep,
    DenseStep,
    LeakyRelu,
    PadStep,
    Param,
    PoolStep,
    Relu,
    ReshapeStep,
    Softmax,
    TransposeStep,
    is_dyadic,
)

from qir.errors import QirError


# ------------------------------------------------------------------------------ helpers
def _ints(value: Any, n: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise QirError(f"{what} must be an integer or {n} integers, got {value!r}")


def _channels_last(cfg: dict) -> None:
    fmt = cfg.get("data_format")
    if fmt not in (None, "channels_last"):
        raise QirError(f"data_format={fmt!r} is not supported; qir is channels last: save the model with "
                       "data_format='channels_last'")


def _activation(cfg: dict) -> list:
    return resolve_activation(cfg.get("activation")).steps()


def _quantizer(cfg: dict, key: str, kernel: bool) -> Quantizer | None:
    try:
        q = resolve_quantizer(cfg.get(key))
    except QirError as e:
        raise QirError(f"{key}: {e}") from None
    if q is not None and kernel:
        q = q.for_kernel()
    return q


def _param(q: Quantizer | None, values: np.ndarray, ctx: ImportContext, what: str) -> Param:
    """Quantized (exact) or float weights."""
    if q is None:
        return Param.of_float(values)
    try:
        return Param.of_exact(q.quantize_weights(values, ctx.approximate))
    except QirError as e:
        raise QirError(f"{what}: {e}") from None


def _float_or_exact(value: float) -> Param:
    """A float32 constant: exact when it is a power of two (or zero), else float (typed by the precision)."""
    v = np.atleast_1d(np.asarray(value, dtype=F32)).astype(np.float64)
    pow2 = np.all((v == 0) | (np.frexp(np.abs(v))[0] == 0.5))
    return Param.of_exact(v) if pow2 else Param.of_float(v)


def _bias(cfg: dict, v, index: int, units: int, q: Quantizer | None, ctx: ImportContext) -> Param | None:
    if not cfg.get("use_bias", True):
        return None
    bias = v.floats("bias", index)
    if bias.shape != (units,):
        raise QirError(f"bias shape {bias.shape} does not match {units} outputs; the weights do not "
                       "belong to this model")
    return _param(q, bias, ctx, "bias")


# ------------------------------------------------------------------------------ identity and activations
@layer_handler("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
               "AlphaDropout", "ActivityRegularization")
def _identity(layer: KerasLayer, ctx: ImportContext) -> list:
    return []


@layer_handler("Activation")
def _activation_layer(layer: KerasLayer, ctx: ImportContext) -> list:
    act = resolve_activation(layer.config.get("activation"))
    if isinstance(act, Quantizer):
        raise QirError("a quantizer in a plain Activation layer is not supported; use QActivation")
    return act.steps()


@layer_handler("QActivation")
def _qactivation(layer: KerasLayer, ctx: ImportContext) -> list:
    return resolve_activation(layer.config.get("activation")).steps()


@layer_handler("ReLU")
def _relu(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg = layer.config
    if float(cfg.get("threshold") or 0.0) != 0.0:
        raise QirError(f"ReLU threshold={cfg.get('threshold')} is not supported; only threshold=0 is")
    ns = float(cfg.get("negative_slope") or 0.0)
    steps: list = [LeakyRelu(_float_or_exact(ns))] if ns else [Relu()]
    if cfg.get("max_value") is not None:
        mv = float(F32(cfg["max_value"]))
        if mv < 0:
            raise QirError(f"ReLU max_value={mv} is negative")
        steps.append(Clip(None, mv))
    return steps


@layer_handler("LeakyReLU")
def _leaky_relu(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg = layer.config
    alpha = cfg.get("negative_slope", cfg.get("alpha", 0.3))
    return [LeakyRelu(_float_or_exact(float(alpha)))]


@layer_handler("Softmax")
def _softmax_layer(layer: KerasLayer, ctx: ImportContext) -> list:
    axis = layer.config.get("axis", -1)
    if axis not in (-1, [-1], len(ctx.in_shape)):
        raise QirError(f"Softmax over axis {axis} is not supported; only the last axis is")
    return [Softmax()]


# ------------------------------------------------------------------------------ Dense
def _ptq_mode(cfg: dict) -> str | None:
    """The Keras 3 quantization mode of a layer (its dtype policy's ``mode``: 'int8', 'int4', ...),
    or None for a float layer."""
    dt = cfg.get("dtype")
    if isinstance(dt, dict):
        mode = (dt.get("config") or {}).get("mode") if isinstance(dt.get("config"), dict) else None
        if mode is None and "Quantized" in str(dt.get("class_name", "")):
            mode = "?"
        return None if mode is None else str(mode).split("/")[0]
    if isinstance(dt, str) and dt.split("_from_")[0].split("/")[0] in ("int8", "int4", "float8", "gptq", "awq"):
        return dt.split("_from_")[0].split("/")[0]
    return None


@layer_handler("Dense", "QDense")
def _dense(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg = layer.config
    mode = _ptq_mode(cfg)
    if mode is not None:
        from qir.frontends.keras_ptq import ptq_dense

        return ptq_dense(layer, ctx, mode) + _activation(cfg)
    v = ctx.variables(layer)
    units = cfg.get("units")
    kernel = v.floats("kernel", 0)
    if kernel.ndim != 2 or kernel.shape[1] != units:
        raise QirError(f"kernel shape {kernel.shape} does not match units={units}; the weights "
                       "file does not belong to this model")
    quantized = layer.class_name.startswith("Q")
    kq = _quantizer(cfg, "kernel_quantizer", True) if quantized else None
    bq = _quantizer(cfg, "bias_quantizer", False) if quantized else None
    return [DenseStep(_param(kq, kernel, ctx, "kernel"), _bias(cfg, v, 1, units, bq, ctx)), *_activation(cfg)]


# ------------------------------------------------------------------------------ convolutions
def _conv_geometry(cfg: dict, n: int) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    _channels_last(cfg)
    strides = _ints(cfg.get("strides", 1), n, "strides")
    dil = _ints(cfg.get("dilation_rate", 1), n, "dilation_rate")
    padding = str(cfg.get("padding", "valid")).lower()
    return strides, dil, padding


def _rank(layer: KerasLayer) -> int:
    return 1 if "1D" in layer.class_name else 2


@layer_handler("Conv1D", "Conv2D", "QConv1D", "QConv2D")
def _conv(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg, n = layer.config, _rank(layer)
    if _ptq_mode(cfg) is not None:
        raise QirError(f"Keras quantization mode {_ptq_mode(cfg)!r} on a convolution is not supported; "
                       "only Dense layers are quantized by Keras 3")
    strides, dil, padding = _conv_geometry(cfg, n)
    v = ctx.variables(layer)
    kernel = v.floats("kernel", 0)
    filters, groups = cfg.get("filters"), int(cfg.get("groups", 1) or 1)
    if kernel.ndim != n + 2 or kernel.shape[-1] != filters:
        raise QirError(f"kernel shape {kernel.shape} does not match a {n}-D convolution with "
                       f"{filters} filters; the weights do not belong to this model")
    quantized = layer.class_name.startswith("Q")
    kq = _quantizer(cfg, "kernel_quantizer", True) if quantized else None
    bq = _quantizer(cfg, "bias_quantizer", False) if quantized else None
    return [ConvStep(_param(kq, kernel, ctx, "kernel"), _bias(cfg, v, 1, filters, bq, ctx), strides, dil,
                     padding, groups), *_activation(cfg)]


def _depthwise_param(p: Param, kernel_shape) -> Param:
    """(k..., C_in, M) -> grouped-convolution kernel (k..., 1, C_in*M); output channel c*M + m."""
    k = kernel_shape
    return Param(p.values.reshape(tuple(k[:-2]) + (1, k[-2] * k[-1])), p.exact)


@layer_handler("DepthwiseConv1D", "DepthwiseConv2D", "QDepthwiseConv2D")
def _depthwise(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg, n = layer.config, _rank(layer)
    strides, dil, padding = _conv_geometry(cfg, n)
    v = ctx.variables(layer)
    kernel = v.floats("depthwise_kernel", 0)
    if kernel.ndim != n + 2:
        raise QirError(f"depthwise kernel shape {kernel.shape} is not (kernel x{n}, channels, multiplier)")
    quantized = layer.class_name.startswith("Q")
    kq = _quantizer(cfg, "depthwise_quantizer", True) if quantized else None
    bq = _quantizer(cfg, "bias_quantizer", False) if quantized else None
    cin, dm = kernel.shape[-2:]
    w = _depthwise_param(_param(kq, kernel, ctx, "depthwise kernel"), kernel.shape)
    return [ConvStep(w, _bias(cfg, v, 1, cin * dm, bq, ctx), strides, dil, padding, cin), *_activation(cfg)]


@layer_handler("SeparableConv1D", "SeparableConv2D", "QSeparableConv1D", "QSeparableConv2D")
def _separable(layer: KerasLayer, ctx: ImportContext) -> list:
    """Depthwise then pointwise convolution; the depthwise result is kept exact (QKeras does not
    quantize it)."""
    cfg, n = layer.config, _rank(layer)
    strides, dil, padding = _conv_geometry(cfg, n)
    v = ctx.variables(layer)
    dw = v.floats("depthwise_kernel", 0)
    pw = v.floats("pointwise_kernel", 1)
    filters = cfg.get("filters")
    if dw.ndim != n + 2 or pw.ndim != n + 2 or pw.shape[-2] != dw.shape[-2] * dw.shape[-1] or pw.shape[-1] != filters:
        raise QirError(f"depthwise {dw.shape} / pointwise {pw.shape} kernels do not form a separable "
                       f"convolution with {filters} filters")
    quantized = layer.class_name.startswith("Q")
    dq = _quantizer(cfg, "depthwise_quantizer", True) if quantized else None
    pq = _quantizer(cfg, "pointwise_quantizer", True) if quantized else None
    bq = _quantizer(cfg, "bias_quantizer", False) if quantized else None
    cin = dw.shape[-2]
    dwp = _depthwise_param(_param(dq, dw, ctx, "depthwise kernel"), dw.shape)
    pwp = _param(pq, pw, ctx, "pointwise kernel")
    ones = (1,) * n
    return [ConvStep(dwp, None, strides, dil, padding, cin),
            ConvStep(pwp, _bias(cfg, v, 2, filters, bq, ctx), ones, ones, "valid", 1), *_activation(cfg)]


# ------------------------------------------------------------------------------ batch normalization
def _bn_variables(cfg: dict, v, sub: str | None, start: int) -> tuple:
    """(gamma or None, beta or None, moving mean, moving variance) of a (nested) batch norm."""
    i = start
    gamma = beta = None
    if cfg.get("scale", True):
        gamma, i = v.floats("gamma", i, sub), i + 1
    if cfg.get("center", True):
        beta, i = v.floats("beta", i, sub), i + 1
    mean = v.floats("moving_mean", i, sub)
    var = v.floats("moving_variance", i + 1, sub)
    return gamma, beta, mean, var


def _bn_axis(cfg: dict, rank: int) -> None:
    axis = cfg.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if axis not in (-1, rank):
        raise QirError(f"batch normalization over axis {axis} is not supported; only the last (channel) "
                       "axis is")


def _bn_real(gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Real scale and shift of a batch normalization, in float64 from the float32 values."""
    g = np.ones_like(mean, dtype=np.float64) if gamma is None else gamma.astype(np.float64)
    scale = g / np.sqrt(var.astype(np.float64) + float(eps))
    shift = (0.0 if beta is None else beta.astype(np.float64)) - mean.astype(np.float64) * scale
    return scale, shift


@layer_handler("BatchNormalization")
def _batchnorm(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg = layer.config
    _bn_axis(cfg, len(ctx.in_shape))
    v = ctx.variables(layer)
    gamma, beta, mean, var = _bn_variables(cfg, v, None, 0)
    scale, shift = _bn_real(gamma, beta, mean, var, cfg.get("epsilon", 1e-3))
    return [BatchNormStep(Param.of_float(scale), Param.of_float(shift))]


_QBN_DEFAULTS = {"beta_quantizer": "quantized_po2(5)", "gamma_quantizer": "quantized_relu_po2(6, 2048)",
                 "mean_quantizer": "quantized_po2(5)",
                 "variance_quantizer": "quantized_relu_po2(6, quadratic_approximation=True)"}


@layer_handler("QBatchNormalization")
def _qbatchnorm(layer: KerasLayer, ctx: ImportContext) -> list:
    """inv = Q_g(gamma) / sqrt(Q_v(var) + eps) [then Q_inv], y = x*inv + (Q_b(beta) - Q_m(mean)*inv);
    absent quantizer keys take QKeras's (non-None) defaults, an explicit null disables them."""
    cfg = layer.config
    _bn_axis(cfg, len(ctx.in_shape))
    v = ctx.variables(layer)
    gamma, beta, mean, var = _bn_variables(cfg, v, None, 0)
    qs = {}
    for key, default in _QBN_DEFAULTS.items():
        entry = cfg[key] if key in cfg else default
        qs[key] = _quantizer({key: entry}, key, False)
    inv_q = _quantizer(cfg, "inverse_quantizer", False)

    def q(key, x):
        return x if qs[key] is None or x is None else qs[key].quantize_weights(x).astype(F32)

    gamma, beta, mean, var = q("gamma_quantizer", gamma), q("beta_quantizer", beta), \
        q("mean_quantizer", mean), q("variance_quantizer", var)
    eps = cfg.get("epsilon", 1e-3)
    if inv_q is None:
        scale, shift = _bn_real(gamma, beta, mean, var, eps)
        return [BatchNormStep(Param.of_float(scale), Param.of_float(shift))]
    with np.errstate(all="ignore"):  # QKeras's float32 arithmetic
        inv = F32(1) / np.sqrt(var + F32(eps))
        if gamma is not None:
            inv = inv * gamma
        inv = inv_q.quantize_weights(inv).astype(F32)
        shift = (beta if beta is not None else F32(0)) - mean * inv
    return [BatchNormStep(Param.of_exact(inv), Param.best(shift.astype(F32)))]


@layer_handler("QConv2DBatchnorm", "QDepthwiseConv2DBatchnorm", "QDenseBatchnorm")
def _conv_batchnorm(layer: KerasLayer, ctx: ImportContext) -> list:
    """QKeras's folded layers: W_f = inv*W, b_f = inv*(b - mean) + beta with inv = gamma/sqrt(var+eps)
    in float32 from the moving statistics; the kernel quantizer (and its auto scales) applies to W_f,
    the bias quantizer to b_f, and the bias is always added."""
    cfg = layer.config
    dense = layer.class_name == "QDenseBatchnorm"
    depthwise = layer.class_name == "QDepthwiseConv2DBatchnorm"
    v = ctx.variables(layer)
    kname = "depthwise_kernel" if depthwise else "kernel"
    kernel = v.floats(kname, 0)
    use_bias = cfg.get("use_bias", True)
    bias = v.floats("bias", 1) if use_bias else None
    sub = None if v.named else "batchnorm"
    gamma, beta, mean, var = _bn_variables(cfg, v, sub, 0)
    eps = F32(cfg.get("epsilon", 1e-3))
    with np.errstate(all="ignore"):
        inv = F32(1) / np.sqrt(var + eps)
        if gamma is not None:
            inv = inv * gamma
        b = bias if bias is not None else F32(0)
        folded_bias = inv * (b - mean) + (beta if beta is not None else F32(0))
        if depthwise:
            folded = inv.reshape(kernel.shape[-2:]) * kernel
        else:
            folded = inv * kernel
    folded, folded_bias = folded.astype(F32), np.asarray(folded_bias, dtype=F32)
    kq = _quantizer(cfg, "depthwise_quantizer" if depthwise else "kernel_quantizer", True)
    bq = _quantizer(cfg, "bias_quantizer", False)
    w = _param(kq, folded, ctx, "folded kernel")
    bp = _param(bq, folded_bias, ctx, "folded bias")
    if dense:
        units = cfg.get("units")
        if kernel.ndim != 2 or kernel.shape[1] != units:
            raise QirError(f"kernel shape {kernel.shape} does not match units={units}")
        return [DenseStep(w, bp), *_activation(cfg)]
    strides, dil, padding = _conv_geometry(cfg, 2)
    if depthwise:
        cin = kernel.shape[-2]
        return [ConvStep(_depthwise_param(w, kernel.shape), bp, strides, dil, padding, cin), *_activation(cfg)]
    return [ConvStep(w, bp, strides, dil, padding, int(cfg.get("groups", 1) or 1)), *_activation(cfg)]


# ------------------------------------------------------------------------------ pooling
def _pool_geometry(cfg: dict, n: int) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    _channels_last(cfg)
    window = _ints(cfg.get("pool_size", 2), n, "pool_size")
    strides = cfg.get("strides")
    strides = window if strides is None else _ints(strides, n, "strides")
    return window, strides, str(cfg.get("padding", "valid")).lower()


def _inverse_count(k: int) -> Param:
    return _float_or_exact(1.0 / k) if k & (k - 1) == 0 else Param.of_float([1.0 / k])


def _average_quantizer(cfg: dict, area: int):
    """QKeras average pooling: multiplier for a window of k valid elements = (A/k) * Q(1/A)."""
    q = _quantizer(cfg, "average_quantizer", False)
    if q is None:
        return _inverse_count
    qv = float(q.quantize_weights(np.array([F32(1.0) / F32(area)]))[0])

    def mult(k: int) -> Param:
        val = qv * area / k
        return Param.of_exact([val]) if is_dyadic([val], 40) else Param.of_float([val])
    return mult


@layer_handler("MaxPooling1D", "MaxPooling2D", "MaxPool1D", "MaxPool2D")
def _maxpool(layer: KerasLayer, ctx: ImportContext) -> list:
    window, strides, padding = _pool_geometry(layer.config, _rank(layer))
    return [PoolStep("max", window, strides, padding)]


@layer_handler("AveragePooling1D", "AveragePooling2D", "AvgPool1D", "AvgPool2D", "QAveragePooling2D")
def _avgpool(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg, n = layer.config, _rank(layer)
    window, strides, padding = _pool_geometry(cfg, n)
    mult = _average_quantizer(cfg, int(np.prod(window))) if layer.class_name.startswith("Q") else _inverse_count
    steps = [PoolStep("avg", window, strides, padding, mult)]
    if layer.class_name.startswith("Q"):
        steps += _activation(cfg)
    return steps


@layer_handler("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
               "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAvgPool1D", "GlobalAvgPool2D",
               "QGlobalAveragePooling2D")
def _global_pool(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg = layer.config
    _channels_last(cfg)
    shape = ctx.in_shape
    n = _rank(layer)
    if len(shape) != n + 1:
        raise QirError(f"{layer.class_name} needs a (spatial x{n}, channels) input, got shape {shape}")
    window = tuple(shape[:-1])
    flatten = not cfg.get("keepdims", False)
    if "Max" in layer.class_name:
        return [PoolStep("max", window, window, "valid", global_flatten=flatten)]
    area = int(np.prod(window))
    mult = _average_quantizer(cfg, area) if layer.class_name.startswith("Q") else _inverse_count
    steps = [PoolStep("avg", window, window, "valid", mult, global_flatten=flatten)]
    if layer.class_name.startswith("Q"):
        steps += _activation(cfg)
    return steps


# ------------------------------------------------------------------------------ shapes and merges
@layer_handler("Flatten")
def _flatten(layer: KerasLayer, ctx: ImportContext) -> list:
    _channels_last(layer.config)
    return [ReshapeStep((-1,))]


@layer_handler("Reshape")
def _reshape(layer: KerasLayer, ctx: ImportContext) -> list:
    target = layer.config.get("target_shape")
    if not isinstance(target, (list, tuple)) or not all(isinstance(d, int) for d in target):
        raise QirError(f"target_shape {target!r} is not a list of integers")
    return [ReshapeStep(tuple(target))]


@layer_handler("Permute")
def _permute(layer: KerasLayer, ctx: ImportContext) -> list:
    dims = layer.config.get("dims")
    if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) for d in dims):
        raise QirError(f"dims {dims!r} is not a list of integers")
    return [TransposeStep(tuple(d - 1 for d in dims))]


@layer_handler("ZeroPadding1D", "ZeroPadding2D")
def _zero_padding(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg, n = layer.config, _rank(layer)
    _channels_last(cfg)
    pad = cfg.get("padding", 1)
    pairs: list[tuple[int, int]] = []
    if isinstance(pad, int):
        pairs = [(pad, pad)] * n
    elif isinstance(pad, (list, tuple)) and len(pad) == n and all(isinstance(p, int) for p in pad) and n == 2:
        pairs = [(pad[0], pad[0]), (pad[1], pad[1])]
    elif isinstance(pad, (list, tuple)) and n == 1 and len(pad) == 2 and all(isinstance(p, int) for p in pad):
        pairs = [(pad[0], pad[1])]
    elif isinstance(pad, (list, tuple)) and len(pad) == n and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, int) for x in p) for p in pad):
        pairs = [(p[0], p[1]) for p in pad]
    else:
        raise QirError(f"padding {pad!r} is not understood")
    if any(a < 0 or b < 0 for a, b in pairs):
        raise QirError(f"padding {pad!r} is negative")
    return [PadStep(tuple(pairs))]


@layer_handler("Add")
def _add(layer: KerasLayer, ctx: ImportContext) -> list:
    return [AddStep()]


@layer_handler("Concatenate")
def _concatenate(layer: KerasLayer, ctx: ImportContext) -> list:
    axis = layer.config.get("axis", -1)
    if not isinstance(axis, int):
        raise QirError(f"axis {axis!r} is not an integer")
    return [ConcatStep(axis)]

