"""QDQ and QOperator handlers: QuantizeLinear/DequantizeLinear, QLinearMatMul, MatMulInteger,
ConvInteger, QLinearConv and onnxruntime's QGemm, QLinearAdd, QLinearGlobalAveragePool.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import SSAValue

from qir.dialect import AddOp, PoolOp, elem, fixed_type, int_elements
from qir.errors import QirError
from qir.fixed import Fixed

from . import onnx_quant as oq
from .common import int_array
from .onnx_importer import Importer
from .onnx_linear import dense_input, extend_pending, new_conv, new_dense, out_record_shape
from .onnx_qspec import (
    apply_quantizer,
    approx_codes,
    multiply,
    quantizer_spec,
    scalar_int,
    scalar_scale,
    tensor_exponent,
)
from .onnx_records import Act, Node, Pending, channel_vector, onnx_handler, per_sample, po2_message


@onnx_handler("QuantizeLinear")
def _quantize_linear(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    spec = quantizer_spec(imp, node)
    lo, hi, e, rnd, codes, s = spec
    if e is None:  # approximate: keep the integer codes (minus zero point), real = value * s
        v = approx_codes(imp, x, lo, hi, s, rnd, node.out)
        imp.set(node.out, replace(x, value=v, codes=codes, unit=s))
        return
    v = apply_quantizer(imp, x, lo, hi, e, rnd, node.out)
    imp.set(node.out, replace(x, value=v, codes=codes))


def _check_codes(imp: Importer, node: Node, a: Act, scale_idx: int, zp_idx: int, what: str):
    scale = imp.const(node, scale_idx, f"{what} scale")
    zp = imp.const(node, zp_idx, f"{what} zero point", default=np.int64(0))
    tensor_exponent(scale, node, imp.approximate)
    sc = scalar_scale(scale)
    z = scalar_int(np.asarray(zp).astype(np.int64), f"{what} zero point", node)
    if a.codes is None:
        raise QirError(f"{what} '{node.inputs[0]}' is not an integer tensor from a QuantizeLinear")
    if a.codes[0] != sc or a.codes[1] != z:
        raise QirError(f"{what} scale/zero point ({sc}, {z}) differ from the ones it was quantized "
                       f"with {a.codes[:2]}; not supported")


@onnx_handler("DequantizeLinear")
def _dequantize_linear(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    if isinstance(r, Pending):  # int32 accumulator (MatMulInteger/ConvInteger) times its scale
        scale = imp.const(node, 1, "scale").astype(np.float64)
        zp = imp.const(node, 2, "zero point", default=np.int64(0))
        if np.any(np.asarray(zp) != 0):
            raise QirError("DequantizeLinear of an accumulator with a nonzero zero point is not supported")
        vec = channel_vector(scale, r.shape, r.perm, "scale")
        if oq.po2_exponents(vec) is None:
            raise QirError(po2_message(vec, "accumulator"))
        imp.set(node.out, extend_pending(imp, node, r, vec, None))
        return
    a = imp.act(node.inputs[0], node)
    _check_codes(imp, node, a, 1, 2, "input")
    if a.unit != 1.0:  # integer codes with a non-power-of-two scale: times S0*2^-m ≈ scale
        a = imp.canonical(a, node.out)
        v = multiply(imp, a.value, a.unit, node.out)
        imp.set(node.out, replace(a, value=v, codes=None, unit=1.0))
        return
    imp.set(node.out, replace(a, codes=None))


def _int_weights(imp: Importer, node: Node, w_idx: int, s_idx: int | None, zp_idx: int | None,
                 cout_axis: int) -> np.ndarray:
    """Real weights (w − zp)·s of an integer weight tensor (per output channel scales allowed)."""
    w = imp.const(node, w_idx, "weights").astype(np.int64)
    zp = imp.const(node, zp_idx, "weight zero point", default=np.int64(0)).astype(np.int64) if zp_idx is not None else 0
    shape = [1] * w.ndim
    if np.ndim(zp) == 1 and np.size(zp) > 1:
        shape[cout_axis] = np.size(zp)
        zp = np.reshape(zp, shape)
    real = (w - zp).astype(np.float64)
    if s_idx is not None:
        s = imp.const(node, s_idx, "weight scale").astype(np.float64)
        if oq.po2_exponents(s) is None:
            raise QirError(po2_message(s, "weight"))
        if s.size > 1:
            shape = [1] * w.ndim
            shape[cout_axis] = s.size
            s = s.reshape(shape)
        real = real * s
    return real


@onnx_handler("QLinearMatMul")
def _qlinear_matmul(imp: Importer, node: Node) -> None:
    x = imp.act(node.inputs[0], node)
    _check_codes(imp, node, x, 1, 2, "input")
    xf = _dense_input_from(imp, node, replace(x, codes=None, unit=1.0))
    if _integer_requant(imp, node, x):
        w, k, _ = _int_weights_scaled(imp, node, x, 1)
        a = imp.emit_pending(new_dense(imp, node, xf, w, False, None, False))
        _requantize_codes(imp, node, a, k, 6, 7)
        return
    w = _int_weights(imp, node, 3, 4, 5, 1)
    p = new_dense(imp, node, xf, w, False, None, False)
    a = imp.emit_pending(p)
    _requantize_out(imp, node, a, 6, 7)


def _integer_requant(imp: Importer, node: Node, x: Act) -> bool:
    """QLinear* with a non-power-of-two scale somewhere (approximate mode): integer accumulator
    and one M0*2^-n requantization multiplier per output channel."""
    scales = [imp.const(node, i, "scale") for i in (1, 4, 6)]
    po2 = all(oq.po2_exponents(s) is not None for s in scales)
    if x.unit == 1.0 and po2:
        return False
    if not po2 and not imp.approximate:
        bad = next(s for s in scales if oq.po2_exponents(s) is None)
        raise QirError(po2_message(bad, "requantization"))
    return True


def _int_weights_scaled(imp: Importer, node: Node, x: Act, cout_axis: int):
    """(integer weights w - zp, K, xs) for the integer path: x.value is the input code (minus zero
    point) times xs (sa when it holds real values, 1 when it holds codes), so value @ w is the
    integer accumulator times xs, and y = rne(acc * sa*sw/sy) = rne((value @ w) * K) with
    K = sa*sw / (sy*xs) per output channel."""
    w = _int_weights(imp, node, 3, None, 5, cout_axis)
    sa = float(np.asarray(imp.const(node, 1, "x scale"), dtype=np.float32).reshape(-1)[0])
    xs = sa if x.unit == 1.0 else 1.0
    sw = imp.const(node, 4, "weight scale").astype(np.float32).astype(np.float64).reshape(-1)
    sy = float(np.asarray(imp.const(node, 6, "output scale"), dtype=np.float32).reshape(-1)[0])
    return w, sa * sw / (sy * xs), xs


def _output_zero_point(imp: Importer, node: Node, zp_idx: int) -> tuple[str, int]:
    """(element type, zero point) of a QLinear op's output (absent: uint8, 0)."""
    if len(node.inputs) > zp_idx and node.inputs[zp_idx]:
        zp = imp.const(node, zp_idx, "output zero point")
        return str(zp.dtype), scalar_int(zp.astype(np.int64), "output zero point", node)
    return "uint8", 0


