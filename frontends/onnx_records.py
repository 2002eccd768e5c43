"""ONNX importer records and handler registry: what each ONNX tensor becomes while importing
(``Const``, ``Act``, ``Pending``), the parsed ``Node``, ``@onnx_handler`` and small layout helpers.
See ``qir.frontends.onnx`` for the whole picture.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper
from xdsl.ir import Operation, SSAValue

from qir.dialect import TransposeOp, elem, tensor_of
from qir.errors import QirError
from qir.fixed import Fixed

from .common import int_array

if TYPE_CHECKING:
    from .onnx_importer import Importer


SOFTMAX_MODES = ("keep", "none", "table")


#: significant bits of an approximated rescale multiplier M0 (approximate=True): float32's 24, so
#: results agree with runtimes that rescale in float32 except at rare near-ties
APPROX_BITS = 24


# ------------------------------------------------------------------------------ tensor records
@dataclass(frozen=True)
class Const:
    array: np.ndarray
    quantized: bool


@dataclass(frozen=True)
class Act:
    """A computed tensor: ``value`` holds its real value (``codes``: ONNX holds value/scale + zp)."""

    value: SSAValue
    shape: tuple[int, ...]                 # ONNX per-sample shape
    perm: tuple[int, ...]                  # qir axis i is ONNX axis perm[i]
    codes: tuple[float, int, str] | None = None  # (scale, zero point, element type) of int tensors
    row_order: np.ndarray | None = None    # flat tensors only: qir element k is ONNX element row_order[k]
    unflat: tuple | None = None            # (qir shape, perm) before a permuted flatten
    unit: float = 1.0                      # integer tensors with a non-power-of-two scale
    #                                        (approximate): value = code - zp, real = value * unit

    @property
    def qshape(self) -> tuple[int, ...]:
        return tuple(self.shape[p] for p in self.perm)

    @property
    def type(self) -> Fixed:
        return elem(self.value.type)


@dataclass(frozen=True)
class Pending:
    """y = op(x, w) + b not emitted yet; w in qir layout (dense (in, out), conv (k..., cin/g, cout))."""

    kind: str                              # "dense" | "conv"
    x: Act
    w: np.ndarray                          # float64 real values
    b: np.ndarray | None                   # float64 (C_out,)
    float_w: bool
    float_b: bool
    shape: tuple[int, ...]                 # ONNX per-sample output shape
    perm: tuple[int, ...]                  # output axis map (as Act.perm)
    names: tuple[str, ...]                 # ONNX output names fused in (layer = last)
    nodes: tuple[str, ...]                 # node names (precision lookup)
    conv: dict = field(default_factory=dict)  # strides, dilations, pads, groups

    @property
    def channels(self) -> int:
        return self.w.shape[-1]


Record = Const | Act | Pending


# ------------------------------------------------------------------------------ handler registry
@dataclass
class Node:
    proto: onnx.NodeProto
    kind: str
    where: str
    opset: int

    def __post_init__(self):
        self.attrs = {a.name: helper.get_attribute_value(a) for a in self.proto.attribute}

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def name(self) -> str:
        return self.proto.name or self.proto.output[0]

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def out(self) -> str:
        return self.proto.output[0]

    def attr(self, name: str, default=None):
        v = self.attrs.get(name, default)
        return v.decode() if isinstance(v, bytes) else v


Handler = Callable[["Importer", Node], None]


HANDLERS: dict[tuple[str, str], Handler] = {}


def onnx_handler(*op_types: str, domain: str = "onnx"):
    """Register a function importing nodes of these op types (domain 'onnx', 'qonnx' for the
    QONNX/FINN/Brevitas general domains, 'channels_last' for qonnx.custom_op.channels_last)."""
    def register(fn: Handler) -> Handler:
        for op in op_types:
            HANDLERS[(domain, op)] = fn
        return fn
    return register


def supported_ops() -> list[str]:
    return sorted({op for _, op in HANDLERS})


def layer_name(tensor: str) -> str:
    return tensor.replace("/", "_")


def po2_message(scale, what: str) -> str:
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    return (f"the {what} scale {s[:4].tolist()}{'...' if s.size > 4 else ''} is not a power of two, so "
            "its values are not on a fixed-point grid; re-export with power-of-two scales (Brevitas "
            "*FixedPoint quantizers, ONNX Runtime with power-of-two calibration), or opt into an "
            "approximate rescale (approximate=True: multiplier M0*2^-n)")


# ------------------------------------------------------------------------------ helpers
def transpose_op(v: SSAValue, perm, out_shape, t: Fixed) -> Operation:
    return TransposeOp.create(operands=[v], result_types=[tensor_of(t, out_shape)],
                              properties={"perm": int_array(perm)})


def per_sample(c: np.ndarray, shape: tuple[int, ...], where_what: str) -> np.ndarray:
    """A constant broadcast against a per-sample tensor of ONNX shape ``shape`` (batch axis
    first in ONNX), returned with exactly ``shape``."""
    c = np.asarray(c)
    full = (1,) + tuple(shape)
    try:
        b = np.broadcast_shapes(c.shape, full)
    except ValueError:
        raise QirError(f"{where_what} of shape {c.shape} does not broadcast against {full}") from None
    if b != full:
        raise QirError(f"{where_what} of shape {c.shape} would change the tensor shape {full} to {b}")
    return np.broadcast_to(c, full)[0]


def channel_vector(c: np.ndarray, shape, perm, what: str) -> np.ndarray | None:
    """The per-channel vector (qir last axis) of a per-sample constant, or None if it varies along
    other axes."""
    full = per_sample(c, shape, what)
    ch = perm[-1] if perm else 0
    moved = np.moveaxis(full, ch, -1).reshape(-1, shape[ch] if shape else 1)
    if not np.all(moved == moved[:1]):
        return None
    return moved[0].astype(np.float64)
