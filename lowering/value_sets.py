"""Value-set analysis: which codes an SSA value can take, proven by enumeration.

For a value ``v``, ``chain_to_source`` walks back through unary element-wise ops
(ops with the ``Elementwise`` trait: each output element depends on the same input element alone, with per-channel
constants on the last axis) to a *source* whose reachable codes are enumerable: the codes of its
type (at most ``MAX_CODES``), or the known output codes of a ``qir.xnor`` or ``qir.threshold``.  ``element_tables``
then evaluates the chain with the reference interpreter's own op functions on a batch array of
shape (K, *shape) whose row k holds each element's k-th source code, so per element it yields
the table f: source code -> value of ``v`` (per-channel constants broadcast exactly as in a normal
evaluation).  The set of values per element is therefore exactly the image of the source's
reachable codes, a superset of what ``v`` can really take only where the source's own set is.

Stream level (``--io stream``): a ``qir.map``/``qir.join`` body's input is a beat of the op's
operand, so its codes are, per beat element (channel), the union over all beats of that
operand's codes; the operand's own codes come from the ops that only move codes around
(``qir.window``: the interpreter's im2col on the code rows, so a padded tap adds ``fill``;
``qir.collect``, ``qir.reshape``, ``qir.transpose``; ``qir.pad`` adds 0), a ``qir.reduce max``
(max of one code per input: the union, cut below the largest minimum), and a ``qir.map``/
``qir.join`` result (the body's output codes on every beat), each analysed the same way back to
an enumerable source.

``two_valued(v)`` is the use of it here: ``(lo, hi)`` when every element of ``v`` can only be
``lo`` or ``hi`` (the same two codes for all elements; a binary activation), else ``None``.
"""
from __future__ import annotations

import numpy as np
from xdsl.ir import Operation, SSAValue

from qir.dialect import (
    Elementwise,
    InputOp,
    ModelOp,
    PadOp,
    ReduceOp,
    ReshapeOp,
    ThresholdOp,
    TransposeOp,
    XnorOp,
    elem,
    shape_of,
)
from qir.dialect.stream_ops import CollectOp, JoinOp, MapOp, StreamMvuOp, WindowOp


def elementwise(op) -> bool:
    """Whether output element e of ``op`` is a function of input element e alone (constants per
    channel): the ``Elementwise`` trait of the op."""
    return isinstance(op, Operation) and op.has_trait(Elementwise)

#: largest number of source codes enumerated
MAX_CODES = 1 << 16
#: largest batch (source codes x elements) evaluated
MAX_ENTRIES = 1 << 22
#: largest total (source codes x elements) ``two_valued`` evaluates, in batches of at most
#: ``MAX_ENTRIES``: a 256-wide 16-bit batchnorm result before a binary activation (the BNNs of
#: issue #12: 2^24) is proven in about a second
MAX_WORK = 1 << 26


def _reaches(op) -> bool:
    """``op`` states the codes its result can take (``reachable()``): a ``qir.xnor``, a
    ``qir.threshold``, an xnor ``qir.stream_mvu``."""
    return isinstance(op, (XnorOp, ThresholdOp)) or (isinstance(op, StreamMvuOp) and op.is_xnor)


def _codes_count(v: SSAValue, cap: int = MAX_ENTRIES) -> int | None:
    """How many source codes enumerating ``v`` takes (the batch size K), None beyond the caps
    (``cap``: codes x elements)."""
    shape = shape_of(v.type)
    size = int(np.prod(shape)) if shape else 1
    if _reaches(v.owner):
        k = max((len(c) for c in v.owner.reachable()), default=1)
    else:
        t = elem(v.type)
        k = t.max_int - t.min_int + 1
        if k > MAX_CODES:
            return None
    return k if k * size <= cap else None


def source_codes(v: SSAValue) -> np.ndarray | None:
    """(K, *shape) array whose row k holds each element's k-th reachable code of ``v`` (rows
    repeat an element's last code when it has fewer), or None when not enumerable."""
    k = _codes_count(v)
    if k is None:
        return None
    shape = shape_of(v.type)
    if _reaches(v.owner):
        per = v.owner.reachable()
        rows = np.array([[c[min(r, len(c) - 1)] for c in per] for r in range(k)], dtype=np.int64)
        return rows.reshape((k,) + shape)
    t = elem(v.type)
    codes = np.arange(t.min_int, t.max_int + 1, dtype=np.int64)
    return np.broadcast_to(codes.reshape((k,) + (1,) * len(shape)), (k,) + shape).copy()