def _requantize_codes(imp: Importer, node: Node, a: Act, k, s_idx: int, zp_idx: int) -> None:
    """Output codes clip(rne(value * K) + zy) - zy with K ≈ M0*2^-n per channel; real = codes * sy."""
    sy = float(np.asarray(imp.const(node, s_idx, "output scale"), dtype=np.float32).reshape(-1)[0])
    dtype, z = _output_zero_point(imp, node, zp_idx)
    lo, hi = oq.ql_range(dtype)
    v = multiply(imp, a.value, np.broadcast_to(np.asarray(k, dtype=np.float64), (a.qshape[-1],)), node.out)
    v = apply_quantizer(imp, replace(a, value=v), lo - z, hi - z, 0, "rnd_conv", node.out)
    imp.set(node.out, replace(a, value=v, codes=(sy, z, dtype), unit=sy))


def _dense_input_from(imp: Importer, node: Node, a: Act) -> Act:
    name = f"__qir_tmp_{node.out}"
    imp.values[name] = a
    try:
        return dense_input(imp, node, name)
    finally:
        del imp.values[name]


def _requantize_out(imp: Importer, node: Node, a: Act, s_idx: int, zp_idx: int) -> None:
    scale = imp.const(node, s_idx, "output scale")
    e = tensor_exponent(scale, node)
    dtype, z = _output_zero_point(imp, node, zp_idx)
    lo, hi = oq.ql_range(dtype)
    v = apply_quantizer(imp, a, lo - z, hi - z, e, "rnd_conv", node.out)
    imp.set(node.out, replace(a, value=v, codes=(float(2.0 ** e), z, dtype)))


