"""``qir-stream-mvu``: a dense layer on a flattened stream -> ``qir.stream_mvu`` (issue #12).

After ``qir-stream-form`` a Flatten of a stream is a ``qir.collect`` (all N beats as one beat of
N x C elements) and the dense after it heads the ``qir.map`` over that one beat.  The collected
beat is N x C x W bits: a 16384-element 4-bit flatten is beyond an Amaranth signal (2^16 - 1
bits) and even below it costs a shift register of the whole tensor.  This pass replaces
``qir.collect`` + the head dense with ``qir.stream_mvu`` on the stream itself (FINN's MVU: every
beat is multiplied by its slice of the weights, read from a ROM, and accumulated), and leaves the
rest of the map body (relu, quantize, the next dense, ...) in a map over its one result beat.

Which dense layers (``stream_dense``): the first op of a ``qir.map`` body fed by a collect of a
multi-beat stream, or the first after a chain of relu/quantize ops (a QActivation after the
Flatten: they move onto the stream, a ``qir.map`` before the ``qir.stream_mvu``), the body's input
used only by that chain or dense.  They are
rewritten when folded (a ``reuse`` attribute: ``qir-fold-auto`` or a pinned configuration; here
R is the cycles per *beat*, ``qir.folding.stream_fold`` maps it to input chunks x output groups)
or when the collected beat would exceed an Amaranth signal (then at R = 1); without folding a
narrower flatten keeps the fully parallel adder graph.  Style: the dense's ``style`` attribute
(``mac``, ``po2``, ``ternary``; ``cmvm`` -> ``mac``; the precision configuration's ``style``
key) or, for ``auto``, ``xnor`` where ``qir-lower-dense{style=auto}`` would build it (binary
weights on a provably two-valued input, ``qir.lowering.xnor.xnor_plan``), else from the weights
(``qir.folding.auto_fold_style``); the ``layers=`` option of ``qir-lower-dense``, which runs
later, does not reach it.

The ``xnor`` form: ``lower_xnor`` rewrites the dense in the body as ``qir.xnor`` + the exact
``qir.scale`` (+ a wrap ``qir.quantize``) of the parallel lowering; the ``qir.xnor`` becomes the
``qir.stream_mvu`` (style ``xnor``, its weight bits transposed into ``matrix``, popcount result)
and the scale stays at the head of the map after it, where ``qir-fold-threshold`` folds it and a
following batchnorm/sign chain into the ``qir.stream_mvu``'s thresholds as it does for a
``qir.xnor``.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import DenseOp, InputOp, ModelOp, elem, shape_of
from qir.dialect.stream_ops import COLLECT_MAX_BITS, CollectOp, MapOp, StreamMvuOp, is_stream_model
from qir.errors import QirError
from qir.ir import layer_of, reuse_of, style_of

#: element-wise ops that apply the same function to every element, so they may move from the
#: flattened vector onto the stream's beats (a QActivation between the Flatten and the dense)
UNIFORM_OPS = ("qir.relu", "qir.quantize")


def head_chain(body: ModelOp):
    """(chain, dense): the uniform element-wise ops (``UNIFORM_OPS``, each the single user of the
    one before) from the body's input to the dense they feed, or None."""
    v, chain = body.inputs()[0].result, []
    for o in body.block.ops:
        if isinstance(o, InputOp):
            continue
        if len(list(v.uses)) != 1 or list(o.operands) != [v]:
            return None
        if isinstance(o, DenseOp):
            return chain, o
        if o.name not in UNIFORM_OPS:
            return None
        chain.append(o)
        v = o.results[0]
    return None


def stream_dense(dense) -> CollectOp | None:
    """The ``qir.collect`` whose beats ``dense`` can consume beat by beat (module docstring), or
    None.  ``qir-fold-auto`` asks this too, so its cycles per image (beats x R) and estimate
    (``qir.folding.estimate(..., beat=C)``) describe what this pass builds."""
    if not isinstance(dense, DenseOp):
        return None
    body = dense.parent_op()
    mp = body.parent_op() if isinstance(body, ModelOp) else None
    if not isinstance(mp, MapOp) or not isinstance(mp.input.owner, CollectOp):
        return None
    col = mp.input.owner
    head = head_chain(body)
    if head is None or head[1] is not dense or len(list(col.output.uses)) != 1 \
            or prod(shape_of(col.input.type)[:-1]) < 2:
        return None
    return col


def collect_bits(col: CollectOp) -> int:
    """Bits of the one beat a ``qir.collect`` gives."""
    return prod(shape_of(col.input.type)) * elem(col.input.type).width


