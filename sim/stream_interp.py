"""Reference semantics of the stream-level ops (``qir.stream_ops``), registered with the
interpreter's ``@impl``: tensors are whole tensors here; beats only matter to the hardware."""
from __future__ import annotations

import itertools

import numpy as np

from qir.dialect import elem, int_values, shape_of
from qir.fixed import mantissa_array
from qir.sim.interpreter import _padded, evaluate, impl
from qir.stream_ops import CollectOp, MapOp, WindowOp


@impl(WindowOp)
def _window(op: WindowOp, args):
    x = np.asarray(args[0])
    window, strides, dil = int_values(op.window), int_values(op.strides), int_values(op.dilations)
    out_sp = shape_of(op.output.type)[:-1]
    xp = _padded(x, int_values(op.pads), op.fill.value.data)
    views = []
    for t in itertools.product(*map(range, window)):
        sl = tuple(slice(t[d] * dil[d], t[d] * dil[d] + (out_sp[d] - 1) * strides[d] + 1, strides[d])
                   for d in range(len(window)))
        views.append(xp[(slice(None),) + sl])  # (N, out spatial..., C)
    return np.concatenate(views, axis=-1)


@impl(MapOp)
def _map(op: MapOp, args):
    x = np.asarray(args[0])
    n, lead, c = x.shape[0], x.shape[1:-1], x.shape[-1]
    beats = x.reshape(-1, c)
    y = evaluate(op.model(), [beats]).outputs[0]
    return mantissa_array(y, elem(op.output.type).width).reshape((n, *lead, y.shape[-1]))


@impl(CollectOp)
def _collect(op: CollectOp, args):
    x = np.asarray(args[0])
    return x.reshape(x.shape[0], -1)
