"""ONNX frontend: QONNX, QDQ and float ONNX graphs into one ``qir.model``.

``import_onnx(path, input_type=, softmax=, precision=)`` prepares the graph (``onnx_graph``:
load, external data, batch dimension, opset upgrade, checks, shape inference), then walks the
nodes in order.  A node whose inputs are all constants is folded with numpy (``onnx_fold``: a
``Quant`` on an initializer becomes quantized weights); every other node goes to the handler
registered for its op type with ``@onnx_handler("MatMul")``.  Nothing from the file is executed.

Modules, one per family: ``onnx_records`` (tensor records, ``Node``, the handler registry),
``onnx_importer`` (the ``Importer`` core), ``onnx_qspec`` (quantizer arithmetic shared by Quant,
QuantizeLinear and the input), and the handlers ``onnx_layout``, ``onnx_linear``,
``onnx_activations``, ``onnx_qonnx`` (QONNX quantizers) and ``onnx_qdq`` (QDQ/QOperator).  Facts
shared with the Keras frontend (exact dyadic constants, window geometry) live in ``common``.

What each ONNX tensor becomes while importing:

- ``Const``: a numpy array and whether it is *quantized* (from a quantizer or integer: imported
  exactly) or *float* (typed by the precision configuration).
- ``Act``: a qir SSA value holding the tensor's real value, the ONNX per-sample shape, the axis
  permutation between ONNX and qir (qir is channels last: an NCHW tensor is stored HWC), and for
  integer tensors (QuantizeLinear outputs) the scale/zero point: code = value / scale + zp.
- ``Pending``: a dense or convolution whose constants can still absorb following linear ops
  (MatMul → Add bias → Mul → BatchNormalization all become one ``qir.dense``/``qir.conv``); it is
  emitted when a non-linear consumer needs it, carrying the ONNX name of its last fused output.

Every op carries ``layer = <ONNX output tensor name with '/' replaced by '_'>`` (auxiliary ops such
as a layout transpose carry the name of the node they serve, before its own op, so the trace of a
layer is always its node's result).

Exactness.  Quantizers with power-of-two scales map to ``qir.quantize`` with the op's rounding mode
and saturation: exact.  Zero points shift the code range (a range that is not a fixed-point range
is clipped exactly with relu/scale ops).  Weights and biases produced by quantizers are imported
exactly.  Float parts (weights, biases, float ``Mul``/``Add`` constants, batch normalization, LUT
activations) follow the precision configuration (``qir.precision``): float constants are rounded to
nearest (ties to even) and saturated to their type; a float layer's exact result is then cast to the
configured ``result`` type with an explicit ``qir.quantize`` (``rnd_conv``, ``sat`` by default;
``result: null`` keeps it exact).

Other scales.  A non-power-of-two scale is a ``QirError`` naming the node, unless
``approximate=True`` (or ``approximate=B`` significant bits; True means ``APPROX_BITS`` = 24).
Every real rescale factor f is then replaced by M0·2^-n, the nearest value with B significant bits
(relative error at most 2^-B; per-channel factors share n, chosen so that the smallest keeps B
bits), computed as an exact ``qir.scale`` before the rounding ``qir.quantize``:

- QuantizeLinear keeps integer codes: codes − zp = clip(rne(x·M0·2^-n)), M0·2^-n ≈ 1/s; a
  DequantizeLinear multiplies by S0·2^-m ≈ s; a QONNX Quant does both (its output is real);
- QLinearMatMul/QLinearConv accumulate exactly on the integer codes (zero points and the int32
  bias included) and requantize with one multiplier per output channel, M0·2^-n ≈ sa·sw/sy
  (gemmlowp/TFLite style); MatMulInteger/ConvInteger give the exact int32 accumulator;
- weights quantized with such scales are float weights (precision configuration).

A code differs from the reference by one step only where the scaled value lies within a relative
2^-B of a rounding boundary (onnxruntime itself rounds acc·M in float32, i.e. 24 bits: with B = 24
the test QOperator network matches it code for code).

Integer outputs (a final QuantizeLinear) are output as their real value scale·(q − zp); the
mantissa is the code minus the zero point.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from xdsl.dialects.builtin import ModuleOp

from qir.errors import QirError
from qir.fixed import Fixed
from qir.precision import PrecisionConfig

from . import onnx_activations, onnx_layout, onnx_linear, onnx_qdq, onnx_qonnx  # noqa: F401  (register the handlers)
from .onnx_graph import prepare
from .onnx_importer import Importer
from .onnx_records import SOFTMAX_MODES, onnx_handler, supported_ops  # noqa: F401  (public API)

if TYPE_CHECKING:
    import onnx


# ------------------------------------------------------------------------------ entry point
def import_onnx(path: str | Path | onnx.ModelProto, *, input_type: Fixed | None = None, softmax: str = "keep",
                precision: PrecisionConfig | Fixed | None = None, approximate: bool | int = False) -> ModuleOp:
    """Import a QONNX, QDQ or float ONNX model into one ``qir.model`` (see the module docstring)."""
    if softmax not in SOFTMAX_MODES:
        raise QirError(f"softmax must be one of {', '.join(SOFTMAX_MODES)}, got {softmax!r}")
    if input_type is not None and not isinstance(input_type, Fixed):
        raise QirError(f"input_type must be a Fixed (e.g. Fixed.parse('fixed<16,6>')), got {input_type!r}")
    if approximate is not False and not (
            approximate is True or (isinstance(approximate, int) and 2 <= approximate <= 48)):
        raise QirError(f"approximate must be False, True or a number of significant bits (2..48), got {approximate!r}")
    if isinstance(precision, Fixed):
        precision = PrecisionConfig.from_type(precision)
    elif precision is not None and not isinstance(precision, PrecisionConfig):
        raise QirError(f"precision must be a Fixed or a PrecisionConfig, got {precision!r}")
    graph = prepare(path if not isinstance(path, (str, PathLike)) else Path(path))  # a file or an onnx.ModelProto
    return Importer(graph, input_type, softmax, precision, approximate).run()
