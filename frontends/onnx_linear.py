"""ONNX linear and affine handlers: MatMul/Gemm (``qir.dense``), Conv (``qir.conv``), elementwise
Add/Sub/Mul/Div/Neg with constants or two tensors, BatchNormalization (folded into a pending
layer where possible) and the pools.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import SSAValue

from qir.dialect import AddOp, PoolOp, ReshapeOp, fixed_type, int_elements, shape_of, tensor_of
from qir.errors import QirError
from qir.fixed import Fixed
from qir.precision import quantize_float

from . import onnx_quant as oq
from .common import exact_fixed, int_array, same_pads, window_out
from .onnx_importer import Importer
from .onnx_records import Act, Const, Node, Pending, channel_vector, onnx_handler, per_sample


# ------------------------------------------------------------------------------ handlers: linear
def _weights_2d(imp: Importer, node: Node, index: int, what: str) -> Const:
    r = imp.get(node.inputs[index], node)
    if not isinstance(r, Const):
        raise QirError(f"{node.op} of two computed tensors (input '{node.inputs[index]}' is not a "
                       "constant) is not supported; only constant weights are")
    return r


def dense_input(imp: Importer, node: Node, name: str) -> Act:
    a = imp.float_act(name, node)
    nonunit = [d for d in a.shape if d != 1]
    if len(nonunit) > 1:
        raise QirError(f"{node.op} on a per-sample shape {a.shape} (more than one non-unit axis) is not "
                       "supported; flatten the features first")
    if len(a.shape) != 1:
        size = int(np.prod(a.shape))
        if a.row_order is None and shape_of(a.value.type) != (size,):
            v = imp.emit(ReshapeOp.create(operands=[a.value], result_types=[tensor_of(a.type, (size,))]), node.out)
            a = Act(v, (size,), (0,), a.codes, unit=a.unit)
        else:
            a = replace(a, shape=(size,), perm=(0,))
    return a


def new_dense(imp: Importer, node: Node, x: Act, w: np.ndarray, float_w: bool, b, float_b: bool,
               out_shape=None) -> Pending:
    if x.row_order is not None:
        w = w[x.row_order]
        x = replace(x, row_order=None, unflat=None)
    n_out = w.shape[1]
    shape = out_shape or (n_out,)
    return Pending("dense", x, w.astype(np.float64), None if b is None else b.astype(np.float64),
                   float_w, float_b, shape, tuple(range(len(shape))), (node.out,), (node.name,))


@onnx_handler("MatMul")
def _matmul(imp: Importer, node: Node) -> None:
    w = _weights_2d(imp, node, 1, "weights")
    if w.array.ndim != 2:
        raise QirError(f"MatMul weights of shape {w.array.shape} are not supported (need (K, N))")
    x = dense_input(imp, node, node.inputs[0])
    if x.shape[0] != w.array.shape[0]:
        raise QirError(f"MatMul of {x.shape[0]} features with weights {w.array.shape}")
    r = imp.get(node.inputs[0], node)
    out_shape = tuple(r.shape[:-1]) + (w.array.shape[1],)
    imp.set(node.out, new_dense(imp, node, x, w.array, not w.quantized, None, False, out_shape))


@onnx_handler("Gemm")
def _gemm(imp: Importer, node: Node) -> None:
    if node.attr("transA", 0):
        raise QirError("Gemm with transA=1 (transposed activations) is not supported")
    w = _weights_2d(imp, node, 1, "weights")
    arr = w.array.T if node.attr("transB", 0) else w.array
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    wq = w.quantized and (alpha == 1.0 or oq.is_po2(alpha))
    warr = arr.astype(np.float64) * np.float64(np.float32(alpha))
    x = dense_input(imp, node, node.inputs[0])
    if x.shape[0] != warr.shape[0]:
        raise QirError(f"Gemm of {x.shape[0]} features with weights {warr.shape}")
    b, bq = None, True
    if len(node.inputs) > 2 and node.inputs[2]:
        c = imp.get(node.inputs[2], node)
        if not isinstance(c, Const):
            raise QirError("Gemm with a computed C input is not supported")
        b = per_sample(c.array, (warr.shape[1],), "Gemm bias C").astype(np.float64) * np.float64(np.float32(beta))
        bq = c.quantized and (beta == 1.0 or oq.is_po2(beta))
    imp.set(node.out, new_dense(imp, node, x, warr, not wq, b, not bq))


def extend_pending(imp: Importer, node: Node, p: Pending, scale=None, bias=None, float_s=False,
                   float_b=False) -> Pending:
    """p followed by y*scale + bias (per output channel), as one pending op."""
    w, b = p.w, p.b
    fw, fb = p.float_w, p.float_b
    if scale is not None:
        w = w * scale
        b = None if b is None else b * scale
        fw, fb = fw or float_s, fb or float_s
    if bias is not None:
        b = bias if b is None else b + bias
        fb = fb or float_b
    return replace(p, w=w, b=b, float_w=fw, float_b=fb, names=p.names + (node.out,),
                   nodes=p.nodes + (node.name,))


def _affine_on_act(imp: Importer, node: Node, a: Act, scale, bias, float_s: bool, float_b: bool) -> None:
    """y = a*scale + bias per channel on an emitted tensor: one exact qir.scale (float
    constants typed by the precision configuration; a float one makes the result cast)."""
    a = imp.canonical(a, node.out)
    where = node.where
    lp = imp.layer_precision((node.out,), (node.name,))
    s = st = b = bt = None
    if scale is not None:
        s, st = imp.constants(scale, float_s, lp, "weights", where)
    if bias is not None:
        b, bt = imp.constants(bias, float_b, lp, "bias", where)
    v = imp.scale(a.value, s, st, b, bt, node.out)
    if float_s or float_b:
        v = imp.cast_result(v, lp, node.out)
    imp.set(node.out, Act(v, a.shape, a.perm))


def _binary_const(imp: Importer, node: Node):
    """(activation record, constant, constant-first) of a binary op with one constant input."""
    r0, r1 = imp.get(node.inputs[0], node), imp.get(node.inputs[1], node)
    if isinstance(r1, Const) and not isinstance(r0, Const):
        return r0, r1, False
    if isinstance(r0, Const) and not isinstance(r1, Const):
        return r1, r0, True
    return None


def _linear_const(imp: Importer, node: Node, scale_of, bias_of) -> None:
    """Mul/Div/Add/Sub by a per-channel constant on a pending op (fused) or an emitted tensor."""
    r, c, const_first = _binary_const(imp, node)
    name = node.inputs[1] if const_first else node.inputs[0]
    if isinstance(r, Act) and r.codes is not None:
        raise QirError(f"{node.op} on an integer (quantized) tensor is not supported; dequantize it first")
    vec = channel_vector(c.array, r.shape, r.perm, f"{node.op} constant")
    if isinstance(r, Pending) and vec is not None and imp.fusable(name):
        scale, bias = scale_of(vec), bias_of(vec)
        float_c = not c.quantized and not (scale is not None and bias is None and oq.is_po2(scale))
        imp.set(node.out, extend_pending(imp, node, r, scale, bias, float_c, float_c))
        return
    a = imp.canonical(imp.act(name, node), node.out)
    if vec is None and len(a.shape) > 1:  # an ONNX (C, ...) tensor: per channel once channels last
        cl = tuple(range(1, len(a.shape))) + (0,)
        vec = channel_vector(c.array, a.shape, cl, f"{node.op} constant")
        if vec is not None:
            a = imp.permute(a, cl, node.out)
    if vec is None:
        raise QirError(f"{node.op} by a constant that varies within a channel (shape {c.array.shape}) is "
                       "not supported; only per-tensor or per-channel constants are")
    scale, bias = scale_of(vec), bias_of(vec)
    float_c = not c.quantized and not (scale is not None and bias is None and oq.is_po2(scale))
    _affine_on_act(imp, node, a, scale, bias, float_c, float_c)


def _two_acts(imp: Importer, node: Node) -> list[Act]:
    acts = [imp.float_act(n, node) for n in node.inputs]
    shape = acts[0].shape
    for a in acts[1:]:
        if a.shape != shape:
            raise QirError(f"{node.op} of tensors with shapes {[x.shape for x in acts]} (broadcasting "
                           "between computed tensors) is not supported")
    base = acts[0]
    out = []
    for a in acts:
        if a.row_order is not None and (base.row_order is None or not np.array_equal(a.row_order, base.row_order)):
            a = imp.canonical(a, node.out)
        out.append(imp.permute(a, base.perm, node.out) if a.row_order is None and base.row_order is None else a)
    return out


@onnx_handler("Add")
def _add(imp: Importer, node: Node) -> None:
    if _binary_const(imp, node) is not None:
        _linear_const(imp, node, lambda v: None, lambda v: v)
        return
    acts = _two_acts(imp, node)
    _sum(imp, node, [a.value for a in acts], acts[0])


def _sum(imp: Importer, node: Node, values: list[SSAValue], like: Act) -> None:
    v = imp.emit(AddOp.exact(values, {}, like.qshape), node.out)
    imp.set(node.out, replace(like, value=v, codes=None))


@onnx_handler("Sub")
def _sub(imp: Importer, node: Node) -> None:
    bc = _binary_const(imp, node)
    if bc is not None:
        _, _, const_first = bc
        if const_first:  # c - x = x * -1 + c
            _linear_const(imp, node, lambda v: -np.ones_like(v), lambda v: v)
        else:
            _linear_const(imp, node, lambda v: None, lambda v: -v)
        return
    a, b = _two_acts(imp, node)
    neg = imp.scale(b.value, np.array([-1]), Fixed(2, 2, True), None, None, node.out)
    _sum(imp, node, [a.value, neg], a)


@onnx_handler("Mul")
def _mul(imp: Importer, node: Node) -> None:
    if _binary_const(imp, node) is None:
        raise QirError("Mul of two computed tensors is not supported; only multiplication by constants is")
    _linear_const(imp, node, lambda v: v, lambda v: None)


@onnx_handler("Div")
def _div(imp: Importer, node: Node) -> None:
    bc = _binary_const(imp, node)
    if bc is None or bc[2]:
        raise QirError("Div is only supported as division of a computed tensor by a constant")
    _linear_const(imp, node, lambda v: 1.0 / v, lambda v: None)


@onnx_handler("Neg")
def _neg(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    if isinstance(r, Pending) and imp.fusable(node.inputs[0]):
        imp.set(node.out, extend_pending(imp, node, r, -np.ones(r.channels), None))
        return
    a = imp.float_act(node.inputs[0], node)
    _affine_on_act(imp, node, a, np.array([-1.0]), None, False, False)


@onnx_handler("BatchNormalization")
def _batchnorm(imp: Importer, node: Node, channels_last: bool = False) -> None:
    """y = (x - mean) / sqrt(var + eps) * scale + bias per channel: folded into a preceding
    dense/conv, else one qir.scale; float (precision configuration) either way."""
    r = imp.get(node.inputs[0], node)
    gamma, beta, mean, var = (imp.const(node, i, w).astype(np.float64) for i, w in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    eps = float(np.float32(node.attr("epsilon", 1e-5)))
    a = (gamma / np.sqrt(var + eps))
    c = beta - mean * a
    ch = len(r.shape) - 1 if channels_last else 0
    if not r.shape or r.shape[ch] != a.shape[0]:
        raise QirError(f"BatchNormalization with {a.shape[0]} channels on a tensor of shape {r.shape}")
    if isinstance(r, Pending) and imp.fusable(node.inputs[0]) and r.perm[-1] == ch:
        imp.set(node.out, extend_pending(imp, node, r, a, c, True, True))
        return
    x = imp.canonical(imp.float_act(node.inputs[0], node), node.out)
    if len(x.shape) > 1:
        want = tuple(i for i in range(len(x.shape)) if i != ch) + (ch,)
        x = imp.permute(x, want, node.out)
    _affine_on_act(imp, node, x, a, c, True, True)


# ------------------------------------------------------------------------------ handlers: spatial
def _spatial_input(imp: Importer, node: Node, name: str, channels_last: bool, codes_ok: bool = False) -> Act:
    """The input of a spatial op stored channels last (qir layout), ONNX (C, spatial...) or, for
    the qonnx channels_last domain, (spatial..., C).  ``codes_ok``: integer tensors are fine
    (max pooling commutes with dequantization)."""
    a = imp.act(name, node) if codes_ok else imp.float_act(name, node)
    if len(a.shape) < 2:
        raise QirError(f"{node.op} needs a (channels, spatial...) input, got per-sample shape {a.shape}")
    if channels_last:
        return imp.onnx_order(a, node.out)
    return imp.channels_last(a, node.out)


def _window_pads(node: Node, spatial, window, strides, dilations) -> list[int]:
    n = len(spatial)
    auto = str(node.attr("auto_pad", "NOTSET"))
    if auto in ("NOTSET", ""):
        pads = list(node.attr("pads") or [0] * (2 * n))
        if len(pads) != 2 * n:
            raise QirError(f"pads {pads} do not match {n} spatial dims")
        return [int(p) for p in pads]
    if auto == "VALID":
        return [0] * (2 * n)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise QirError(f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    pairs = [same_pads(size, k, st, d, lower=auto == "SAME_LOWER")
             for size, k, st, d in zip(spatial, window, strides, dilations)]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def out_record_shape(spatial_out, channels: int, channels_last: bool):
    """(ONNX per-sample shape, perm) of a spatial op's result stored channels last."""
    n = len(spatial_out)
    if channels_last:
        return tuple(spatial_out) + (channels,), tuple(range(n + 1))
    return (channels,) + tuple(spatial_out), tuple(range(1, n + 1)) + (0,)


