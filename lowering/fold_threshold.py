"""``qir-fold-threshold``: a popcount ``qir.xnor`` and the element-wise chain after it become
one thresholded ``qir.xnor``.

For each ``qir.xnor`` without thresholds, the pass follows its result through unary element-wise
ops (the ``Elementwise`` trait: the exact scale of ``qir-lower-dense{style=xnor}``,
a batchnorm ``qir.scale``, its ``qir.quantize``, the sign step ...), each value used by the next op
only.  At every op it evaluates the chain so far with the reference interpreter on p = 0..n_in
(row p = popcount p in every output); where each output's table is a step -- one value for
p < T, another for p >= T (either direction, or constant: T = 0) -- that op's result can be the
thresholded ``qir.xnor`` (below = the table at p = 0, above = the table at p = n_in).  The furthest
such op wins; the chain up to it is erased.  A chain that never becomes a step is left alone.

An xnor ``qir.stream_mvu`` (a binary dense on a flattened stream) gets the same: its popcount
beat feeds a ``qir.map`` whose body starts with the exact scale; the step chain from the body's
input is folded into the ``qir.stream_mvu``'s thresholds, the body keeps the rest (an empty map
is removed).

The same holds after any other value with at most 2^16 codes (a dense/adder-graph accumulator, an
input), evaluated on all its codes per channel: a batchnorm + sign after a non-binary layer
becomes one ``qir.threshold`` (x >= T[c] ? above[c] : below[c]) instead of a constant
multiplication, a rounding and a saturation (``all=false`` keeps those chains).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qir.lowering.value_sets import MAX_CODES, MAX_ENTRIES, elementwise, evaluate_chain
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import OutputOp, ThresholdOp, XnorOp, elem, int_elements, shape_of


def step_thresholds(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(T, below, above) per column of ``table`` (rows p = 0..n) when every column is a step
    (value below for p < T, above for p >= T, T in [0, n + 1]), else None."""
    n1 = table.shape[0]
    ts, below, above = [], [], []
    for col in table.T.tolist():
        changes = [p for p in range(1, n1) if col[p] != col[p - 1]]
        if len(changes) > 1:
            return None
        t = changes[0] if changes else 0
        ts.append(t)
        below.append(col[0])
        above.append(col[-1])
    return np.array(ts, dtype=np.int64), np.array(below, dtype=object), np.array(above, dtype=object)


def _single_user(value) -> Operation | None:
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


def _step_chain(v, rows: np.ndarray):
    """(chain, (T, below, above)) for the longest single-use element-wise chain after ``v`` whose
    value, evaluated on ``rows`` (ascending codes of ``v`` per column), is a step in every
    column; None when there is none."""
    chain: list[Operation] = []
    best = None
    x = rows
    while True:
        user = _single_user(v)
        if not elementwise(user) or user.operands[0] is not v:
            break
        chain.append(user)
        x = evaluate_chain([user], x)
        step = step_thresholds(x)
        if step is not None:
            best = (list(chain), step)
        v = user.results[0]
    return best


def fold(xn: XnorOp) -> bool:
    """Fold the longest foldable chain after ``xn``; True when something changed."""
    if xn.thresholds is not None:
        return False
    n, n_out = xn.n_in, shape_of(xn.output.type)[0]
    rows = np.broadcast_to(np.arange(n + 1, dtype=np.int64)[:, None], (n + 1, n_out)).copy()
    best = _step_chain(xn.output, rows)
    if best is None:
        return False
    chain, (t, below, above) = best
    length, last = len(chain), chain[-1]
    props = dict(xn.properties)
    props.update(thresholds=int_elements(t), below=int_elements(below), above=int_elements(above))
    new = XnorOp.build(operands=[xn.input], result_types=[last.results[0].type], properties=props,
                       attributes=dict(last.attributes))
    Rewriter.insert_op(new, InsertPoint.after(last))
    last.results[0].replace_all_uses_with(new.output)
    for o in reversed(chain[:length]):
        Rewriter.erase_op(o)
    Rewriter.erase_op(xn)
    return True


