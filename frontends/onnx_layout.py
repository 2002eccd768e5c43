"""ONNX layout handlers: Identity/Dropout, Cast, Shape, Reshape, Flatten, Squeeze, Unsqueeze,
Transpose, Concat and Pad (no arithmetic; qir stores tensors channels last).
"""
from __future__ import annotations

import numpy as np
import onnx
from xdsl.dialects.builtin import IntegerAttr, i64

from qir.dialect import ConcatOp, PadOp, ReshapeOp, shape_of, tensor_of
from qir.errors import QirError

from .common import int_array
from .onnx_importer import Importer
from .onnx_records import Act, Const, Node, onnx_handler


# ------------------------------------------------------------------------------ handlers: plumbing
@onnx_handler("Identity", "Dropout")
def _identity(imp: Importer, node: Node) -> None:
    imp.set(node.out, imp.get(node.inputs[0], node))
    if len(node.proto.output) > 1 and node.proto.output[1]:
        raise QirError("Dropout with a mask output is not supported (inference graphs have none)")


@onnx_handler("Cast")
def _cast(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    to = node.attr("to")
    if to in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT32,
              onnx.TensorProto.INT64):
        imp.set(node.out, r)
        return
    raise QirError(f"Cast to {onnx.TensorProto.DataType.Name(to)} of a computed tensor is not supported")