def new_conv(imp: Importer, node: Node, x: Act, w_onnx: np.ndarray, float_w: bool, b, float_b: bool,
              channels_last: bool) -> Pending:
    """A pending qir.conv from ONNX weights (C_out, C_in/groups, k...)."""
    nd = w_onnx.ndim - 2
    spatial = x.qshape[:-1]
    c_in = x.qshape[-1]
    groups = int(node.attr("group", 1))
    if w_onnx.shape[1] * groups != c_in or w_onnx.shape[0] % groups:
        raise QirError(f"weights {w_onnx.shape} with group={groups} do not fit {c_in} input channels")
    window = list(w_onnx.shape[2:])
    kernel_shape = node.attr("kernel_shape")
    if kernel_shape and list(kernel_shape) != window:
        raise QirError(f"kernel_shape {list(kernel_shape)} differs from the weights {w_onnx.shape}")
    strides = list(node.attr("strides") or [1] * nd)
    dilations = list(node.attr("dilations") or [1] * nd)
    pads = _window_pads(node, spatial, window, strides, dilations)
    out = list(window_out(spatial, window, strides, dilations, pads))
    w = np.transpose(w_onnx.astype(np.float64), tuple(range(2, nd + 2)) + (1, 0))
    shape, perm = out_record_shape(out, w_onnx.shape[0], channels_last)
    return Pending("conv", x, w, None if b is None else np.asarray(b, dtype=np.float64).reshape(-1),
                   float_w, float_b, shape, perm, (node.out,), (node.name,),
                   {"strides": strides, "dilations": dilations, "pads": pads, "groups": groups})