def _chain(v: SSAValue) -> tuple[list[Operation], SSAValue]:
    """(the unary element-wise ops from the furthest value back up to ``v``, first op first;
    that furthest value)."""
    chain: list[Operation] = []
    cur = v
    while elementwise(cur.owner):
        chain.insert(0, cur.owner)
        cur = cur.owner.operands[0]
    return chain, cur


def chain_to_source(v: SSAValue) -> list[Operation] | None:
    """The unary element-wise ops from the furthest enumerable source up to ``v`` (first op
    first; [] when only ``v`` itself is enumerable), None when no value on the way is."""
    return _source_and_chain(v)[1]


def _padded_rows(sets: list[np.ndarray], shape: tuple) -> np.ndarray | None:
    """(K, *shape) rows from per-element sorted code arrays (row-major), each repeating its last
    code; None beyond the caps."""
    k = max((len(c) for c in sets), default=1)
    if k > MAX_CODES or k * max(len(sets), 1) > MAX_ENTRIES:
        return None
    rows = np.empty((k, len(sets)), dtype=np.int64)
    for e, c in enumerate(sets):
        rows[:, e] = c[np.minimum(np.arange(k), len(c) - 1)]
    return rows.reshape((k,) + tuple(shape))


def _beat_codes(x: SSAValue) -> np.ndarray | None:
    """(K, C) codes of one beat of the stream ``x``: per channel the union over all beats."""
    codes = element_codes(x)
    if codes is None:
        return None
    c = codes.shape[-1] if codes.ndim > 1 else 1
    flat = codes.reshape(-1, c) if codes.ndim > 1 else codes.reshape(-1, 1)
    return _padded_rows([np.unique(flat[:, ch]) for ch in range(c)], (c,))


def _structural_codes(v: SSAValue) -> np.ndarray | None:
    """(K, *shape) codes of ``v`` derived from its producer's operand(s) where the producer only
    moves codes (window, collect, reshape, transpose, pad), selects one of them (reduce max), is a
    map/join (its body's output codes on every beat), or ``v`` is a map/join body's beat input."""
    op = v.owner
    shape = shape_of(v.type)
    size = int(np.prod(shape)) if shape else 1
    if isinstance(op, InputOp):
        model = op.parent_op()
        outer = model.parent_op() if isinstance(model, ModelOp) else None
        if not isinstance(outer, (MapOp, JoinOp)):
            return None
        k = [i.result for i in model.inputs()].index(v)
        return _beat_codes(outer.operands[k])
    if isinstance(op, (MapOp, JoinOp)):
        beat = element_codes(op.model().output().outs[0])
        if beat is not None:  # per element its distinct codes: the body's K source codes often give
            flat = beat.reshape(beat.shape[0], -1)  # two values (a sign after a 12-bit accumulator)
            beat = _padded_rows([np.unique(flat[:, e]) for e in range(flat.shape[1])], beat.shape[1:])
        if beat is None or beat.shape[0] * size > MAX_ENTRIES:
            return None
        return np.broadcast_to(beat.reshape((beat.shape[0],) + (1,) * (len(shape) - 1) + beat.shape[1:]),
                               (beat.shape[0],) + shape).copy()
    if isinstance(op, (WindowOp, CollectOp, ReshapeOp, TransposeOp, PadOp)):
        x = element_codes(op.operands[0])
        if x is None or x.shape[0] * size > MAX_ENTRIES:
            return None
        from qir.interp import evaluate_op

        return np.asarray(evaluate_op(op, [x]), dtype=np.int64)
    if isinstance(op, ReduceOp) and op.kind.data == "max":
        x = element_codes(op.input)
        if x is None:
            return None
        axis = op.axis.value.data + 1
        xs = np.moveaxis(x, axis, 1)  # (K, n, rest...)
        xs = xs.reshape(xs.shape[0], xs.shape[1], -1)
        floor = xs.min(axis=0).max(axis=0)  # the max is at least every input's smallest code
        sets = [np.unique(xs[:, :, e][xs[:, :, e] >= floor[e]]) for e in range(xs.shape[2])]
        return _padded_rows(sets, shape)
    return None


