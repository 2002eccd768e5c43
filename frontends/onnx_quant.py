"""Numeric semantics of the ONNX quantizer ops and their exact fixed-point forms.

Reference semantics (docs/quantizer_semantics.md §3, §4), written in float32 numpy exactly
as the qonnx executor and the ONNX reference implement them; the frontend uses them to fold
weight-only subgraphs (a ``Quant`` on an initializer) into constants:

- QONNX ``Quant``/``IntQuant``: y_int = R(clip(x/s + z, min_int, max_int)), Y = (y_int − z)·s;
  1-bit signed is bipolar.  ``BipolarQuant``: Y = s·(x ≥ 0 ? 1 : −1).  ``Trunc`` v1/v2.
- ``QuantizeLinear``: saturate(rne(x/s) + zp); ``DequantizeLinear``: (q − zp)·s.

On activations the frontend maps a quantizer to one ``qir.quantize`` when its scale is a power of
two 2^e (per tensor) and its zero point keeps the code range a fixed-point range: the output is
exactly ``fixed<b, b+e>`` (``ufixed`` when unsigned) with the op's rounding mode and ``sat``
(``sat_sym`` for a narrow signed range).  ``fixed_type_of_codes`` decides that and otherwise says
why not.
"""
from __future__ import annotations

import numpy as np

from qir.errors import QirError
from qir.fixed import Fixed

#: QONNX rounding_mode -> qir (ap_fixed) rounding mode.  CEIL and UP have no ap_fixed mode.
QONNX_ROUNDING = {"ROUND": "rnd_conv", "HALF_EVEN": "rnd_conv", "FLOOR": "trn", "DOWN": "trn_zero",
                  "HALF_UP": "rnd_inf", "HALF_DOWN": "rnd_zero"}
_ALL_QONNX_MODES = (*QONNX_ROUNDING, "CEIL", "UP")


def qonnx_rounding(mode: str) -> str:
    """The qir rounding mode of a QONNX rounding_mode (case-insensitive)."""
    m = str(mode).upper()
    if m in QONNX_ROUNDING:
        return QONNX_ROUNDING[m]
    if m in ("CEIL", "UP"):
        raise QirError(f"rounding_mode {m} has no fixed-point rounding mode in qir (supported: "
                       f"{', '.join(QONNX_ROUNDING)}); re-export with ROUND or FLOOR")
    raise QirError(f"unknown rounding_mode {mode!r}; QONNX defines {', '.join(_ALL_QONNX_MODES)}")


def np_round(x: np.ndarray, mode: str) -> np.ndarray:
    """QONNX's rounding functions (qonnx.custom_op.general.quant.resolve_rounding_mode)."""
    m = str(mode).upper()
    if m in ("ROUND", "HALF_EVEN"):
        return np.round(x)
    if m == "CEIL":
        return np.ceil(x)
    if m == "FLOOR":
        return np.floor(x)
    if m == "UP":
        return np.sign(x) * np.ceil(np.abs(x))
    if m == "DOWN":
        return np.fix(x)
    if m == "HALF_UP":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if m == "HALF_DOWN":
        return np.sign(x) * np.ceil(np.abs(x) - 0.5)
    raise QirError(f"unknown rounding_mode {mode!r}; QONNX defines {', '.join(_ALL_QONNX_MODES)}")


def int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """qonnx min_int/max_int (unsigned narrow is [0, 2^b − 2])."""
    if signed:
        return -(1 << (bits - 1)) + (1 if narrow else 0), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - (1 if narrow else 0)


# ------------------------------------------------------------------------ reference semantics
def int_quant(x, scale, zeropt, bits: int, signed: bool, narrow: bool, mode: str) -> np.ndarray:
    """QONNX Quant/IntQuant (float32, as the qonnx executor)."""
    x, scale, zeropt = (np.asarray(v, dtype=np.float32) for v in (x, scale, zeropt))
    y = x / scale
    y = y + zeropt
    if bits == 1 and signed:
        y = np.where(y >= 0, np.float32(1), np.float32(-1))
    else:
        lo, hi = int_range(bits, signed, narrow)
        y = np.clip(y, np.float32(lo), np.float32(hi))
        y = np_round(y, mode).astype(np.float32)
    return ((y - zeropt) * scale).astype(np.float32)


def bipolar_quant(x, scale) -> np.ndarray:
    x, scale = np.asarray(x, dtype=np.float32), np.asarray(scale, dtype=np.float32)
    return (np.where(x >= 0, np.float32(1), np.float32(-1)) * scale).astype(np.float32)