def _integer_input(imp: Importer, node: Node, name: str):
    """MatMulInteger/ConvInteger input 0: the QuantizeLinear'd activation (its zero point must be
    the one given as input 2) and its value per code step (real values, or the codes themselves)."""
    x = imp.act(node.inputs[0], node)
    if x.codes is None:
        raise QirError(f"{node.op} input {name} is not an integer tensor from a QuantizeLinear")
    sa, za = x.codes[0], x.codes[1]
    has_zp = len(node.inputs) > 2 and node.inputs[2]
    zp = imp.const(node, 2, f"{name} zero point", default=np.int64(0)) if has_zp else np.int64(0)
    if scalar_int(np.asarray(zp).astype(np.int64), f"{name} zero point", node) != za:
        raise QirError(f"{node.op} {name} zero point differs from the QuantizeLinear's ({za})")
    return x, (sa if x.unit == 1.0 else 1.0)


@onnx_handler("MatMulInteger")
def _matmul_integer(imp: Importer, node: Node) -> None:
    x, xs = _integer_input(imp, node, "A")
    w = _int_weights(imp, node, 1, None, 3 if len(node.inputs) > 3 and node.inputs[3] else None, 1)
    xf = _dense_input_from(imp, node, replace(x, codes=None, unit=1.0))
    # the ONNX int32 result is sum (a - za)(b - zb) = (x.value / xs) @ (b - zb)
    imp.set(node.out, new_dense(imp, node, xf, w / xs, False, None, False))


@onnx_handler("ConvInteger")
def _conv_integer(imp: Importer, node: Node) -> None:
    x, xs = _integer_input(imp, node, "x")
    w = _int_weights(imp, node, 1, None, 3 if len(node.inputs) > 3 and node.inputs[3] else None, 0)
    xf = imp.channels_last(replace(x, codes=None, unit=1.0), node.out)
    imp.set(node.out, new_conv(imp, node, xf, w / xs, False, None, False, False))


@onnx_handler("QLinearConv")
def _qlinear_conv(imp: Importer, node: Node) -> None:
    x = imp.act(node.inputs[0], node)
    _check_codes(imp, node, x, 1, 2, "input")
    if _integer_requant(imp, node, x):
        w, k, xs = _int_weights_scaled(imp, node, x, 0)
        b = None
        if len(node.inputs) > 8 and node.inputs[8]:  # int32 at scale sa*sw: accumulator units
            b = imp.const(node, 8, "bias").astype(np.float64) * xs
        xf = imp.channels_last(replace(x, codes=None, unit=1.0), node.out)
        a = imp.emit_pending(new_conv(imp, node, xf, w, False, b, False, False))
        _requantize_codes(imp, node, a, k, 6, 7)
        return
    w = _int_weights(imp, node, 3, 4, 5, 0)
    b = None
    if len(node.inputs) > 8 and node.inputs[8]:
        sx = float(np.asarray(imp.const(node, 1, "x scale")).reshape(-1)[0])
        ws = imp.const(node, 4, "weight scale").astype(np.float64).reshape(-1)
        b = imp.const(node, 8, "bias").astype(np.float64) * sx * ws  # int32 at scale sx*sw, zp 0
    xf = imp.channels_last(replace(x, codes=None), node.out)
    p = new_conv(imp, node, xf, w, False, b, False, False)
    a = imp.emit_pending(p)
    _requantize_out(imp, node, a, 6, 7)