def _conv(imp: Importer, node: Node, channels_last: bool) -> None:
    w = imp.get(node.inputs[1], node)
    if not isinstance(w, Const):
        raise QirError("Conv with computed weights is not supported; only constant weights are")
    x = _spatial_input(imp, node, node.inputs[0], channels_last)
    if w.array.ndim != len(x.shape) + 1:
        raise QirError(f"Conv weights of shape {w.array.shape} do not match an input of shape {x.shape}")
    warr = w.array
    if channels_last:  # qonnx channels_last Conv: weights are channels last too (O, k..., I)
        warr = np.moveaxis(warr, -1, 1)
    b, fb = None, False
    if len(node.inputs) > 2 and node.inputs[2]:
        c = imp.get(node.inputs[2], node)
        if not isinstance(c, Const):
            raise QirError("Conv with a computed bias is not supported")
        b, fb = c.array, not c.quantized
    imp.set(node.out, new_conv(imp, node, x, warr, not w.quantized, b, fb, channels_last))


@onnx_handler("Conv")
def _conv_nchw(imp: Importer, node: Node) -> None:
    _conv(imp, node, False)


@onnx_handler("Conv", domain="channels_last")
def _conv_nhwc(imp: Importer, node: Node) -> None:
    _conv(imp, node, True)


