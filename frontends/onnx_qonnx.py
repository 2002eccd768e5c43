"""QONNX quantizer handlers: Quant/IntQuant, BipolarQuant, Trunc and MultiThreshold.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from qir.dialect import LUT_MAX_INPUT_WIDTH, AddOp
from qir.errors import QirError
from qir.fixed import Fixed

from . import onnx_quant as oq
from .common import exact_fixed
from .onnx_importer import Importer
from .onnx_qspec import apply_quantizer, lut_op, quantizer_spec, scalar_int, tensor_exponent
from .onnx_records import Act, Node, onnx_handler


# ------------------------------------------------------------------------------ handlers: quantizers
@onnx_handler("Quant", "IntQuant", domain="qonnx")
def _quant(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    spec = quantizer_spec(imp, node)
    if spec is None or spec[3] is None:
        _quant_lut(imp, node, x)
        return
    lo, hi, e, rnd, _, s = spec
    v = apply_quantizer(imp, x, lo, hi, e, rnd, node.out, s)
    imp.set(node.out, replace(x, value=v, codes=None))


def _quant_lut(imp: Importer, node: Node, x: Act) -> None:
    """Bipolar (1-bit signed), CEIL/UP rounding, or an odd zero point: the exact reference
    function of the (narrow) input as a table."""
    scale, zp = imp.const(node, 1, "scale"), imp.const(node, 2, "zero point")
    bits = scalar_int(imp.const(node, 3, "bitwidth"), "bitwidth", node)
    signed, narrow = bool(node.attr("signed", 1)), bool(node.attr("narrow", 0))
    mode = str(node.attr("rounding_mode", "ROUND"))
    oq.np_round(np.zeros(1), mode)  # validates the mode name
    v = lut_op(imp, x, lambda r: oq.int_quant(r, scale.reshape(-1)[0], zp.reshape(-1)[0], bits, signed, narrow, mode),
             node.out, f"Quant ({mode}, zero point {zp.reshape(-1)[0]}, {bits} bits)", node.where)
    imp.set(node.out, replace(x, value=v, codes=None))


@onnx_handler("BipolarQuant", domain="qonnx")
def _bipolar(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    scale = imp.const(node, 1, "scale")
    tensor_exponent(scale, node)
    v = lut_op(imp, x, lambda r: oq.bipolar_quant(r, scale.reshape(-1)[0]), node.out, "BipolarQuant", node.where)
    imp.set(node.out, replace(x, value=v))


@onnx_handler("Trunc", domain="qonnx")
def _trunc(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    scale, zp = imp.const(node, 1, "scale"), imp.const(node, 2, "zero point")
    e = tensor_exponent(scale, node)
    z = scalar_int(zp, "zero point", node)
    mode = str(node.attr("rounding_mode", "FLOOR")).upper()
    rnd = oq.qonnx_rounding(mode)
    if z != 0:
        raise QirError("Trunc with a nonzero zero point is not supported")
    in_bits = scalar_int(imp.const(node, 3, "input bit width"), "input bit width", node)
    # y = rne(x/s): onto the input grid (exact when x is already on it)
    in_t = x.type
    grid = Fixed.for_range(min(in_t.min_int >> max(in_t.frac + e, 0), -1) - 1,
                           (in_t.max_int >> max(in_t.frac + e, 0)) + 1, -e) if in_t.frac + e > 0 else None
    v = x.value if grid is None else imp.quantize(x.value, grid, "rnd_conv", "sat", node.out)
    xv = replace(x, value=v)
    n_in = 6 if node.opset >= 2 else 5
    if len(node.inputs) != n_in:
        raise QirError(f"Trunc v{1 if n_in == 5 else 2} (domain opset {node.opset}) takes {n_in} inputs, this node "
                       f"has {len(node.inputs)}; set the domain's opset_import version to match")
    if n_in == 6:  # v2: out_scale, out_bw; keeps the magnitude
        out_scale = imp.const(node, 4, "output scale")
        out_bits = scalar_int(imp.const(node, 5, "output bit width"), "output bit width", node)
        oe = tensor_exponent(out_scale, node)
        signed, narrow = bool(node.attr("signed", 1)), bool(node.attr("narrow", 0))
        lo, hi = oq.int_range(out_bits, signed, narrow)
        v = apply_quantizer(imp, xv, lo, hi, oe, rnd, node.out)
        imp.set(node.out, replace(x, value=v))
        return
    out_bits = scalar_int(imp.const(node, 4, "output bit width"), "output bit width", node)
    k = in_bits - out_bits
    if k < 0:
        raise QirError(f"Trunc from {in_bits} to {out_bits} bits widens; not supported")
    # v1: R(y / 2^k) on the input scale: quantize to grid 2^(e+k), then scale by 2^-k
    t = xv.type
    lo = -((-t.min_int) >> max(k + e + t.frac, 0)) - 1
    hi = (t.max_int >> max(k + e + t.frac, 0)) + 1
    coarse = imp.quantize(xv.value, Fixed.for_range(lo, hi, -(e + k)), rnd, "sat", node.out)
    v = imp.scale(coarse, np.array([1]), Fixed(2, 2 - k, False) if k else Fixed(2, 2, False), None, None, node.out)
    imp.set(node.out, replace(x, value=v))


@onnx_handler("MultiThreshold", domain="qonnx")
def _multithreshold(imp: Importer, node: Node) -> None:
    """y = out_scale * #{j : x >= T[c, j]} + out_bias.  One threshold set and a narrow input: a
    table.  Otherwise, exactly, per threshold j: step_j = clip(x - T'[c, j] + lsb, 0, lsb) with T'
    the threshold rounded up to the input grid (qir.scale + saturating qir.quantize), then the
    sum of the steps (qir.add) and the output scale and bias (qir.scale)."""
    x = imp.float_act(node.inputs[0], node)
    t = imp.const(node, 1, "thresholds").astype(np.float32)
    if t.ndim != 2:
        raise QirError(f"MultiThreshold thresholds must have shape (C, B) or (1, B), got {t.shape}")
    out_scale = np.float32(node.attr("out_scale", 1.0))
    out_bias = np.float32(node.attr("out_bias", 0.0))
    if np.all(t == t[:1]) and x.type.width <= LUT_MAX_INPUT_WIDTH:
        row = t[0]

        def fn(r):
            cnt = np.count_nonzero(r.astype(np.float32)[:, None] >= row[None, :], axis=1).astype(np.float32)
            return (out_scale * cnt + out_bias).astype(np.float32)

        v = lut_op(imp, x, fn, node.out, "MultiThreshold", node.where)
        imp.set(node.out, replace(x, value=v))
        return
    x = imp.canonical(x, node.out)
    if len(x.shape) > 1:
        ch = len(x.shape) - 1 if str(node.attr("data_layout", "NCHW")).endswith("C") else 0
        x = imp.permute(x, tuple(i for i in range(len(x.shape)) if i != ch) + (ch,), node.out)
    channels, in_t = x.qshape[-1], x.type
    if t.shape[0] not in (1, channels):
        raise QirError(f"MultiThreshold thresholds {t.shape} do not match {channels} channels")
    tm = np.ceil(np.ldexp(np.broadcast_to(t.astype(np.float64), (channels, t.shape[1])), in_t.frac))
    tm = np.clip(tm, in_t.min_int - 1, in_t.max_int + 1).astype(np.int64)
    step_t = Fixed(1, 1 - in_t.frac, False)  # {0, lsb}
    steps = []
    for j in range(t.shape[1]):
        bias = 1 - tm[:, j]
        v = imp.scale(x.value, None, None, bias, Fixed.for_range(int(bias.min()), int(bias.max()), in_t.frac),
                      node.out)
        steps.append(imp.quantize(v, step_t, "trn", "sat", node.out))
    if len(steps) > 1:
        total = imp.emit(AddOp.exact(steps, {}, x.qshape), node.out)
    else:
        total = steps[0]
    sm, st = exact_fixed(np.array([np.ldexp(np.float64(out_scale), in_t.frac)]), "MultiThreshold out_scale")
    bm, bt = (None, None) if out_bias == 0 else exact_fixed(np.array([np.float64(out_bias)]), "out_bias")
    v = imp.scale(total, sm, st, bm, bt, node.out)
    imp.set(node.out, replace(x, value=v))