def fold_stream(sm) -> bool:
    """``fold`` for an xnor ``qir.stream_mvu`` whose one user is a ``qir.map``: the step chain at
    the head of the map's body becomes the op's thresholds."""
    from qir.dialect import InputOp
    from qir.dialect.stream_ops import MapOp, StreamMvuOp
    from qir.ir import layer_of

    if not sm.is_xnor or sm.thresholds is not None:
        return False
    mp = _single_user(sm.output)
    if not isinstance(mp, MapOp):
        return False
    body = mp.model()
    old = body.inputs()[0]
    n, n_out = int(np.prod(shape_of(sm.input.type))), shape_of(sm.output.type)[0]
    rows = np.broadcast_to(np.arange(n + 1, dtype=np.int64)[:, None], (n + 1, n_out)).copy()
    best = _step_chain(old.result, rows)
    if best is None:
        return False
    chain, (t, below, above) = best
    last = chain[-1]
    props = dict(sm.properties)
    props.update(thresholds=int_elements(t), below=int_elements(below), above=int_elements(above))
    new = StreamMvuOp.build(operands=[sm.input], result_types=[last.results[0].type], properties=props,
                            attributes=dict(sm.attributes))
    Rewriter.insert_op(new, InsertPoint.before(sm))
    inp = InputOp(old.port.data, last.results[0].type, layer=layer_of(old))
    Rewriter.insert_op(inp, InsertPoint.before(old))
    last.results[0].replace_all_uses_with(inp.result)
    for o in reversed(chain):
        Rewriter.erase_op(o)
    Rewriter.erase_op(old)
    mp.operands = [new.output]
    Rewriter.erase_op(sm)
    if body.output().outs[0] is inp.result and len(list(body.block.ops)) == 2:  # nothing left: no map
        mp.output.replace_all_uses_with(new.output)
        Rewriter.erase_op(mp)
    return True


def fold_value(v) -> bool:
    """The same for any other value with at most ``MAX_CODES`` codes: the step chain after it
    becomes a per-channel ``qir.threshold`` (tables per channel over all codes of ``v``: the
    element-wise ops act per channel on the last axis)."""
    t_in = elem(v.type)
    shape = shape_of(v.type)
    if not shape:
        return False
    k, c = t_in.max_int - t_in.min_int + 1, shape[-1]
    if k > MAX_CODES or k * c > MAX_ENTRIES or not elementwise(_single_user(v)):
        return False
    codes = np.arange(t_in.min_int, t_in.max_int + 1, dtype=np.int64)
    best = _step_chain(v, np.broadcast_to(codes[:, None], (k, c)).copy())
    if best is None:
        return False
    chain, (t, below, above) = best
    last = chain[-1]
    th = ThresholdOp.build(operands=[v], result_types=[last.results[0].type],
                           properties={"thresholds": int_elements(t + t_in.min_int), "below": int_elements(below),
                                       "above": int_elements(above)},
                           attributes=dict(last.attributes))
    Rewriter.insert_op(th, InsertPoint.after(last))
    last.results[0].replace_all_uses_with(th.output)
    for o in reversed(chain):
        Rewriter.erase_op(o)
    return True


@dataclass(frozen=True)
class FoldThreshold(ModulePass):
    """``all`` (default true): also fold step chains after non-binary values (``fold_value``)."""

    name = "qir-fold-threshold"
    all: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from qir.dialect.stream_ops import StreamMvuOp

        for xn in [o for o in op.walk() if isinstance(o, XnorOp)]:
            fold(xn)
        for sm in [o for o in op.walk() if isinstance(o, StreamMvuOp)]:
            fold_stream(sm)
        if not self.all:
            return
        for o in list(op.walk()):
            if isinstance(o, (XnorOp, OutputOp, ThresholdOp)) or elementwise(o) or o.parent is None:
                continue
            for r in o.results:
                fold_value(r)
