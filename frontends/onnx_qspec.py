"""Quantizer arithmetic shared by the QONNX ``Quant``, ``QuantizeLinear`` and the model input:
the (lo, hi, exponent, rounding) spec of a quantizer node, its exact application (``qir.quantize``
with exact clips), approximate rescales (``approximate=B``), and exact tables (``qir.lut``).
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import onnx
from xdsl.ir import SSAValue

from qir.dialect import LUT_MAX_INPUT_WIDTH, LutOp, ReluOp, int_elements, shape_of, tensor_of
from qir.errors import QirError
from qir.fixed import Fixed
from qir.precision import quantize_float

from . import onnx_quant as oq
from .common import exact_fixed
from .onnx_records import Act, Node, po2_message

if TYPE_CHECKING:
    from .onnx_importer import Importer


# ------------------------------------------------------------------------------ quantizer specs
def quantizer_spec(imp: Importer, node: Node):
    """(lo, hi, e, rounding, codes, scale) of an activation quantizer: output mantissas clipped to
    [lo, hi] on the grid 2^e (e None: a non-power-of-two ``scale``, approximate mode), the qir
    rounding mode (None: no ap_fixed mode gives this rounding, e.g. CEIL or an odd zero point;
    the node becomes a table), and for QuantizeLinear the (scale, zero point, type) of its codes.
    None for a 1-bit signed (bipolar) Quant."""
    if node.op in ("Quant", "IntQuant"):
        scale = imp.const(node, 1, "scale")
        zp = imp.const(node, 2, "zero point")
        bits = scalar_int(imp.const(node, 3, "bitwidth"), "bitwidth", node)
        signed, narrow = bool(node.attr("signed", 1)), bool(node.attr("narrow", 0))
        mode = str(node.attr("rounding_mode", "ROUND")).upper()
        e = tensor_exponent(scale, node, imp.approximate)
        z = scalar_int(zp, "zero point", node)
        if bits == 1 and signed:
            return None
        lo, hi = oq.int_range(bits, signed, narrow)
        rnd = oq.QONNX_ROUNDING.get(mode)
        if rnd is not None and z != 0 and not (mode == "FLOOR" or (rnd == "rnd_conv" and z % 2 == 0)):
            rnd = None  # R(u + z) - z != R(u): rounding depends on the zero point
        return (lo - z, hi - z, e, rnd, None, scalar_scale(scale))
    if node.op == "QuantizeLinear":
        scale = imp.const(node, 1, "scale")
        e = tensor_exponent(scale, node, imp.approximate)
        lo, hi, dtype, z = _ql_zero_point(imp, node)
        return (lo - z, hi - z, e, "rnd_conv", (scalar_scale(scale), z, dtype), scalar_scale(scale))
    raise QirError(f"internal: no quantizer spec for {node.op}")


def scalar_int(v, what: str, node: Node) -> int:
    a = np.asarray(v).reshape(-1)
    if a.size == 0 or not np.all(a == a[0]) or float(a[0]) != int(a[0]):
        raise QirError(f"{what} must be one integer for the whole tensor, got {a[:4].tolist()}",
                       where=node.where)
    return int(a[0])


def scalar_scale(scale) -> float:
    return float(np.asarray(scale, dtype=np.float32).reshape(-1)[0])


def tensor_exponent(scale, node: Node, approximate: bool = False) -> int | None:
    """The exponent of a per-tensor power-of-two scale (None: another scale, with approximate)."""
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.all(s == s[0]) or not s[0] > 0:
        raise QirError(f"per-channel or non-positive activation scales {s[:4].tolist()} are not supported; "
                       "the activation quantizer must use one positive scale per tensor", where=node.where)
    e = oq.po2_exponents(s)
    if e is None:
        if approximate:
            return None
        raise QirError(po2_message(s, "activation"), where=node.where)
    if not np.all(e == e[0]):
        raise QirError(f"per-channel activation scales {s[:4].tolist()}... are not supported; the "
                       "activation quantizer must use one power-of-two scale per tensor", where=node.where)
    return int(e[0])


def _ql_zero_point(imp: Importer, node: Node):
    names = node.inputs
    if len(names) > 2 and names[2]:
        zp = imp.const(node, 2, "zero point")
        dtype = str(zp.dtype)
        z = scalar_int(zp.astype(np.int64), "zero point", node)
    else:
        to = node.attr("output_dtype", 0) or onnx.TensorProto.UINT8
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(to)) if to not in (
            onnx.TensorProto.INT4, onnx.TensorProto.UINT4) else ("int4" if to == onnx.TensorProto.INT4 else "uint4")
        z = 0
    lo, hi = oq.ql_range(dtype)
    return lo, hi, dtype, z


def _spec_type(spec) -> tuple:
    """Complete a quantizer spec to (type, rounding, overflow, codes) for input detection."""
    lo, hi, e, rnd, codes, _ = spec
    if rnd is None or e is None:
        return (None, None, None, codes)
    ft = oq.fixed_type_of_codes(lo, hi, e)
    if ft is None:
        return (Fixed.for_range(lo, hi, -e), rnd, None, codes)
    return (ft[0], rnd, ft[1], codes)


def input_spec(imp: Importer, node: Node):
    spec = quantizer_spec(imp, node)
    return None if spec is None else _spec_type(spec)


def _approx(value, bits: int) -> tuple[np.ndarray, int]:
    """(M0, n): M0 * 2^-n nearest to ``value`` (a positive scalar or vector), one n for all
    elements, chosen so that the smallest keeps ``bits`` significant bits (relative error at
    most 2^-bits for every element)."""
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    _, ex = np.frexp(v.min())
    n = bits - int(ex)
    return np.rint(np.ldexp(v, n)).astype(np.int64), n


def multiply(imp: Importer, v: SSAValue, factor, layer: str) -> SSAValue:
    """v * factor per channel (last axis): exact for dyadic factors, else M0*2^-n (approximate)."""
    f = np.asarray(factor, dtype=np.float64).reshape(-1)
    try:
        mant, t = exact_fixed(f, "rescale factor", max_width=64)
        exact = t.width <= max(imp.approx_bits, 32)
    except QirError:
        exact = False
    if not exact:
        if not imp.approximate:
            raise QirError(po2_message(f, "rescale"))
        mant, n = _approx(f, imp.approx_bits)
        t = Fixed.for_range(int(mant.min()), int(mant.max()), n)
    return imp.scale(v, mant, t, None, None, layer)


def approx_codes(imp: Importer, x: Act, lo: int, hi: int, scale: float, rnd: str, layer: str) -> SSAValue:
    """Integer codes clip(R(x / scale), lo, hi) with 1/scale ≈ M0*2^-n (approximate mode)."""
    v = multiply(imp, x.value, 1.0 / scale, layer)
    return apply_quantizer(imp, replace(x, value=v), lo, hi, 0, rnd, layer)


def apply_quantizer(imp: Importer, x: Act, lo: int, hi: int, e: int | None, rnd: str, layer: str,
                     scale: float | None = None) -> SSAValue:
    """Round ``x`` to the grid 2^e with ``rnd`` and clip the mantissa to [lo, hi] (exact).  With a
    non-power-of-two ``scale`` (e None; approximate=True): codes = clip(R(x * M0*2^-n)) with
    M0*2^-n ≈ 1/scale, then codes * S0*2^-m with S0*2^-m ≈ scale (each to APPROX_BITS bits)."""
    if e is None:
        codes = approx_codes(imp, x, lo, hi, scale, rnd, layer)
        return multiply(imp, codes, scale, layer)
    ft = oq.fixed_type_of_codes(lo, hi, e)
    if ft is not None:
        return imp.quantize(x.value, ft[0], rnd, ft[1], layer)
    # round into a type wide enough for every input, then clip exactly with relu/scale ops
    in_t = x.type
    frac = -e
    wide = Fixed.for_range(min(in_t.min_int >> max(in_t.frac - frac, 0) << max(frac - in_t.frac, 0), lo) - 1,
                           max((in_t.max_int >> max(in_t.frac - frac, 0) << max(frac - in_t.frac, 0)) + 1, hi),
                           frac)
    v = imp.quantize(x.value, wide, rnd, "sat", layer)
    v = clip_exact(imp, v, lo, hi, frac, layer)
    return imp.quantize(v, Fixed.for_range(lo, hi, frac), "trn", "sat", layer)


def clip_exact(imp: Importer, v: SSAValue, lo: int, hi: int, frac: int, layer: str) -> SSAValue:
    """min(max(v, lo), hi) on mantissas of grid 2^-frac: lo + relu(v - lo), then
    hi - relu(hi - that); scale ops with exact types."""
    ct = Fixed.for_range(min(lo, -hi, 0), max(hi, -lo, 0, hi - lo), frac)
    one = Fixed(2, 2, True)

    def const(c):
        return np.array([c * (1 << (ct.frac - frac))]) if ct.frac >= frac else None

    v = imp.scale(v, None, None, const(-lo), ct, layer)
    v = imp.emit(ReluOp.create(operands=[v], result_types=[v.type]), layer)
    v = imp.scale(v, np.array([-1]), one, const(hi - lo), ct, layer)
    v = imp.emit(ReluOp.create(operands=[v], result_types=[v.type]), layer)
    return imp.scale(v, np.array([-1]), one, const(hi), ct, layer)


def lut_op(imp: Importer, x: Act, fn, layer: str, what: str, where: str, out_t: Fixed | None = None) -> SSAValue:
    """An elementwise function of a narrow input as an exact table (qir.lut)."""
    in_t = x.type
    if in_t.width > LUT_MAX_INPUT_WIDTH:
        raise QirError(f"{what} on a {in_t} input needs a table of 2^{in_t.width} entries; quantize its "
                       f"input to at most {LUT_MAX_INPUT_WIDTH} bits first (a Quant/QuantizeLinear before "
                       "it, or a narrower --precision result type)", where=where)
    codes = np.arange(in_t.min_int, in_t.max_int + 1, dtype=np.int64)
    real = in_t.to_real(codes)
    y = np.asarray(fn(real), dtype=np.float64)
    if out_t is None:
        mant, out_t = exact_fixed(y, f"{what} results")
        if out_t.width > 32:
            raise QirError(f"{what} results are not on a narrow fixed-point grid (need {out_t.width} bits)",
                           where=where)
    else:
        mant = quantize_float(y, out_t)
    return imp.emit(LutOp.create(operands=[x.value], result_types=[tensor_of(out_t, shape_of(x.value.type))],
                                 properties={"table": int_elements(mant)}), layer)
