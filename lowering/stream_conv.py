"""``qir-stream-conv``: ``qir.conv`` and ``qir.pool`` -> ``qir.window`` + ``qir.map`` (stream level).

A convolution over an H x W x C_in map becomes

    %w = qir.window %x window [kh, kw] strides [..] dilations [..] pads [..] fill 0
                                          (H x W x C_in -> OH x OW x (kh*kw*C_in), one window per beat)
    %y = qir.map %w { qir.model @<layer>_kernel {      (one kernel datapath, reused per position)
           %b = qir.input "beat" : tensor<kh*kw*C_in x T>
           %k = qir.dense %b weights(K)                (K: the (kh*kw*C_in, C_out) kernel matrix;
                                                        zero outside a group for grouped/depthwise convs)
           [qir.quantize wrap]                         (only if the full-window bound needs a wider type
                                                        than the conv's: padded taps are zeros, so exact)
           <the conv's single-use relu/quantize chain>  (fused by qir-lower-cmvm into the adder graph)
           qir.output } }

so ``qir-lower-dense`` / ``qir-lower-cmvm`` / ``qir-fold-threshold`` pick the kernel's style (adder
graph, xnor, mac; the op's ``style`` attribute is kept) exactly as for a dense layer.  Zero padding,
strides and dilation are the window's; the padded map is never materialized.  Max pooling: window
with ``fill`` = the smallest mantissa (padding never wins) and a body ``reshape (taps, C)`` +
``qir.reduce max`` over the taps; average pooling with ``count window`` (or no padding): a dense
body with the multiplier on every tap of its channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import (
    ConvOp,
    DenseOp,
    InputOp,
    ModelOp,
    OutputOp,
    PoolOp,
    QuantizeOp,
    ReduceOp,
    ReluOp,
    ReshapeOp,
    elem,
    int_elements,
    int_values,
    shape_of,
    tensor_of,
)
from qir.dialect.stream_ops import MapOp, WindowOp
from qir.errors import QirError
from qir.exact import build_exact
from qir.ir import layer_of, set_layer
from qir.names import legalize

#: element-wise ops that act on each beat independently (per element or per channel)
BEAT_OPS_NAMES = ("qir.relu", "qir.quantize", "qir.scale", "qir.leaky_relu", "qir.lut", "qir.threshold", "qir.steps")


def _single_user(value: SSAValue) -> Operation | None:
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


def beat_type(t, n: int | None = None):
    """The 1-D beat type of a stream tensor type (last axis), or with ``n`` elements."""
    return tensor_of(elem(t), [shape_of(t)[-1] if n is None else n])


def new_map(x: SSAValue, name: str, layer: str | None) -> _Body:
    """The body under construction of a ``qir.map`` on ``x``; ``finish_map`` builds the op."""
    block = Block()
    inp = InputOp("beat", beat_type(x.type), layer=layer)
    block.add_op(inp)
    return _Body(x, name, layer, block), block, inp.result


class _Body:
    def __init__(self, x: SSAValue, name: str, layer: str | None, block: Block):
        self.x, self.name, self.layer, self.block = x, name, layer, block


def make_map(x: SSAValue, model: ModelOp, layer: str | None) -> MapOp:
    out_t = model.output().outs[0].type
    lead = shape_of(x.type)[:-1]
    m = MapOp.create(operands=[x], result_types=[tensor_of(elem(out_t), [*lead, shape_of(out_t)[-1]])],
                     regions=[Region(Block([model]))])
    return set_layer(m, layer)


def finish_map(body: _Body, block: Block, value: SSAValue) -> MapOp:
    block.add_op(OutputOp(value))
    return make_map(body.x, ModelOp(body.name, Region(block)), body.layer)


def clone_into(o: Operation, block: Block, operands: list[SSAValue], beat: bool) -> Operation:
    """``o`` rebuilt in ``block`` on ``operands``; ``beat``: its result typed per beat."""
    t = o.results[0].type
    props = dict(o.properties)
    if beat and o.name == "qir.concat":  # channels-last concat of streams: along the beat
        props["axis"] = IntegerAttr(0, i64)
    new = type(o).create(operands=operands, result_types=[beat_type(t) if beat else t],
                         properties=props, attributes=dict(o.attributes))
    block.add_op(new)
    return new


def _window(x: SSAValue, window, strides, dilations, pads, fill: int, layer) -> WindowOp:
    ishape = shape_of(x.type)
    from qir.dialect import window_geometry

    out_sp = [o for o, _ in window_geometry(ishape[:-1], window, strides, dilations, pads)]
    arr = lambda v: DenseArrayBase.from_list(i64, list(v))  # noqa: E731
    w = WindowOp.create(operands=[x], result_types=[tensor_of(elem(x.type), [*out_sp, prod(window) * ishape[-1]])],
                        properties={"window": arr(window), "strides": arr(strides), "dilations": arr(dilations),
                                    "pads": arr(pads), "fill": IntegerAttr(fill, i64)})
    return set_layer(w, layer)


def kernel_matrix(op: ConvOp) -> np.ndarray:
    """(taps*C_in, C_out) raw weight mantissas: row (t, c) meets output o when c is in o's group."""
    w = np.asarray(int_values_array(op))
    taps = prod(w.shape[:-2])
    cg, c_out = w.shape[-2], w.shape[-1]
    g = op.groups.value.data
    c_in, og = cg * g, c_out // g
    wt = w.reshape(taps, cg, c_out)
    k = np.zeros((taps, c_in, c_out), dtype=object)
    for o in range(c_out):
        grp = o // og
        k[:, grp * cg:(grp + 1) * cg, o] = wt[:, :, o]
    return k.reshape(taps * c_in, c_out)