def _style(dense) -> str | tuple:
    """The folded style, or for ``xnor`` the plan of ``qir.lowering.xnor`` (s, a, lo, hi)."""
    from qir.lowering.xnor import xnor_plan

    st = style_of(dense)
    if st in (None, "auto", "xnor"):
        plan = xnor_plan(dense)
        if not isinstance(plan, str):
            return plan
        if st == "xnor":
            raise QirError(f"qir-stream-mvu: layer '{layer_of(dense)}' cannot use style xnor: {plan}; use style "
                           "ternary, mac or auto for it")
        from qir.folding import auto_fold_style

        return auto_fold_style(dense.folded()[0])
    if st == "cmvm":
        return "mac"
    if st not in ("mac", "po2", "ternary"):
        raise QirError(f"qir-stream-mvu: layer '{layer_of(dense)}' has style {st!r}; a dense on a flattened "
                       "stream uses mac, po2, ternary, xnor, cmvm (as mac) or auto")
    return st


def lower_stream_dense(dense: DenseOp, col: CollectOp) -> StreamMvuOp:
    from qir.lowering.lower_dense import cmvm_from_dense

    from qir.dialect import elements_to_numpy, int_elements
    from qir.folding import stream_fold

    mp = next(iter(col.output.uses)).operation
    body = mp.model()
    chain = head_chain(body)[0]
    style = _style(dense)
    beat, n_out = shape_of(col.input.type)[-1], shape_of(dense.output.type)[0]
    rb, g = stream_fold(beat, n_out, reuse_of(dense))
    common = {"reuse": IntegerAttr(rb, i64), "groups": IntegerAttr(g, i64), "impl": StringAttr("rom")}
    layer = {k: v for k, v in dense.attributes.items() if k == "layer"}
    if isinstance(style, tuple):  # xnor: the qir.xnor of lower_xnor moves out of the body
        from qir.lowering.xnor import lower_xnor

        dense = lower_xnor(dense, style)  # in the body: qir.xnor + scale (+ quantize); the xnor moves out
        bits = elements_to_numpy(dense.weights).T
        zeros = int_elements(np.zeros(n_out, dtype=np.int64))
        sm = StreamMvuOp.build(operands=[col.input], result_types=[dense.output.type],
                               properties={"matrix": int_elements(bits), "offset": zeros,
                                           "shift": IntegerAttr(0, i64), "style": StringAttr("xnor"),
                                           "one": dense.one, "zero": dense.zero, **common}, attributes=layer)
    else:
        cm = cmvm_from_dense(dense, "mac")
        sm = StreamMvuOp.build(operands=[col.input], result_types=[dense.output.type],
                               properties={"matrix": cm.matrix, "offset": cm.offset, "shift": cm.shift,
                                           "style": StringAttr(style), **common}, attributes=layer)
        cm.erase()
    if chain:  # the uniform ops before the dense act on every beat of the stream: a map before it
        from qir.lowering.stream_conv import beat_type, finish_map, new_map

        from qir.names import legalize

        layer = layer_of(chain[0])
        b, block, v = new_map(col.input, legalize(f"{layer or 'flat'}_beat", "m"), layer)
        for o in chain:
            new = type(o).create(operands=[v], result_types=[beat_type(o.results[0].type, beat)],
                                 properties=dict(o.properties), attributes=dict(o.attributes))
            block.add_op(new)
            v = new.results[0]
        pre = finish_map(b, block, v)
        Rewriter.insert_op(pre, InsertPoint.before(mp))
        sm.operands = [pre.output]
    Rewriter.insert_op(sm, InsertPoint.before(mp))
    out = body.output()
    if out.outs[0] is dense.output and len(list(dense.output.uses)) == 1:  # the map was only the dense
        mp.output.replace_all_uses_with(sm.output)
        Rewriter.erase_op(mp)
    else:
        old = body.inputs()[0]
        new = InputOp(old.port.data, dense.output.type, layer=layer_of(old))
        Rewriter.insert_op(new, InsertPoint.before(old))
        dense.output.replace_all_uses_with(new.result)
        for o in [dense, *reversed(chain)]:
            Rewriter.erase_op(o)
        Rewriter.erase_op(old)
        mp.operands = [sm.output]
    Rewriter.erase_op(col)
    return sm


def stream_mvu(model: ModelOp) -> None:
    for mp in [o for o in model.block.ops if isinstance(o, MapOp)]:
        hc = head_chain(mp.model())
        head = hc[1] if hc else None
        col = stream_dense(head)
        if col is None:
            continue
        if "reuse" in head.attributes or collect_bits(col) > COLLECT_MAX_BITS:
            lower_stream_dense(head, col)


@dataclass(frozen=True)
class StreamMvu(ModulePass):
    name = "qir-stream-mvu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for model in [m for m in op.ops if isinstance(m, ModelOp) and is_stream_model(m)]:
            stream_mvu(model)
