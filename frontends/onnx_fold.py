"""Constant folding for the ONNX frontend: nodes whose inputs are all constants.

Weight-only subgraphs (a QONNX ``Quant`` or a ``DequantizeLinear`` on an initializer, a
``Transpose``/``Reshape`` of weights, scale arithmetic, ``Shape``→``Gather``→``Concat`` chains that
compute a reshape target) are evaluated here with numpy, in the element types ONNX uses, so the
folded weights are bit-identical to what onnxruntime / the qonnx executor compute.  Each folder is
registered with ``@folder("OpType")``; an op without one cannot be folded (the importer then
reports it as unsupported on constants).

Every folded constant also carries a flag ``quantized``: True when its values come from a
quantizer (QONNX Quant/BipolarQuant/Trunc, Quantize/DequantizeLinear) or are integers, and stay
so through layout ops; such constants are imported exactly, while float constants take their type
from the precision configuration.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from qir.errors import QirError

from . import onnx_quant as oq

Folder = Callable[["FoldNode", list], list]
_FOLDERS: dict[tuple[str, str], Folder] = {}
#: ops whose output is quantized (exact) whatever their inputs
_QUANTIZERS = {"Quant", "IntQuant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear"}
#: ops that keep the quantized flag when all their data inputs are quantized
_LAYOUT = {"Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Gather",
           "Slice", "Cast", "Neg", "Expand", "Tile", "Abs", "Relu", "Add", "Sub", "Dropout", "Split"}


class FoldNode:
    """A node with its attributes decoded, for folders."""

    def __init__(self, node: onnx.NodeProto, opset: int, where: str):
        self.node, self.opset, self.where = node, opset, where
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def attr(self, name, default=None):
        v = self.attrs.get(name, default)
        return v.decode() if isinstance(v, bytes) else v


def folder(*op_types: str, domain: str = "onnx"):
    def register(fn: Folder) -> Folder:
        for op in op_types:
            _FOLDERS[(domain, op)] = fn
        return fn
    return register


def can_fold(kind: str, op_type: str) -> bool:
    return (kind, op_type) in _FOLDERS


def fold(kind: str, node: onnx.NodeProto, opset: int, inputs: list, quantized: list[bool],
         where: str) -> list[tuple[np.ndarray, bool]]:
    """Evaluate a node on constant inputs: [(array, quantized)] per output."""
    fn = _FOLDERS[(kind, node.op_type)]
    fnode = FoldNode(node, opset, where)
    try:
        outs = fn(fnode, inputs)
    except QirError as e:
        raise e.located(where) from None
    except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError) as e:
        raise QirError(f"cannot evaluate this node on its constant inputs "
                       f"({type(e).__name__}: {' '.join(str(e).split())[:200]})", where=where) from None
    op = node.op_type
    if op in _QUANTIZERS:
        q = True
    elif op in _LAYOUT:
        data = [qz for i, qz in enumerate(quantized) if i == 0 or op in ("Concat", "Add", "Sub")]
        q = all(data) if data else False
    elif op in ("Mul", "Div"):
        a, b = inputs[0], inputs[1]
        qa, qb = quantized[0], quantized[1]
        q = (qa and (qb or oq.is_po2(b))) or (op == "Mul" and qb and oq.is_po2(a))
    elif op in ("Constant", "Shape", "Size", "ConstantOfShape", "Range"):
        q = True  # only integer-valued results matter here; float Constants are checked below
    else:
        q = False
    result = []
    for arr in outs:
        arr = np.asarray(arr)
        qq = q or oq.is_int_array(arr)
        if op == "Constant" and arr.dtype.kind == "f":
            qq = False
        result.append((arr, qq))
    return result


def _ints(a) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


@folder("Identity", "Dropout")
def _identity(n, ins):
    return [ins[0]]


@folder("Constant")
def _constant(n, ins):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in n.attrs:
            v = n.attrs[key]
            if isinstance(v, onnx.TensorProto):
                return [numpy_helper.to_array(v)]
            if key.startswith("value_float"):
                return [np.asarray(v, dtype=np.float32)]
            return [np.asarray(v, dtype=np.int64)]
    raise QirError("Constant node without a supported value attribute (value, value_float(s), value_int(s))")


@folder("Cast")
def _cast(n, ins):
    to = n.attr("to")
    return [np.asarray(ins[0]).astype(onnx.helper.tensor_dtype_to_np_dtype(to))]


@folder("Reshape")
def _reshape(n, ins):
    x = np.asarray(ins[0])
    shape = _ints(ins[1]) if len(ins) > 1 else list(n.attr("shape"))
    if not n.attr("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


@folder("Flatten")
def _flatten(n, ins):
    x = np.asarray(ins[0])
    axis = n.attr("axis", 1) % max(x.ndim, 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


@folder("Transpose")
def _transpose(n, ins):
    perm = n.attr("perm")
    return [np.transpose(ins[0], perm)]


@folder("Squeeze")
def _squeeze(n, ins):
    axes = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else n.attr("axes")
    x = np.asarray(ins[0])
    return [np.squeeze(x, axis=tuple(axes)) if axes is not None else np.squeeze(x)]


@folder("Unsqueeze")
def _unsqueeze(n, ins):
    axes = _ints(ins[1]) if len(ins) > 1 else list(n.attr("axes"))
    x = np.asarray(ins[0])
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = np.expand_dims(x, a)
    return [x]


@folder("Concat")
def _concat(n, ins):
    return [np.concatenate([np.asarray(i) for i in ins], axis=n.attr("axis"))]


@folder("Gather")
def _gather(n, ins):
    return [np.take(np.asarray(ins[0]), np.asarray(ins[1]).astype(np.int64), axis=n.attr("axis", 0))]


@folder("Slice")
def _slice(n, ins):
    x = np.asarray(ins[0])
    if len(ins) > 1:
        starts, ends = _ints(ins[1]), _ints(ins[2])
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = _ints(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    else:
        starts, ends = list(n.attr("starts")), list(n.attr("ends"))
        axes = list(n.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        idx[a % x.ndim] = slice(s, e, st)
    return [x[tuple(idx)]]


@folder("Shape")
def _shape(n, ins):
    shape = np.asarray(np.shape(ins[0]), dtype=np.int64)
    start, end = n.attr("start", 0), n.attr("end", None)
    return [shape[start:end]]


@folder("Size")
def _size(n, ins):
    return [np.asarray(np.size(ins[0]), dtype=np.int64)]


def _bounded(shape: list[int]) -> list[int]:
    """A shape a folder is about to allocate: non-negative, at most qir.safety.MAX_TENSOR_ELEMENTS."""
    from qir.safety import MAX_TENSOR_ELEMENTS

    count = 1
    for d in shape:
        count *= max(int(d), 0)
    if any(int(d) < 0 for d in shape) or count > MAX_TENSOR_ELEMENTS:
        raise QirError(f"the node would build a constant of shape {list(shape)} ({count} elements, limit "
                       f"{MAX_TENSOR_ELEMENTS}); the file is broken or the model far too large")
    return list(shape)


@folder("ConstantOfShape")
def _constant_of_shape(n, ins):
    v = n.attrs.get("value")
    val = numpy_helper.to_array(v) if v is not None else np.zeros(1, dtype=np.float32)
    return [np.full(_bounded(_ints(ins[0])), val.reshape(-1)[0], dtype=val.dtype)]


@folder("Expand")
def _expand(n, ins):
    x = np.asarray(ins[0])
    target = _ints(ins[1])
    _bounded(list(np.broadcast_shapes(x.shape, tuple(max(d, 0) for d in target))))
    return [x * np.ones(target, dtype=x.dtype)]


@folder("Tile")
def _tile(n, ins):
    reps = _ints(ins[1])
    x = np.asarray(ins[0])
    _bounded([a * b for a, b in zip((1,) * (len(reps) - x.ndim) + x.shape, reps)] + list(x.shape[len(reps):]))
    return [np.tile(x, reps)]


def _binary(fn):
    def run(n, ins):
        a, b = np.asarray(ins[0]), np.asarray(ins[1])
        return [fn(a, b).astype(np.result_type(a.dtype, b.dtype))]
    return run


folder("Add")(_binary(np.add))
folder("Sub")(_binary(np.subtract))
folder("Mul")(_binary(np.multiply))
folder("Pow")(_binary(np.power))


@folder("Div")
def _div(n, ins):
    a, b = np.asarray(ins[0]), np.asarray(ins[1])
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return [np.trunc(a / b).astype(np.result_type(a, b))]
    return [(a / b).astype(np.result_type(a.dtype, b.dtype))]


def _unary(fn):
    def run(n, ins):
        a = np.asarray(ins[0])
        return [fn(a).astype(a.dtype)]
    return run


folder("Neg")(_unary(np.negative))
folder("Abs")(_unary(np.abs))
folder("Sqrt")(_unary(np.sqrt))
folder("Reciprocal")(_unary(np.reciprocal))
folder("Relu")(_unary(lambda a: np.maximum(a, 0)))
folder("Floor")(_unary(np.floor))
folder("Ceil")(_unary(np.ceil))
folder("Round")(_unary(np.round))
folder("Log")(_unary(np.log))
folder("Exp")(_unary(np.exp))


@folder("MatMul")
def _matmul(n, ins):
    return [np.matmul(ins[0], ins[1])]


@folder("Clip")
def _clip(n, ins):
    x = np.asarray(ins[0])
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else n.attr("min", None)
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else n.attr("max", None)
    return [np.clip(x, lo, hi).astype(x.dtype)]


@folder("Range")
def _range(n, ins):
    start, limit, delta = (np.asarray(ins[k]).item() for k in range(3))
    if delta == 0:
        raise QirError("Range with delta 0")
    _bounded([max(int(np.ceil((limit - start) / delta)), 0)])
    return [np.arange(np.asarray(ins[0]).item(), np.asarray(ins[1]).item(), np.asarray(ins[2]).item())]


# ------------------------------------------------------------------------ quantizers
def _qonnx_int_attrs(n):
    return int(n.attr("signed", 1)), int(n.attr("narrow", 0)), str(n.attr("rounding_mode", "ROUND"))


def _scalar_int(v, what: str) -> int:
    a = np.asarray(v)
    if a.size != 1 or float(a.reshape(-1)[0]) != int(a.reshape(-1)[0]):
        raise QirError(f"{what} must be a scalar integer, got {a.reshape(-1)[:4]}")
    return int(a.reshape(-1)[0])


@folder("Quant", "IntQuant", domain="qonnx")
def _quant(n, ins):
    signed, narrow, mode = _qonnx_int_attrs(n)
    bits = _scalar_int(ins[3], "bitwidth")
    return [oq.int_quant(ins[0], ins[1], ins[2], bits, bool(signed), bool(narrow), mode)]


@folder("BipolarQuant", domain="qonnx")
def _bipolar(n, ins):
    return [oq.bipolar_quant(ins[0], ins[1])]


@folder("Trunc", domain="qonnx")
def _trunc(n, ins):
    mode = str(n.attr("rounding_mode", "FLOOR"))
    if n.opset >= 2:
        return [oq.trunc(ins[0], ins[1], ins[2], ins[3], ins[4], 2, mode, bool(n.attr("signed", 1)),
                         bool(n.attr("narrow", 0)), ins[5])]
    return [oq.trunc(ins[0], ins[1], ins[2], ins[3], ins[4], 1, mode)]


@folder("MultiThreshold", domain="qonnx")
def _multithreshold(n, ins):
    x, t = np.asarray(ins[0], dtype=np.float32), np.asarray(ins[1], dtype=np.float32)
    last = str(n.attr("data_layout", "NCHW")).endswith("C")
    vm = x if last else np.moveaxis(x, 1, -1)
    cnt = np.count_nonzero(vm[..., None] >= t, axis=-1).astype(np.float32)
    if not last:
        cnt = np.moveaxis(cnt, -1, 1)
    return [(np.float32(n.attr("out_scale", 1.0)) * cnt + np.float32(n.attr("out_bias", 0.0))).astype(np.float32)]


def _ql_params(n, ins, x_shape):
    axis = n.attr("axis", 1)
    block = n.attr("block_size", 0)
    scale = np.asarray(ins[1])
    zp = ins[2] if len(ins) > 2 and ins[2] is not None else None
    if block:
        reps = [1] * len(x_shape)
        reps[axis % len(x_shape)] = block
        scale = np.repeat(scale, block, axis=axis % len(x_shape))
        zp = np.repeat(np.asarray(zp), block, axis=axis % len(x_shape)) if zp is not None else None
    scale = oq.channel_param(scale, x_shape, axis)
    return axis, scale, zp


@folder("QuantizeLinear")
def _quantize_linear(n, ins):
    x = np.asarray(ins[0])
    _, scale, zp = _ql_params(n, ins, x.shape)
    if zp is not None:
        dtype = np.asarray(zp).dtype
        zpv = oq.channel_param(np.asarray(zp).astype(np.int64), x.shape, n.attr("axis", 1))
    else:
        to = n.attr("output_dtype", 0) or onnx.TensorProto.UINT8
        dtype = onnx.helper.tensor_dtype_to_np_dtype(to)
        zpv = np.int64(0)
    lo, hi = oq.ql_range(dtype)
    q = oq.quantize_linear(x, scale, zpv, lo, hi)
    return [q.astype(dtype)]


@folder("DequantizeLinear")
def _dequantize_linear(n, ins):
    x = np.asarray(ins[0]).astype(np.int64)
    _, scale, zp = _ql_params(n, ins, x.shape)
    zpv = oq.channel_param(np.asarray(zp).astype(np.int64), x.shape, n.attr("axis", 1)) if zp is not None else 0
    return [oq.dequantize_linear(x, scale, zpv)]