def int_values_array(op: ConvOp) -> np.ndarray:
    from qir.dialect import elements_to_numpy

    return elements_to_numpy(op.weights)


def _absorb_chain(op: Operation, block: Block, value: SSAValue) -> tuple[SSAValue, SSAValue, list[Operation]]:
    """Move the single-use relu/quantize chain after ``op`` into ``block``; returns
    (body value, outer value it replaces, moved outer ops)."""
    last, moved = op.results[0], []
    user = _single_user(last)
    while isinstance(user, (ReluOp, QuantizeOp)):
        value = clone_into(user, block, [value], True).results[0]
        moved.append(user)
        last = user.results[0]
        user = _single_user(last)
    return value, last, moved


def _replace(op: Operation, new_ops: list[Operation], last: SSAValue, result: SSAValue, moved) -> None:
    Rewriter.insert_op(new_ops, InsertPoint.before(op))
    last.replace_all_uses_with(result)
    for e in reversed(moved):
        Rewriter.erase_op(e)
    Rewriter.erase_op(op)


def stream_conv(op: ConvOp) -> None:
    layer = layer_of(op)
    ks = tuple(op.weights.get_shape())[:-2]
    win = _window(op.input, ks, int_values(op.strides), int_values(op.dilations), int_values(op.pads), 0, layer)
    m, block, beat = new_map(win.output, legalize(f"{layer or 'conv'}_kernel", "m"), layer)
    props = {"weights": int_elements(kernel_matrix(op)), "weight_type": op.weight_type}
    if op.bias is not None:
        props.update(bias=op.bias, bias_type=op.bias_type)
    value = _kernel_dense(block, beat, props, op, layer, op.attributes.get("style"))
    _finish(op, win, m, block, value)


def _kernel_dense(block: Block, beat: SSAValue, props: dict, op: Operation, layer, style=None) -> SSAValue:
    """The body's ``qir.dense`` (exact type) on ``beat``, then, where the full-window bound is
    wider than ``op``'s result type, a ``wrap`` ``qir.quantize`` back to it: border windows have
    fewer real taps and padded taps are zero, so every actual result lies in that type (exact)."""
    want = beat_type(op.results[0].type)
    d = build_exact(DenseOp, [beat], props, [shape_of(want)[0]])
    set_layer(d, layer)
    if style is not None:  # the conv's style hint (precision configuration)
        d.attributes["style"] = style
    if "reuse" in op.attributes:  # the kernel folded (issue 12, qir.folding)
        d.attributes["reuse"] = op.attributes["reuse"]
    if "impl" in op.attributes:  # its pinned folded implementation
        d.attributes["impl"] = op.attributes["impl"]
    block.add_op(d)
    value = d.output
    if value.type != want:
        q = QuantizeOp.build(operands=[value], result_types=[want],
                             properties={"rounding": StringAttr("trn"), "overflow": StringAttr("wrap")})
        block.add_op(set_layer(q, layer))
        value = q.output
    return value


def _finish(op: Operation, win: WindowOp, m: _Body, block: Block, value: SSAValue) -> None:
    """Absorb ``op``'s relu/quantize chain into the body, build the map, replace ``op``."""
    value, last, moved = _absorb_chain(op, block, value)
    done = finish_map(m, block, value)
    _replace(op, [win, done], last, done.output, moved)


def stream_pool(op: PoolOp) -> None:
    layer = layer_of(op)
    window = int_values(op.window)
    ones = (1,) * len(window)
    t = elem(op.input.type)
    c = shape_of(op.input.type)[-1]
    taps = prod(window)
    if op.kind.data == "max":
        win = _window(op.input, window, int_values(op.strides), ones, int_values(op.pads), t.min_int, layer)
        m, block, beat = new_map(win.output, legalize(f"{layer or 'pool'}_max", "m"), layer)
        r = ReshapeOp.build(operands=[beat], result_types=[tensor_of(t, [taps, c])])
        red = ReduceOp.create(operands=[r.output], result_types=[tensor_of(t, [1, c])],
                              properties={"kind": StringAttr("max"), "axis": IntegerAttr(0, i64)})
        back = ReshapeOp.build(operands=[red.results[0]], result_types=[tensor_of(t, [c])])
        for o in (r, red, back):
            block.add_op(set_layer(o, layer))
        value = back.output
    else:
        if op.count.data != "window" and any(int_values(op.pads)):
            raise QirError(f"qir-stream-conv: average pool {layer!r} divides border windows by their "
                           "valid-tap count; with padding this is not one kernel (use --io parallel)")
        win = _window(op.input, window, int_values(op.strides), ones, int_values(op.pads), 0, layer)
        m, block, beat = new_map(win.output, legalize(f"{layer or 'pool'}_avg", "m"), layer)
        mult = int(op.multipliers()[0 if op.count.data == "window" else taps])
        k = np.zeros((taps, c, c), dtype=object)
        for ch in range(c):
            k[:, ch, ch] = mult
        props = {"weights": int_elements(k.reshape(taps * c, c)), "weight_type": op.multiplier_type}
        value = _kernel_dense(block, beat, props, op, layer)
    _finish(op, win, m, block, value)


@dataclass(frozen=True)
class StreamConv(ModulePass):
    name = "qir-stream-conv"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for model in [m for m in op.ops if isinstance(m, ModelOp)]:
            for o in list(model.block.ops):
                if isinstance(o, ConvOp):
                    stream_conv(o)
                elif isinstance(o, PoolOp):
                    stream_pool(o)