def _code_act(imp: Importer, node: Node, idx: int, s_idx: int, zp_idx: int, what: str) -> tuple[Act, float]:
    """An integer input (checked against its scale/zero point inputs) and its value step xs:
    value = (code - zp) * xs (xs = scale for real-valued storage, 1 for code storage)."""
    a = imp.act(node.inputs[idx], node)
    if a.codes is None:
        raise QirError(f"{what} '{node.inputs[idx]}' is not an integer tensor from a QuantizeLinear")
    scale = imp.const(node, s_idx, f"{what} scale")
    zp = imp.const(node, zp_idx, f"{what} zero point", default=np.int64(0))
    tensor_exponent(scale, node, imp.approximate)
    sc = scalar_scale(scale)
    z = scalar_int(np.asarray(zp).astype(np.int64), f"{what} zero point", node)
    if a.codes[0] != sc or a.codes[1] != z:
        raise QirError(f"{what} scale/zero point ({sc}, {z}) differ from the ones it was quantized with "
                       f"{a.codes[:2]}; not supported")
    return a, (sc if a.unit == 1.0 else 1.0)


def _out_codes(imp: Importer, node: Node, a: Act, v: SSAValue, s_idx: int, zp_idx: int, default_dtype="uint8",
               zp_before_rounding: bool = False):
    """Round ``v`` (code units) to integer codes, clip to the output type minus its zero point.
    ``zp_before_rounding``: rne(v + zp) - zp (onnxruntime's contrib kernels add the zero point
    before rounding, which differs from rne(v) at ties when zp is odd)."""
    sy = scalar_scale(imp.const(node, s_idx, "output scale"))
    if len(node.inputs) > zp_idx and node.inputs[zp_idx]:
        zp = imp.const(node, zp_idx, "output zero point")
        dtype, z = str(zp.dtype), scalar_int(zp.astype(np.int64), "output zero point", node)
    else:
        dtype, z = default_dtype, 0
    lo, hi = oq.ql_range(dtype)
    if zp_before_rounding and z % 2:
        frac = max(elem(v.type).frac, 0)
        zm = z << frac  # the zero point on v's grid
        shifted = imp.scale(v, None, None, np.array([zm]), Fixed.for_range(min(zm, -zm), max(zm, -zm), frac), node.out)
        q = apply_quantizer(imp, replace(a, value=shifted), lo, hi, 0, "rnd_conv", node.out)
        v = imp.scale(q, None, None, np.array([-z]), Fixed.for_range(min(z, -z), max(z, -z), 0), node.out)
    else:
        v = apply_quantizer(imp, replace(a, value=v), lo - z, hi - z, 0, "rnd_conv", node.out)
    return replace(a, value=v, codes=(sy, z, dtype), unit=sy, row_order=a.row_order)


