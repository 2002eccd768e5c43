"""Packing tensors of mantissas into the hex words of ``$readmemh`` / ``$fwrite("%h")`` files.

Element k of a vector sits at bits ``[k*W+W-1 : k*W]`` of its port.  Both directions are
vectorised with numpy for elements up to 62 bits (a bit matrix per chunk); wider elements go
through Python integers.
"""
from __future__ import annotations

import numpy as np

from qir.errors import QirError

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE = np.full(256, -1, dtype=np.int16)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i
for _c in b"xXzZ?":
    _NIBBLE[_c] = -2
_VECTORISED_MAX = 62


def pack_hex(mant: np.ndarray, elem_width: int, port_width: int) -> bytes:
    """Lines of ``ceil(port_width/4)`` hex digits, one per row of ``mant`` (shape (N, count))."""
    mant = np.asarray(mant)
    n, count = mant.shape
    digits = (port_width + 3) // 4
    if n == 0:
        return b""
    if elem_width > _VECTORISED_MAX or mant.dtype == object:
        mask = (1 << elem_width) - 1
        lines = []
        for row in mant.tolist():
            word = 0
            for k, v in enumerate(row):
                word |= (int(v) & mask) << (k * elem_width)
            lines.append(format(word, f"0{digits}x"))
        return ("\n".join(lines) + "\n").encode()
    u = mant.astype(np.int64) & np.int64((1 << elem_width) - 1)
    bits = ((u[:, :, None] >> np.arange(elem_width, dtype=np.int64)) & 1).astype(np.uint8)
    bits = bits.reshape(n, count * elem_width)
    pad = digits * 4 - count * elem_width
    if pad:
        bits = np.concatenate([bits, np.zeros((n, pad), np.uint8)], axis=1)
    msb_first = bits[:, ::-1].reshape(n, digits, 4)
    nib = msb_first @ np.array([8, 4, 2, 1], dtype=np.uint8)
    chars = np.empty((n, digits + 1), dtype=np.uint8)
    chars[:, :digits] = _HEX[nib]
    chars[:, digits] = ord("\n")
    return chars.tobytes()


def unpack_hex(data: bytes, elem_width: int, count: int, port_width: int, signed: bool,
               what: str) -> np.ndarray:
    """Inverse of :func:`pack_hex`: (N, count) mantissas from ``%h`` lines.  X/Z digits and
    malformed lines raise QirError (``what`` names the file)."""
    digits = (port_width + 3) // 4
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    n = len(lines)
    if n == 0:
        return np.zeros((0, count), dtype=np.int64 if elem_width <= _VECTORISED_MAX else object)
    bad = next((i for i, ln in enumerate(lines) if len(ln.strip()) != digits), None)
    if bad is not None:
        raise QirError(f"{what}: line {bad + 1} is {lines[bad]!r}, expected {digits} hex digits")
    raw = np.frombuffer(b"".join(ln.strip() for ln in lines), dtype=np.uint8).reshape(n, digits)
    nib = _NIBBLE[raw]
    if (nib < 0).any():
        row = int(np.flatnonzero((nib < 0).any(axis=1))[0])
        kind = "X/Z (undefined)" if (nib[row] == -2).any() else "non-hex"
        raise QirError(f"{what}: output for vector {row} has {kind} bits: "
                       f"{lines[row].decode(errors='replace')}")
    if elem_width > _VECTORISED_MAX:
        mask, out = (1 << elem_width) - 1, np.empty((n, count), dtype=object)
        for i, ln in enumerate(lines):
            word = int(ln, 16)
            for k in range(count):
                v = (word >> (k * elem_width)) & mask
                out[i, k] = v - (1 << elem_width) if signed and v >> (elem_width - 1) else v
        return out
    bits = ((nib[:, :, None] >> np.array([3, 2, 1, 0], dtype=np.int16)) & 1).astype(np.int64)
    lsb_first = bits.reshape(n, digits * 4)[:, ::-1][:, : count * elem_width]
    per_elem = lsb_first.reshape(n, count, elem_width)
    vals = per_elem @ (np.int64(1) << np.arange(elem_width, dtype=np.int64))
    if signed:
        vals = vals - (per_elem[:, :, elem_width - 1] << np.int64(elem_width))
    return vals