def trunc(x, scale, zeropt, in_bits, out_bits_or_scale, version: int, mode: str, signed=True,
          narrow=False, out_bits=None) -> np.ndarray:
    """QONNX Trunc v1 (inputs x, s, z, in_bw, out_bw) and v2 (x, s, z, in_bw, out_scale, out_bw)."""
    x, scale, zeropt = (np.asarray(v, dtype=np.float32) for v in (x, scale, zeropt))
    y = np.round(x / scale + zeropt)
    if version == 1:
        t = np.float32(2.0 ** (float(in_bits) - float(out_bits_or_scale)))
        y = np_round(y / t, mode)
        return ((y - zeropt) * scale).astype(np.float32)
    out_scale = np.asarray(out_bits_or_scale, dtype=np.float32)
    t = (2.0 ** np.round(np.log2(out_scale / scale))).astype(np.float32)
    y = y / t
    lo, hi = int_range(int(out_bits), signed, narrow)
    y = np_round(np.clip(y, np.float32(lo), np.float32(hi)), mode)
    return ((y - zeropt / t) * out_scale).astype(np.float32)


def channel_param(p: np.ndarray, x_shape: tuple[int, ...], axis: int) -> np.ndarray:
    """A QuantizeLinear/DequantizeLinear scale or zero point broadcastable against x."""
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    if p.ndim == 1:
        axis = axis % len(x_shape)
        shape = [1] * len(x_shape)
        shape[axis] = p.shape[0]
        return p.reshape(shape)
    return p  # blocked: same rank, expanded by the caller


_QL_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int16): (-32768, 32767),
              np.dtype(np.uint16): (0, 65535), np.dtype(np.int32): (-(1 << 31), (1 << 31) - 1)}


def ql_range(dtype) -> tuple[int, int]:
    """Saturation range of a QuantizeLinear output element type (numpy dtype or ONNX name)."""
    name = str(dtype).lower()
    by_name = {str(k): v for k, v in _QL_RANGES.items()}
    if name in by_name:
        return by_name[name]
    for key, rng in (("uint4", (0, 15)), ("int4", (-8, 7)), ("uint2", (0, 3)), ("int2", (-2, 1))):
        if key in name:
            return rng
    raise QirError(f"unsupported quantized element type {dtype}; supported: int8, uint8, int16, uint16, "
                   "int4, uint4, int2, uint2")


def quantize_linear(x, scale, zp, lo: int, hi: int) -> np.ndarray:
    """saturate(rne(x / scale) + zp) as integers (float32 division, as ONNX)."""
    x = np.asarray(x, dtype=np.float32)
    q = np.round(x / np.asarray(scale, dtype=np.float32)) + np.asarray(zp, dtype=np.int64)
    return np.clip(q, lo, hi).astype(np.int64)


def dequantize_linear(q, scale, zp) -> np.ndarray:
    return ((np.asarray(q, dtype=np.int64) - np.asarray(zp, dtype=np.int64)).astype(np.float32)
            * np.asarray(scale, dtype=np.float32)).astype(np.float32)


def is_int_array(a) -> bool:
    """Integer (or bool) element type, including ONNX's 4- and 2-bit integers."""
    d = np.asarray(a).dtype
    return d.kind in "iub" or str(d) in ("int4", "uint4", "int2", "uint2")


# ------------------------------------------------------------------------ exact fixed point
def po2_exponents(scale) -> np.ndarray | None:
    """Integer exponents e with scale == 2^e elementwise, or None if any scale is not a positive
    power of two."""
    s = np.asarray(scale, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        return None
    m, e = np.frexp(s)
    if not np.all(m == 0.5):
        return None
    return (e - 1).astype(np.int64)


def is_po2(values) -> bool:
    """Every value is ± a power of two (zero excluded)."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    return po2_exponents(v) is not None


def fixed_type_of_codes(lo: int, hi: int, exponent: int) -> tuple[Fixed, str] | None:
    """The fixed type (and overflow mode) whose mantissa range is exactly [lo, hi] on the grid
    2^exponent, or None."""
    frac = -exponent
    if lo == 0 and hi > 0 and (hi + 1) & hi == 0:
        w = hi.bit_length()
        return Fixed(w, w - frac, False), "sat"
    if lo < 0 and hi >= 0:
        w = hi.bit_length() + 1
        if (hi + 1) & hi == 0 and hi == (1 << (w - 1)) - 1:
            if lo == -(1 << (w - 1)):
                return Fixed(w, w - frac, True), "sat"
            if lo == -hi and w >= 2:
                return Fixed(w, w - frac, True), "sat_sym"
    return None
