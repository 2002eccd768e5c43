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

``two_valued(v)`` is the use of it here: ``(lo, hi)`` when every element of ``v`` can only be
``lo`` or ``hi`` (the same two codes for all elements; a binary activation), else ``None``.
"""
from __future__ import annotations

import numpy as np
from xdsl.ir import Operation, SSAValue

from qir.dialect import Elementwise, ThresholdOp, XnorOp, elem, shape_of


def elementwise(op) -> bool:
    """Whether output element e of ``op`` is a function of input element e alone (constants per
    channel): the ``Elementwise`` trait of the op."""
    return isinstance(op, Operation) and op.has_trait(Elementwise)

#: largest number of source codes enumerated
MAX_CODES = 1 << 16
#: largest batch (source codes x elements) evaluated at once
MAX_ENTRIES = 1 << 22
#: largest total (source codes x elements) ``two_valued`` evaluates, in batches of at most
#: ``MAX_ENTRIES``: a 256-wide 16-bit batchnorm result before a binary activation (the BNNs of
#: issue #12: 2^24) is proven in about a second
MAX_WORK = 1 << 26


def _codes_count(v: SSAValue, cap: int = MAX_ENTRIES) -> int | None:
    """How many source codes enumerating ``v`` takes (the batch size K), None beyond the caps
    (``cap``: codes x elements)."""
    shape = shape_of(v.type)
    size = int(np.prod(shape)) if shape else 1
    if isinstance(v.owner, (XnorOp, ThresholdOp)):
        k = max((len(c) for c in v.owner.reachable()), default=1)
    else:
        t = elem(v.type)
        k = t.max_int - t.min_int + 1
        if k > MAX_CODES:
            return None
    return k if k * size <= cap else None


def source_codes(v: SSAValue, cap: int = MAX_ENTRIES, rows: slice | None = None) -> np.ndarray | None:
    """(K, *shape) array whose row k holds each element's k-th reachable code of ``v`` (rows
    repeat an element's last code when it has fewer), or None when not enumerable; ``rows``:
    only those rows."""
    k = _codes_count(v, cap)
    if k is None:
        return None
    shape = shape_of(v.type)
    if rows is not None and not isinstance(v.owner, (XnorOp, ThresholdOp)):
        t = elem(v.type)
        codes = np.arange(t.min_int, t.max_int + 1, dtype=np.int64)[rows]
        return np.broadcast_to(codes.reshape((-1,) + (1,) * len(shape)), (len(codes),) + shape).copy()
    if isinstance(v.owner, (XnorOp, ThresholdOp)):
        per = v.owner.reachable()
        rows = np.array([[c[min(r, len(c) - 1)] for c in per] for r in range(k)], dtype=np.int64)
        return rows.reshape((k,) + shape)
    t = elem(v.type)
    codes = np.arange(t.min_int, t.max_int + 1, dtype=np.int64)
    return np.broadcast_to(codes.reshape((k,) + (1,) * len(shape)), (k,) + shape).copy()


def chain_to_source(v: SSAValue, cap: int = MAX_ENTRIES) -> list[Operation] | None:
    """The unary element-wise ops from the furthest enumerable source up to ``v`` (first op
    first; [] when only ``v`` itself is enumerable), None when no value on the way is."""
    chain: list[Operation] = []
    best: list[Operation] | None = [] if _codes_count(v, cap) is not None else None
    cur = v
    while elementwise(cur.owner):
        op = cur.owner
        chain.insert(0, op)
        cur = op.operands[0]
        if _codes_count(cur, cap) is not None:
            best = list(chain)
    return best


def evaluate_chain(chain: list[Operation], x: np.ndarray) -> np.ndarray:
    """Run ``chain`` with the interpreter's op semantics on the batch ``x``."""
    from qir.interp import evaluate_op

    for op in chain:
        x = evaluate_op(op, [x])
    return x


def element_tables(v: SSAValue) -> tuple[np.ndarray, np.ndarray] | None:
    """(source codes, values): two (K, *shape) arrays, row k = each element's k-th source code
    and the value of ``v`` it gives; None when no enumerable source is found."""
    chain = chain_to_source(v)
    if chain is None:
        return None
    codes = source_codes(chain[0].operands[0] if chain else v)
    return codes, evaluate_chain(chain, codes)


def reachable_codes(v: SSAValue) -> list[set[int]] | None:
    """Per element (row-major), the set of codes ``v`` can take; None when not enumerable."""
    tables = element_tables(v)
    if tables is None:
        return None
    vals = tables[1].reshape(tables[1].shape[0], -1)
    return [set(int(a) for a in np.unique(vals[:, e])) for e in range(vals.shape[1])]


def two_valued(v: SSAValue) -> tuple[int, int] | None:
    """(lo, hi) mantissas when every element of ``v`` is provably lo or hi (lo < hi, the same
    pair for all elements), else None.  Enumerates up to ``MAX_WORK`` source codes x elements,
    ``MAX_ENTRIES`` at a time (only the set of values is kept)."""
    chain = chain_to_source(v, MAX_WORK)
    if chain is None:
        return None
    src = chain[0].operands[0] if chain else v
    k = _codes_count(src, MAX_WORK)
    size = int(np.prod(shape_of(src.type))) or 1
    step = max(1, MAX_ENTRIES // size)
    if isinstance(src.owner, (XnorOp, ThresholdOp)):  # per-element code lists: one batch
        batches = [source_codes(src, MAX_WORK)]
    else:
        batches = (source_codes(src, MAX_WORK, slice(a, a + step)) for a in range(0, k, step))
    seen: set[int] = set()
    for codes in batches:
        seen.update(int(c) for c in np.unique(evaluate_chain(chain, codes)))
        if len(seen) > 2:
            return None
    if len(seen) != 2:
        return None
    lo, hi = sorted(seen)
    return lo, hi
