"""``qir-stream-form``: the rest of a model into stream form; marks it ``io = "stream"``.

After ``qir-stream-conv`` the model holds ``qir.window`` / ``qir.map`` and ordinary ops.  This
pass leaves only the stream-level ops at the top level (``qir.input``, ``qir.window``,
``qir.map``, ``qir.collect``, ``qir.output``):

- a ``qir.reshape`` of a stream (rank >= 2) to 1-D (Flatten) becomes ``qir.collect``;
- element-wise ops on a stream (relu, quantize, scale, leaky_relu, lut, threshold) act per beat:
  they join the body of the ``qir.map`` that produces their operand (or a new map);
- ops on 1-D vectors (dense, the softmax table, ...) form one map over a single beat;
- an add of two streams, or a concat of two streams along the last axis (channels), becomes a
  ``qir.join`` whose body adds/concatenates one beat of each (the fork in front of a value with
  two stream users and the FIFO that re-aligns the branches are hardware, ``rtl/stream_top.py``);
- anything else on a stream (a transpose, an add of three streams, ...) is a QirError naming the
  layer (not supported by ``--io stream`` yet).

Every group of ops must read one outside value and give one value to the outside.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from qir.lowering.stream_conv import BEAT_OPS_NAMES, beat_type, clone_into, make_map, new_map
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import AddOp, ConcatOp, InputOp, ModelOp, OutputOp, ReshapeOp, shape_of
from qir.dialect.stream_ops import IO_ATTR, CollectOp, JoinOp, MapOp, WindowOp
from qir.errors import QirError
from qir.ir import layer_of, set_layer
from qir.names import legalize

_STRUCTURAL = (InputOp, OutputOp, WindowOp, MapOp, JoinOp, CollectOp)


def _where(o: Operation) -> str:
    return f"layer '{layer_of(o)}'" if layer_of(o) else f"'{o.name}'"


@dataclass
class _Group:
    input: SSAValue
    ops: list[Operation] = field(default_factory=list)


def _is_stream(v: SSAValue) -> bool:
    return len(shape_of(v.type)) >= 2


def _materialize(g: _Group) -> None:
    members = set(g.ops)
    outs = [r for o in g.ops for r in o.results if any(u.operation not in members for u in r.uses)]
    if len(outs) != 1:
        raise QirError(f"--io stream: the ops of {_where(g.ops[0])} .. {_where(g.ops[-1])} give "
                       f"{len(outs)} values to the rest of the model; a stream segment needs exactly one")
    stream = _is_stream(g.input)
    src = g.input.owner
    fuse = isinstance(src, MapOp) and all(u.operation in members for u in g.input.uses)
    if fuse:
        model = src.model()
        block = model.block
        out = block.last_op
        mapping = {g.input: out.outs[0]}
        Rewriter.erase_op(out)
    else:
        layer = layer_of(g.ops[0])
        body, block, beat = new_map(g.input, legalize(f"{layer or 'seg'}_{'beat' if stream else 'vector'}", "m"),
                                    layer)
        mapping = {g.input: beat}
    for o in g.ops:
        new = clone_into(o, block, [mapping[v] for v in o.operands], stream)
        for r, nr in zip(o.results, new.results):
            mapping[r] = nr
    block.add_op(OutputOp(mapping[outs[0]]))
    if fuse:
        model.detach()
        m = make_map(src.input, model, layer_of(src))
        Rewriter.insert_op(m, InsertPoint.before(src))
    else:
        m = make_map(g.input, ModelOp(body.name, Region(block)), body.layer)
        Rewriter.insert_op(m, _after(g.input))
    outs[0].replace_all_uses_with(m.output)
    for o in reversed(g.ops):
        Rewriter.erase_op(o)
    if fuse:
        Rewriter.erase_op(src)


def _after(v: SSAValue):
    from xdsl.rewriter import InsertPoint

    return InsertPoint.after(v.owner) if isinstance(v.owner, Operation) else InsertPoint.at_start(v.owner)


def _is_join(o: Operation) -> bool:
    """An add/concat of two different streams (a concat along the last axis only)."""
    if not isinstance(o, (AddOp, ConcatOp)) or len(set(o.operands)) < 2:
        return False
    if len(o.operands) != 2:
        raise QirError(f"--io stream: {_where(o)} ('{o.name}') joins {len(o.operands)} streams; "
                       "only two are supported (use --io parallel)")
    if isinstance(o, ConcatOp) and o.axis.value.data != len(shape_of(o.output.type)) - 1:
        raise QirError(f"--io stream: {_where(o)} concatenates streams along axis {o.axis.value.data}; "
                       "only the last (channel) axis is supported (use --io parallel)")
    return True


def _make_join(o: Operation) -> None:
    block = Block()
    layer = layer_of(o)
    args = [InputOp(n, beat_type(v.type), layer=layer) for n, v in zip(("lhs", "rhs"), o.operands)]
    for a in args:
        block.add_op(a)
    props = dict(o.properties)
    if isinstance(o, ConcatOp):
        props["axis"] = IntegerAttr(0, i64)
    new = type(o).create(operands=[a.result for a in args], result_types=[beat_type(o.output.type)],
                         properties=props, attributes=dict(o.attributes))
    block.add_op(new)
    block.add_op(OutputOp(new.output))
    body = ModelOp(legalize(f"{layer or 'join'}_beat", "m"), Region(block))
    j = JoinOp.create(operands=list(o.operands), result_types=[o.output.type], regions=[Region(Block([body]))])
    Rewriter.replace_op(o, set_layer(j, layer))


def stream_form(model: ModelOp) -> None:
    groups: list[_Group] = []
    joins: list[Operation] = []
    of: dict[SSAValue, _Group] = {}
    for o in list(model.block.ops):
        if isinstance(o, _STRUCTURAL):
            continue
        if isinstance(o, ReshapeOp) and _is_stream(o.input) and len(shape_of(o.output.type)) == 1:
            c = set_layer(CollectOp.create(operands=[o.input], result_types=[o.output.type]), layer_of(o))
            Rewriter.replace_op(o, c)
            continue
        gs = {id(of[v]): of[v] for v in o.operands if v in of}
        ext = [v for v in o.operands if v not in of]
        inputs = {id(g.input) for g in gs.values()} | {id(e) for e in ext}
        if len(gs) > 1 and len(inputs) == 1:  # branches of one value re-joined per beat: one group
            first, *rest = gs.values()
            for g in rest:
                first.ops += g.ops
                for r in (r for x in g.ops for r in x.results):
                    of[r] = first
                groups.remove(g)
            gs = {id(first): first}
        elif len(inputs) > 1 and _is_join(o):  # two streams: a qir.join
            joins.append(o)
            continue
        if len(gs) > 1 or (gs and any(e is not next(iter(gs.values())).input for e in ext)) \
                or (not gs and len({id(e) for e in ext}) != 1):
            raise QirError(f"--io stream: {_where(o)} ('{o.name}') joins several streams; "
                           "add/concat of two streams is not supported yet (use --io parallel)")
        g = next(iter(gs.values())) if gs else None
        if g is None:
            g = _Group(ext[0])
            groups.append(g)
        merge_op = isinstance(o, AddOp) or (isinstance(o, ConcatOp) and
                                            o.axis.value.data == len(shape_of(o.output.type)) - 1)
        if _is_stream(g.input) and not (
                (o.name in BEAT_OPS_NAMES and all(shape_of(r.type) == shape_of(g.input.type) for r in o.results))
                or (merge_op and shape_of(o.output.type)[:-1] == shape_of(g.input.type)[:-1])):
            raise QirError(f"--io stream: {_where(o)} ('{o.name}') on a stream of shape "
                           f"{shape_of(g.input.type)} is not supported (use --io parallel)")
        g.ops.append(o)
        for r in o.results:
            of[r] = g
    for g in groups:
        _materialize(g)
    for o in joins:
        _make_join(o)
    model.attributes[IO_ATTR] = StringAttr("stream")


@dataclass(frozen=True)
class StreamForm(ModulePass):
    name = "qir-stream-form"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for model in [m for m in op.ops if isinstance(m, ModelOp)]:
            stream_form(model)
