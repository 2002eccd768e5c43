"""The ``qir`` dialect: fixed-point types and layer-level and dataflow ops.

Types
  ``!qir.fixed<W,I>`` / ``!qir.ufixed<W,I>``  ap_fixed / ap_ufixed (I counts the sign bit),
  used as the element type of builtin tensors: ``tensor<16x!qir.fixed<16,6>>``.

Layer-level ops (what frontends produce; one source layer may become several ops, all carrying
``layer = "<source layer name>"``):
  ``qir.model``     a network: one block of ops, no arguments, ended by ``qir.output``
  ``qir.input``     a model input of a given type
  ``qir.dense``     y = x @ W + b with integer-mantissa weights/bias and their fixed types;
                    the result type must hold the exact result (no rounding, no overflow)
  ``qir.relu``      max(x, 0), same type
  ``qir.quantize``  re-grid to another fixed type with explicit rounding and overflow modes
  ``qir.output``    the model outputs (terminator)

Spatial, elementwise and shape ops (layer level; tensors are NHWC without the batch axis:
``tensor<L x C>`` 1-D, ``tensor<H x W x C>`` 2-D; lists print as ``[a, b]``; ``pads`` are
``[begin_0, .., begin_n-1, end_0, .., end_n-1]`` per spatial/tensor axis, ONNX order):
  ``qir.conv``       N-D convolution: weights (kernel..., C_in/groups, C_out) + weight_type,
                     optional bias (C_out) + bias_type, ``strides``, ``dilations``, zero ``pads``,
                     ``groups`` (depthwise: groups = C_in, C_out = C_in * multiplier, output
                     channel g*M + m); out = (in + pb + pe - d*(k-1) - 1) // s + 1; exact result
  ``qir.pool``       ``kind "max"``: largest valid element per window (padding never wins),
                     result type = input type.  ``kind "avg"``: zero-padded window sum times a
                     constant ``multiplier`` (mantissas + type): ``count "window"`` one
                     multiplier for all windows (count_include_pad; QKeras Q(1/A)), ``count
                     "valid"`` multiplier[k-1] for a window with k elements inside the input;
                     exact result.  Global pooling = window of the full spatial size
  ``qir.scale``      y = x * scale[c] + bias[c] on the last axis ((1,) broadcasts; either may be
                     absent), exact (unfoldable batchnorm, ApplyAlpha, Mul/Add by a constant)
  ``qir.leaky_relu`` y = x >= 0 ? x : alpha[c] * x, alpha mantissas + type, exact
  ``qir.add``        elementwise sum of >= 2 same-shape tensors, binary points aligned, exact
  ``qir.concat``     concatenation on ``axis``; result frac >= every input's, range holds all
  ``qir.reshape``    row-major (NHWC) reinterpretation, same element type (Flatten)
  ``qir.transpose``  result axis i = input axis perm[i], same element type
  ``qir.pad``        zero padding of every axis, same element type
  ``qir.lut``        y = table[x - min_int] (dense i32 of 2^W_in result mantissas, W_in <= 16)
  ``qir.mul``        y = a * b elementwise, b of a's shape or broadcast numpy-style ((1,), (C,),
                     a reduce result); exact, frac = sum of fracs
  ``qir.reduce``     ``kind "sum"|"max"|"maxabs"`` over ``axis``, keepdims (that axis becomes 1);
                     sum/maxabs exact, max keeps the input type

Dataflow ops (what lowering/ produces and rtl/ consumes):
  ``qir.cmvm``      constant-matrix times vector on integer mantissas plus a constant offset,
                    with an implementation ``style`` (mac, ...); result type is exact
  ``qir.reg``       a pipeline register (one clock cycle), with its ``stage`` number
  ``qir.xnor``      binary weights x two-valued input: XNOR + popcount, optionally compared
                    with per-output integer thresholds (a folded batchnorm + sign)
  ``qir.threshold`` per-channel step x >= T ? above : below (a folded batchnorm + sign)
  ``qir.mvu``       a ``qir.cmvm`` folded over ``reuse`` cycles (``impl`` rom or muxgraph)
  ``qir.muxgraph``  a folded constant-matrix product as one time-multiplexed adder graph
  ``qir.digitserial`` a folded constant-matrix product as the unfolded adder graph on D input
                    digits, shift-accumulated

Stream-level ops (``--io stream``; ``stream_ops.py``):
  ``qir.window``    the sliding windows of a feature map (line buffers in hardware)
  ``qir.map``       a nested ``qir.model`` applied to every beat
  ``qir.join``      a nested two-input ``qir.model`` applied to every pair of beats of two streams
  ``qir.collect``   all beats of a tensor as one beat (Flatten)

Semantics are defined by the numpy reference interpreter in ``qir.interp``.
"""
from __future__ import annotations

from xdsl.ir import Dialect

from qir.dialect import dataflow_ops, digitserial_op, layer_ops, muxgraph_op, spatial_ops, stream_ops
from qir.dialect.dataflow_ops import *  # noqa: F403
from qir.dialect.digitserial_op import *  # noqa: F403
from qir.dialect.layer_ops import *  # noqa: F403
from qir.dialect.muxgraph_op import *  # noqa: F403
from qir.dialect.spatial_ops import *  # noqa: F403
from qir.dialect.stream_ops import *  # noqa: F403

# the dialect's one import path: ``from qir.dialect import DenseOp, elem, ...`` (every public name)
from qir.dialect.types import *  # noqa: F403
from qir.dialect.types import FixedType, UFixedType

#: the one xDSL dialect: the ``OPS`` of every op module and the two fixed-point types
QIR = Dialect("qir", [*layer_ops.OPS, *spatial_ops.OPS, *dataflow_ops.OPS, *muxgraph_op.OPS, *digitserial_op.OPS,
                     *stream_ops.OPS],
              [FixedType, UFixedType])
