"""``qir-lower-cmvm``: ``qir.cmvm`` of style cmvm/ternary/po2 -> ``qir.addergraph``.

The constant matrix becomes a shared adder graph (``qir.lowering.adder_graph.build``: CSD
digits, common two-term subexpressions shared across all outputs of the layer, shallowest-first
balanced trees, exact widths).  ``depth-slack`` is how many adder levels per output the sharing
may add over the CSD-only balanced tree.  ``target`` (xilinx, the default; ecp5; asic) is the cost
model the search minimizes (``AdderGraph.target_cost``: LUT bits, carry-chain bits, NAND2 area).

With ``fuse=true`` (the default) an activation that follows the product alone -- ``qir.relu``
then ``qir.quantize``, or a lone ``qir.quantize`` -- becomes the addergraph's epilogue, so the
RTL can fold the rounding constant into the offset and share the saturation logic; the values
are unchanged (the interpreter applies the very same relu and quantize).

A folded ``qir.mvu`` with ``impl = "muxgraph"`` becomes ``qir.muxgraph``: R phase adder
graphs merged into one (``qir.lowering.mux_adder_graph``); with ``impl = "digitserial"``
``qir.digitserial``: the adder graph on input digits (``qir.lowering.digit_serial``).  ``mac`` products stay
``qir.cmvm``.  Pipeline stages are left to ``qir-pipeline``.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from qir.lowering.adder_graph import build
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i1
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from qir.addergraph import TARGETS, AdderGraph, to_arrays
from qir.dialect import (
    ADDERGRAPH_STYLES,
    AdderGraphOp,
    CmvmOp,
    MvuOp,
    QuantizeOp,
    ReluOp,
    elem,
    elements_to_numpy,
    fixed_type,
    shape_of,
)
from qir.errors import QirError
from qir.ir import layer_of

#: searched graphs of at most this many matrix entries are kept (``graph_for``): the planner
#: (``qir-fold-auto``) prices R = 1 of layers up to 2^16 weights with the very search that
#: ``qir-lower-cmvm`` then runs on the same matrix
CACHE_MAX_ENTRIES = 1 << 16
#: the cache holds graphs of at most this many matrix entries in all (least recently used out)
CACHE_TOTAL_ENTRIES = 1 << 18
_GRAPHS: OrderedDict = OrderedDict()  # search key -> (entries, AdderGraph)


def search_key(op: CmvmOp, depth_slack: int = 1, target: str = "xilinx") -> tuple:
    """Everything the search result depends on: the matrix and offset (shape and int64 bytes),
    the input type's range and the search options."""
    in_t = elem(op.input.type)
    m, off = elements_to_numpy(op.matrix), elements_to_numpy(op.offset)
    return (m.shape, m.tobytes(), off.shape, off.tobytes(), in_t.min_int, in_t.max_int, depth_slack, target)


def _search(op: CmvmOp, depth_slack: int, target: str) -> AdderGraph:
    in_t = elem(op.input.type)
    (n_in,) = shape_of(op.input.type)
    return build(elements_to_numpy(op.matrix), elements_to_numpy(op.offset), [in_t.min_int] * n_in,
                 [in_t.max_int] * n_in, depth_slack=depth_slack, target=target)


def graph_for(op: CmvmOp, depth_slack: int = 1, target: str = "xilinx") -> AdderGraph:
    """The searched adder graph of ``op``'s matrix; a matrix of at most ``CACHE_MAX_ENTRIES``
    entries searched before with the same key (``search_key``; e.g. by the planner in the same
    compile) is not searched again (the search is deterministic: the same graph)."""
    key = search_key(op, depth_slack, target)
    hit = _GRAPHS.get(key)
    if hit is not None:
        _GRAPHS.move_to_end(key)
        return hit[1]
    g = _search(op, depth_slack, target)
    size = elements_to_numpy(op.matrix).size
    if size <= CACHE_MAX_ENTRIES:
        _GRAPHS[key] = (size, g)
        while sum(e for e, _ in _GRAPHS.values()) > CACHE_TOTAL_ENTRIES:
            _GRAPHS.popitem(last=False)
    return g


def cached_graph(op: CmvmOp, depth_slack: int = 1, target: str = "xilinx") -> AdderGraph | None:
    hit = _GRAPHS.get(search_key(op, depth_slack, target))
    return None if hit is None else hit[1]


#: at least this many non-zero weights in the layers still to search before they are searched
#: in worker processes (forking costs more than it saves on small models)
MIN_PARALLEL_WEIGHTS = 2048
_JOBS: list = []  # (op, depth_slack, target) read by forked search workers


def _search_job(k: int) -> tuple:
    op, depth_slack, target = _JOBS[k]
    return to_arrays(_search(op, depth_slack, target))


def search_workers(n_jobs: int, weights: int) -> int:
    """Search worker processes (``qir.jobs.fork_workers``, ``QIR_SEARCH_JOBS=N``): 1 (search in
    this process) for layers of fewer than ``MIN_PARALLEL_WEIGHTS`` non-zero weights in all."""
    from qir.jobs import fork_workers

    return fork_workers("QIR_SEARCH_JOBS", n_jobs, weights < MIN_PARALLEL_WEIGHTS)