@onnx_handler("QLinearAdd", domain="ms")
def _qlinear_add(imp: Importer, node: Node) -> None:
    """C = sat(rne((A_real + B_real) / sc) + zc): both inputs scaled to output code units, added
    exactly, rounded once."""
    a, xa = _code_act(imp, node, 0, 1, 2, "A")
    b, xb = _code_act(imp, node, 3, 4, 5, "B")
    if a.shape != b.shape:
        raise QirError(f"QLinearAdd of shapes {a.shape} and {b.shape} (broadcasting) is not supported")
    a = imp.canonical(a, node.out)
    b = imp.permute(imp.canonical(b, node.out), a.perm, node.out)
    sa, sb = (scalar_scale(imp.const(node, i, "scale")) for i in (1, 4))
    sc = scalar_scale(imp.const(node, 6, "output scale"))
    va = multiply(imp, a.value, sa / (sc * xa), node.out)
    vb = multiply(imp, b.value, sb / (sc * xb), node.out)
    s = imp.emit(AddOp.exact([va, vb], {}, a.qshape), node.out)
    imp.set(node.out, _out_codes(imp, node, a, s, 6, 7, zp_before_rounding=True))


@onnx_handler("QLinearGlobalAveragePool", domain="ms")
def _qlinear_gap(imp: Importer, node: Node) -> None:
    """y = sat(rne(sum(x - zx) * sx / (N * sy)) + zy): an exact window sum, then one factor."""
    a, xs = _code_act(imp, node, 0, 1, 2, "X")
    cl = bool(node.attr("channels_last", 0))
    x = imp.onnx_order(a, node.out) if cl else imp.channels_last(a, node.out)
    spatial = list(x.qshape[:-1])
    n = int(np.prod(spatial))
    props = {"kind": StringAttr("avg"), "window": int_array(spatial), "strides": int_array([1] * len(spatial)),
             "pads": int_array([0] * (2 * len(spatial))), "count": StringAttr("window"),
             "multiplier": int_elements(np.array([1])), "multiplier_type": fixed_type(Fixed(2, 2, False))}
    shape, perm = out_record_shape([1] * len(spatial), x.qshape[-1], cl)
    qshape = tuple(shape[i] for i in perm)
    total = imp.exact_op(PoolOp, x.value, props, qshape, node.out)
    sx = scalar_scale(imp.const(node, 1, "X scale"))
    sy = scalar_scale(imp.const(node, 3, "output scale"))
    v = multiply(imp, total, sx / (n * sy * xs), node.out)
    out = Act(v, shape, perm)
    imp.set(node.out, _out_codes(imp, node, out, v, 3, 4))


@onnx_handler("QGemm", domain="ms")
def _qgemm(imp: Importer, node: Node) -> None:
    """Y = alpha * (A - za)(B - zb) * sa*sb (+ C int32 at scale sa*sb); quantized to y_scale/zp when
    given, else real."""
    if node.attr("transA", 0):
        raise QirError("QGemm with transA=1 is not supported")
    a, xs = _code_act(imp, node, 0, 1, 2, "A")
    transb = bool(node.attr("transB", 0))
    w = _int_weights(imp, node, 3, None, 5, 0 if transb else 1)
    w = w.T if transb else w
    sa = scalar_scale(imp.const(node, 1, "A scale"))
    sb = imp.const(node, 4, "B scale").astype(np.float32).astype(np.float64).reshape(-1)
    alpha = float(np.float32(node.attr("alpha", 1.0)))
    b = None
    if len(node.inputs) > 6 and node.inputs[6]:
        b = per_sample(imp.const(node, 6, "C").astype(np.float64), (w.shape[1],), "QGemm C") * xs
    xf = _dense_input_from(imp, node, replace(a, codes=None, unit=1.0))
    acc = imp.emit_pending(new_dense(imp, node, xf, w, False, b, False))  # = (acc_int + C) * xs
    factor = np.broadcast_to(alpha * sa * sb / xs, (w.shape[1],))
    if len(node.inputs) > 7 and node.inputs[7]:
        sy = scalar_scale(imp.const(node, 7, "output scale"))
        tensor_exponent(np.array([sy]), node, imp.approximate)
        v = multiply(imp, acc.value, factor / sy, node.out)
        imp.set(node.out, _out_codes(imp, node, acc, v, 7, 8))
        return
    v = multiply(imp, acc.value, factor, node.out)
    imp.set(node.out, replace(acc, value=v))