def _pool_params(node: Node, x: Act, window):
    nd = len(window)
    strides = list(node.attr("strides") or [1] * nd)
    dilations = list(node.attr("dilations") or [1] * nd)
    if any(d != 1 for d in dilations):
        raise QirError(f"pooling with dilations {dilations} is not supported")
    spatial = x.qshape[:-1]
    pads = _window_pads(node, spatial, window, strides, dilations)
    if node.attr("ceil_mode", 0):
        # ceil mode: extra end padding so the last partial window exists (it never lies fully in padding)
        for i in range(nd):
            size = spatial[i] + pads[i] + pads[nd + i]
            rem = (size - window[i]) % strides[i]
            if rem and (size - window[i]) // strides[i] * strides[i] + strides[i] < spatial[i] + pads[i]:
                pads[nd + i] += strides[i] - rem
    return strides, pads


def _pool(imp: Importer, node: Node, kind: str, channels_last: bool, global_: bool) -> None:
    x = _spatial_input(imp, node, node.inputs[0], channels_last, codes_ok=kind == "max")
    spatial = list(x.qshape[:-1])
    window = spatial if global_ else list(node.attr("kernel_shape"))
    if len(window) != len(spatial):
        raise QirError(f"kernel_shape {window} does not match {len(spatial)} spatial dims")
    if global_:
        strides, pads = [1] * len(window), [0] * (2 * len(window))
    else:
        strides, pads = _pool_params(node, x, window)
    out = list(window_out(spatial, window, strides, [1] * len(window), pads))
    shape, perm = out_record_shape(out, x.qshape[-1], channels_last)
    qshape = tuple(shape[i] for i in perm)
    props = {"kind": StringAttr(kind), "window": int_array(window), "strides": int_array(strides),
             "pads": int_array(pads)}
    if kind == "max":
        v = imp.emit(PoolOp.create(operands=[x.value], result_types=[tensor_of(x.type, qshape)], properties=props),
                     node.out)
        imp.set(node.out, Act(v, shape, perm, x.codes, unit=x.unit))
        return
    from qir.dialect import window_geometry

    area = int(np.prod(window))
    include_pad = bool(node.attr("count_include_pad", 0)) or not any(pads)
    geo = window_geometry(tuple(spatial), window, strides, (1,) * len(window), pads)
    counts = np.ones((), dtype=np.int64)
    for _, mask in geo:
        counts = np.multiply.outer(counts, mask.sum(axis=1))
    used = [area] if include_pad else sorted({int(c) for c in np.unique(counts)})
    mult = np.array([1.0 / area]) if include_pad else np.array([1.0 / k for k in range(1, area + 1)])
    exact = all(oq.is_po2(1.0 / k) for k in used)
    lp = imp.layer_precision((node.out,), (node.name,))
    if exact:
        if not include_pad:
            mult = np.array([1.0 / k if k in used else 0.0 for k in range(1, area + 1)])
        mm, mt = exact_fixed(mult, "average pooling multipliers")
    else:
        mt = imp.float_type(lp, "weight", node.where)
        mm = quantize_float(mult, mt)
    props |= {"count": StringAttr("window" if include_pad else "valid"),
              "multiplier": int_elements(mm), "multiplier_type": fixed_type(mt)}
    v = imp.exact_op(PoolOp, x.value, props, qshape, node.out)
    if not exact:
        v = imp.cast_result(v, lp, node.out)
    imp.set(node.out, Act(v, shape, perm))


@onnx_handler("MaxPool")
def _maxpool(imp: Importer, node: Node) -> None:
    if len(node.proto.output) > 1 and node.proto.output[1]:
        raise QirError("MaxPool with an Indices output is not supported")
    _pool(imp, node, "max", False, False)


@onnx_handler("MaxPool", domain="channels_last")
def _maxpool_nhwc(imp: Importer, node: Node) -> None:
    _pool(imp, node, "max", True, False)


@onnx_handler("AveragePool")
def _avgpool(imp: Importer, node: Node) -> None:
    _pool(imp, node, "avg", False, False)


@onnx_handler("GlobalAveragePool")
def _global_avgpool(imp: Importer, node: Node) -> None:
    _pool(imp, node, "avg", False, True)


@onnx_handler("GlobalMaxPool")
def _global_maxpool(imp: Importer, node: Node) -> None:
    _pool(imp, node, "max", False, True)


@onnx_handler("BatchNormalization", domain="channels_last")
def _batchnorm_nhwc(imp: Importer, node: Node) -> None:
    _batchnorm(imp, node, channels_last=True)