def search_all(ops: list[CmvmOp], depth_slack: int = 1, target: str = "xilinx") -> list:
    """The graph of every op as ``to_arrays``'s (nodes, outputs, offset): cached ones from
    ``graph_for``'s cache, the others searched, in forked worker processes when there are
    several (``search_workers``), largest first.  The search is deterministic, so the result
    does not depend on the number of workers."""
    global _JOBS
    from qir.progress import note

    out: list = [None] * len(ops)
    todo = []
    for k, cm in enumerate(ops):
        g = cached_graph(cm, depth_slack, target)
        if g is not None:
            out[k] = to_arrays(g)
        else:
            todo.append(k)
    nnz = {k: int(np.count_nonzero(elements_to_numpy(ops[k].matrix))) for k in todo}
    n = search_workers(len(todo), sum(nnz.values()))
    if n <= 1:
        for k in todo:
            _note_search(ops[k], note)
            out[k] = to_arrays(graph_for(ops[k], depth_slack, target))
        return out
    import multiprocessing

    order = sorted(todo, key=lambda k: -nnz[k])
    for k in todo:
        _note_search(ops[k], note)
    _JOBS = [(ops[k], depth_slack, target) for k in order]
    try:
        with multiprocessing.get_context("fork").Pool(n) as pool:
            done = pool.map(_search_job, range(len(order)), chunksize=1)
    finally:
        _JOBS = []
    for k, arrays in zip(order, done):
        out[k] = arrays
    return out


def _note_search(cm: CmvmOp, note) -> None:
    m = shape_of(cm.matrix.type) if hasattr(cm.matrix, "type") else None
    note(f"adder graph search: layer {layer_of(cm) or '?'}" + (f" ({m[0]}x{m[1]})" if m and len(m) == 2 else ""))


def _single_user(value) -> Operation | None:
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


@dataclass(frozen=True)
class LowerCmvm(ModulePass):
    name = "qir-lower-cmvm"
    depth_slack: int = 1
    fuse: bool = True
    #: the cost model the search minimizes (``qir.addergraph.TARGETS``): xilinx, ecp5, asic
    target: str = "xilinx"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.depth_slack < 0:
            raise QirError("qir-lower-cmvm: depth-slack must be >= 0")
        if self.target not in TARGETS:
            raise QirError(f"qir-lower-cmvm: unknown target {self.target!r}; use one of {', '.join(TARGETS)}")
        cms = [o for o in op.walk() if isinstance(o, CmvmOp) and o.style.data in ADDERGRAPH_STYLES]
        for cm, arrays in zip(cms, search_all(cms, self.depth_slack, self.target)):
            self._lower(cm, arrays)
        for mv in [o for o in op.walk() if isinstance(o, MvuOp) and o.impl.data == "muxgraph"]:
            from qir.lowering.mux_adder_graph import lower_mvu

            lower_mvu(mv, self.depth_slack, self.target)
        for mv in [o for o in op.walk() if isinstance(o, MvuOp) and o.impl.data == "digitserial"]:
            from qir.lowering.digit_serial import lower_mvu as lower_digits

            lower_digits(mv, self.depth_slack, self.target)

    def _lower(self, cm: CmvmOp, arrays: tuple) -> None:
        props = AdderGraphOp.properties_of_arrays(*arrays)
        props.update(shift=cm.shift, style=cm.style)
        result_type = cm.output.type
        fused: list[Operation] = []
        if self.fuse:
            user = _single_user(cm.output)
            relu = None
            if isinstance(user, ReluOp):
                relu, user = user, _single_user(user.output)
            if isinstance(user, QuantizeOp):
                fused = ([relu] if relu is not None else []) + [user]
                props.update(acc_type=fixed_type(elem(cm.output.type)),
                             relu=IntegerAttr(int(relu is not None), i1),
                             rounding=user.rounding, overflow=user.overflow)
                result_type = user.output.type
        ag = AdderGraphOp.build(operands=[cm.input], result_types=[result_type], properties=props)
        layer = layer_of(cm)
        if layer is not None:
            ag.attributes["layer"] = StringAttr(layer)
        if fused:
            last = fused[-1]
            Rewriter.insert_op(ag, _after(cm))
            last.results[0].replace_all_uses_with(ag.output)
            for o in reversed(fused):
                Rewriter.erase_op(o)
            Rewriter.erase_op(cm)
        else:
            Rewriter.replace_op(cm, ag)


def _after(op: Operation):
    from xdsl.rewriter import InsertPoint

    return InsertPoint.after(op)


def auto_style(matrix) -> str:
    """The automatic implementation style of a constant matrix: ``po2`` when every weight is 0
    or +-2^k, ``ternary`` when all non-zero weights have one magnitude 2^k, else ``cmvm``."""
    mags = {abs(int(v)) for v in np.asarray(matrix, dtype=object).ravel()} - {0}
    if any(v & (v - 1) for v in mags):
        return "cmvm"
    return "ternary" if len(mags) <= 1 else "po2"


def parse_layer_styles(text: str, choices) -> dict[str, str]:
    """``"fc1:mac;fc2:cmvm"`` -> {"fc1": "mac", "fc2": "cmvm"} (``=`` works as well as ``:``)."""
    out: dict[str, str] = {}
    for item in filter(None, (t.strip() for t in text.replace(",", ";").split(";"))):
        name, sep, style = item.replace("=", ":").partition(":")
        if not sep or style.strip() not in choices:
            raise QirError(f"qir-lower-dense: bad per-layer style {item!r}; write layer:style with style one of "
                           f"{', '.join(choices)}")
        out[name.strip()] = style.strip()
    return out