def _source_and_chain(v: SSAValue) -> tuple[np.ndarray | None, list[Operation] | None]:
    """(codes of the furthest enumerable source, the element-wise chain from it up to ``v``)."""
    chain, cur = _chain(v)
    codes = _structural_codes(cur)
    if codes is not None:
        return codes, chain
    for i in range(len(chain) + 1):  # the furthest value with enumerable codes wins
        src = chain[i - 1].results[0] if i else cur
        codes = source_codes(src)
        if codes is not None:
            return codes, chain[i:]
    return None, None


def evaluate_chain(chain: list[Operation], x: np.ndarray) -> np.ndarray:
    """Run ``chain`` with the interpreter's op semantics on the batch ``x``."""
    from qir.interp import evaluate_op

    for op in chain:
        x = evaluate_op(op, [x])
    return x


#: per-query memo of ``element_tables`` (value id -> (value, tables)): a stream DAG's forks and
#: joins reach the same values on several paths; the IR does not change during one query
_memo: dict | None = None


def element_tables(v: SSAValue) -> tuple[np.ndarray, np.ndarray] | None:
    """(source codes, values): two (K, *shape) arrays, row k = each element's k-th source code
    and the value of ``v`` it gives; None when no enumerable source is found."""
    global _memo
    outer = _memo is None
    if outer:
        _memo = {}
    try:
        hit = _memo.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        codes, chain = _source_and_chain(v)
        tables = None if codes is None else (codes, evaluate_chain(chain, codes))
        _memo[id(v)] = (v, tables)
        return tables
    finally:
        if outer:
            _memo = None


def element_codes(v: SSAValue) -> np.ndarray | None:
    """(K, *shape): row k holds each element's k-th reachable code of ``v`` (an element with
    fewer codes repeats one), None when not enumerable."""
    tables = element_tables(v)
    return None if tables is None else np.asarray(tables[1])


def reachable_codes(v: SSAValue) -> list[set[int]] | None:
    """Per element (row-major), the set of codes ``v`` can take; None when not enumerable."""
    tables = element_tables(v)
    if tables is None:
        return None
    vals = tables[1].reshape(tables[1].shape[0], -1)
    return [set(int(a) for a in np.unique(vals[:, e])) for e in range(vals.shape[1])]


def two_valued(v: SSAValue) -> tuple[int, int] | None:
    """(lo, hi) mantissas when every element of ``v`` is provably lo or hi (lo < hi, the same
    pair for all elements), else None."""
    tables = element_tables(v)
    codes = np.unique(tables[1]) if tables is not None else None
    if codes is None or codes.size != 2:  # a source further back, enumerated in batches
        codes = _batched_values(v)
    if codes is None or codes.size != 2:
        return None
    return int(codes[0]), int(codes[1])


def _batched_values(v: SSAValue) -> np.ndarray | None:
    """The sorted values ``v`` can take, enumerating an element-wise chain's source of up to
    ``MAX_WORK`` codes x elements in batches of ``MAX_ENTRIES`` (stops at three values: only
    ``two_valued`` asks); None when no source on the chain is that small."""
    chain, cur = _chain(v)
    for i in range(len(chain) + 1):  # the furthest enumerable value wins
        src = chain[i - 1].results[0] if i else cur
        k = _codes_count(src, MAX_WORK)
        if k is None or _reaches(src.owner):
            continue
        shape = shape_of(src.type)
        size = int(np.prod(shape)) if shape else 1
        t = elem(src.type)
        step = max(1, MAX_ENTRIES // size)
        seen: set[int] = set()
        for a in range(0, k, step):
            codes = np.arange(t.min_int + a, t.min_int + min(a + step, k), dtype=np.int64)
            batch = np.broadcast_to(codes.reshape((-1,) + (1,) * len(shape)), (len(codes),) + shape).copy()
            seen.update(int(c) for c in np.unique(evaluate_chain(chain[i:], batch)))
            if len(seen) > 2:
                break
        return np.array(sorted(seen), dtype=np.int64)
    return None