@onnx_handler("Shape")
def _shape(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    shape = np.asarray((1,) + tuple(r.shape), dtype=np.int64)
    imp.set(node.out, Const(shape[node.attr("start", 0):node.attr("end", None)], True))


def _reshape_to(imp: Importer, node: Node, r, target: tuple[int, ...]) -> None:
    """Any reshape of a per-sample tensor to per-sample shape ``target``."""
    if tuple(target) == tuple(r.shape):
        imp.set(node.out, r)
        return
    a = imp.act(node.inputs[0], node) if not isinstance(r, Act) else r
    size = int(np.prod(a.shape))
    nonunit_in = [d for d in a.shape if d != 1]
    nonunit_out = [d for d in target if d != 1]
    if nonunit_in == nonunit_out and a.row_order is None:
        # only unit axes change: the qir value keeps its element order if axes stay in order
        kept = [i for i, d in enumerate(a.shape) if d != 1]
        if [a.perm.index(i) for i in kept] == sorted(a.perm.index(i) for i in kept) or len(kept) <= 1:
            out_perm = tuple(range(len(target)))
            v = a.value
            qtarget = tuple(target)
            if shape_of(v.type) != qtarget:
                v = imp.emit(ReshapeOp.create(operands=[v], result_types=[tensor_of(a.type, qtarget)]), node.out)
            imp.set(node.out, Act(v, tuple(target), out_perm, a.codes, unit=a.unit))
            return
    if len(nonunit_out) <= 1 and len(a.shape) > 1 and a.perm != tuple(range(len(a.shape))):
        # flatten of a permuted (channels-last) tensor: keep the qir order, remember the permutation
        onnx_index = np.arange(size).reshape(a.shape)
        row_order = np.transpose(onnx_index, a.perm).reshape(-1)
        v = imp.emit(ReshapeOp.create(operands=[a.value], result_types=[tensor_of(a.type, (size,))]), node.out)
        if target != (size,):
            v = imp.emit(ReshapeOp.create(operands=[v], result_types=[tensor_of(a.type, tuple(target))]), node.out)
        imp.set(node.out, Act(v, tuple(target), tuple(range(len(target))), a.codes, row_order, (a.qshape, a.perm),
                              a.unit))
        return
    a = imp.onnx_order(a, node.out)
    v = imp.emit(ReshapeOp.create(operands=[a.value], result_types=[tensor_of(a.type, tuple(target))]), node.out)
    imp.set(node.out, Act(v, tuple(target), tuple(range(len(target))), a.codes, unit=a.unit))


def _flat_target(r_shape, axis: int) -> tuple[int, ...]:
    full = (1,) + tuple(r_shape)
    axis = axis % len(full) if axis else 0
    if axis == 0:
        # [1, N*F]: with the batch of one sample that the hardware sees (and that Keras exporters
        # assume), the features of that sample flattened, as for axis 1
        axis = 1
    left = int(np.prod(full[1:axis]))
    right = int(np.prod(full[axis:]))
    return (left, right) if axis > 1 else (right,)


@onnx_handler("Flatten")
def _flatten(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    _reshape_to(imp, node, r, _flat_target(r.shape, node.attr("axis", 1)))


@onnx_handler("Reshape")
def _reshape(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    shape = [int(v) for v in (imp.const(node, 1, "shape").reshape(-1) if len(node.inputs) > 1
                              else node.attr("shape"))]
    if not shape:
        raise QirError("Reshape to a scalar drops the batch axis; not supported")
    # the first target axis is the batch axis (exports carry 1, -1, 0 or their export batch size)
    size = int(np.prod(r.shape))
    if len(shape) == 1:
        raise QirError(f"Reshape to {shape} merges the batch axis into the features; not supported")
    rest = list(shape[1:])
    if not node.attr("allowzero", 0):
        rest = [r.shape[i] if d == 0 and i < len(r.shape) else d for i, d in enumerate(rest)]
    if rest.count(-1) > 1 or (shape[0] == -1 and -1 in rest):
        raise QirError(f"Reshape target {shape} has more than one unknown (-1) dimension")
    if -1 in rest:
        known = int(np.prod([d for d in rest if d != -1]))
        if known <= 0 or size % known:
            raise QirError(f"cannot reshape per-sample shape {r.shape} to {shape}")
        rest[rest.index(-1)] = size // known
    if int(np.prod(rest)) != size or min(rest, default=1) < 1:
        raise QirError(f"cannot reshape per-sample shape {r.shape} to {shape} (element counts differ)")
    _reshape_to(imp, node, r, tuple(rest))


def _axes(imp: Importer, node: Node, rank: int) -> list[int] | None:
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(v) for v in imp.const(node, 1, "axes").reshape(-1)]
    else:
        axes = node.attr("axes")
        if axes is None:
            return None
    return [a % rank for a in axes]


@onnx_handler("Squeeze")
def _squeeze(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    full = (1,) + tuple(r.shape)
    axes = _axes(imp, node, len(full))
    if axes is None:
        axes = [i for i, d in enumerate(full) if d == 1 and i > 0]
    if 0 in axes:
        raise QirError("Squeeze of the batch axis is not supported")
    if any(full[a] != 1 for a in axes):
        raise QirError(f"Squeeze axes {axes} of shape {full} are not all of size 1")
    _reshape_to(imp, node, r, tuple(d for i, d in enumerate(full) if i not in axes and i > 0))


@onnx_handler("Unsqueeze")
def _unsqueeze(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(v) for v in imp.const(node, 1, "axes").reshape(-1)]
    else:
        axes = list(node.attr("axes") or [])
    full = (1,) + tuple(r.shape)
    out_rank = len(full) + len(axes)
    axes = [a % out_rank for a in axes]
    if 0 in axes:
        raise QirError("Unsqueeze in front of the batch axis is not supported")
    out, it = [], iter(full)
    for i in range(out_rank):
        out.append(1 if i in axes else next(it))
    _reshape_to(imp, node, r, tuple(out[1:]))


@onnx_handler("Transpose")
def _transpose(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    a = imp.act(node.inputs[0], node) if not isinstance(r, Act) else r
    a = imp.canonical(a, node.out)
    rank = len(a.shape) + 1
    perm = node.attr("perm") or list(reversed(range(rank)))
    if perm[0] != 0:
        raise QirError(f"Transpose perm {list(perm)} moves the batch axis; not supported")
    p = [int(v) - 1 for v in perm[1:]]  # new ONNX axis j = old ONNX axis p[j]
    inv = list(np.argsort(p))
    new_perm = tuple(int(inv[q]) for q in a.perm)
    new_shape = tuple(a.shape[q] for q in p)
    imp.set(node.out, Act(a.value, new_shape, new_perm, a.codes, unit=a.unit))


@onnx_handler("Concat")
def _concat(imp: Importer, node: Node) -> None:
    acts = [imp.float_act(n, node) for n in node.inputs]
    rank = len(acts[0].shape) + 1
    axis = int(node.attr("axis")) % rank
    if axis == 0:
        raise QirError("Concat along the batch axis is not supported")
    base = imp.canonical(acts[0], node.out)
    acts = [base] + [imp.permute(imp.canonical(a, node.out), base.perm, node.out) for a in acts[1:]]
    qaxis = base.perm.index(axis - 1)
    shape = list(base.shape)
    shape[axis - 1] = sum(a.shape[axis - 1] for a in acts)
    qshape = tuple(shape[i] for i in base.perm)
    values = [a.value for a in acts]
    v = imp.emit(ConcatOp.exact(values, {"axis": IntegerAttr(qaxis, i64)}, qshape), node.out)
    imp.set(node.out, Act(v, tuple(shape), base.perm))


@onnx_handler("Pad")
def _pad(imp: Importer, node: Node) -> None:
    a = imp.canonical(imp.float_act(node.inputs[0], node), node.out)
    mode = str(node.attr("mode", "constant"))
    if mode != "constant":
        raise QirError(f"Pad mode {mode!r} is not supported (only constant zero padding)")
    if len(node.inputs) > 1 and node.inputs[1]:
        pads = [int(v) for v in imp.const(node, 1, "pads").reshape(-1)]
    else:
        pads = [int(v) for v in node.attr("pads")]
    if len(node.inputs) > 2 and node.inputs[2] and np.any(imp.const(node, 2, "constant value") != 0):
        raise QirError("Pad with a nonzero constant value is not supported")
    rank = len(a.shape) + 1
    if len(node.inputs) > 3 and node.inputs[3]:
        axes = [int(v) % rank for v in imp.const(node, 3, "axes").reshape(-1)]
        full = [0] * (2 * rank)
        for i, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[i], pads[len(axes) + i]
        pads = full
    if len(pads) != 2 * rank or pads[0] or pads[rank] or min(pads) < 0:
        raise QirError(f"Pad {pads} pads the batch axis or is negative; not supported")
    begin, end = pads[1:rank], pads[rank + 1:]
    qpads = [begin[p] for p in a.perm] + [end[p] for p in a.perm]
    shape = tuple(d + b + e for d, b, e in zip(a.shape, begin, end))
    qshape = tuple(shape[p] for p in a.perm)
    v = imp.emit(PadOp.create(operands=[a.value], result_types=[tensor_of(a.type, qshape)],
                              properties={"pads": int_array(qpads)}), node.out)
    imp.set(node.out, Act(v, shape, a.perm))
