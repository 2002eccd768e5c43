"""``qir-pipeline``: insert ``qir.reg`` pipeline registers, one stage per constant-matrix layer.

Stages are counted by ``qir.cmvm``/``qir.dense``/``qir.conv``/``qir.xnor`` ops on the longest path
from the inputs: stage(input)
= 0, an arithmetic layer op is one stage later than its latest operand, every other op lives in
the stage of its latest operand.  A value produced in stage a and used in stage b > a crosses
b - a registers; every model output is registered once at the end of the last stage, so the
latency is the number of stages (at least 1; 0 only where an output is an input unchanged).
Inputs feed the first stage combinationally.  Every input->output path crosses the same number
of registers, which the RTL generator relies on.

With ``max-depth=D`` (or ``latency=L``, which picks the smallest D giving at most L cycles)
registers go by delay budget instead: at most D adder levels run between two registers.
``qir.addergraph`` ops are cut inside (their ``stages``/``latency`` properties; only values
crossing a cut are registered); other ops count as levels (an element-wise op 1, a
``qir.cmvm``/``qir.dense``/``qir.conv`` its balanced-tree depth, a ``qir.xnor`` its popcount
tree depth plus one for a threshold compare) and a ``qir.reg`` goes before an
op that would exceed the budget.  The output is registered once, as above.

A folded layer (``reuse`` > 1: ``qir.mvu``, a folded ``qir.xnor``; its ``cycles()``) has R
internal registers: its result is R stages after its operands' stage (R levels of a new stage
after that: 0, or 1 for a threshold compare).

Delay-budget details: stages are 1-based as in the default mode: model inputs live in stage 1, a
value made in stage a and read in stage b > a crosses b - a ``qir.reg``, and the outputs get one
final register, so the latency is the last stage's number.  Within a stage at most D adder levels
run: every value carries (stage, level), ``qir.addergraph`` nodes at level l + depth go to stage
``(l + depth - 1) // D`` of the op (the op's ``stages``/``latency`` properties), other ops add
their level count (``levels()`` of the op, else 1) and move to the next stage first if they would
exceed D.  Both modes plan stages, then one loop inserts the registers (``_insert_registers``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import AdderGraphOp, InputOp, LayerStage, ModelOp, OutputOp, RegOp, int_elements
from qir.errors import QirError
from qir.ir import layer_of, set_layer


def _reg_chain(value: SSAValue, first: int, last: int, after: Operation) -> SSAValue:
    """Registers ending stages first..last after ``after``; returns the delayed value."""
    layer = layer_of(value.owner) if isinstance(value.owner, Operation) else None
    for stage in range(first, last + 1):
        reg = RegOp.build(operands=[value], result_types=[value.type],
                          properties={"stage": IntegerAttr(stage, i32)})
        set_layer(reg, layer)
        Rewriter.insert_op(reg, InsertPoint.after(after))
        value, after = reg.output, reg
    return value


@dataclass(frozen=True)
class Pipeline(ModulePass):
    name = "qir-pipeline"
    max_depth: int | None = None
    latency: int | None = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for key, v in (("max-depth", self.max_depth), ("latency", self.latency)):
            if v is not None and v < 1:
                raise QirError(f"qir-pipeline: {key}={v} is not a positive number of "
                               f"{'adder levels' if key == 'max-depth' else 'cycles'}; give {key}=1 or more, "
                               "or no option for one stage per layer")
        if self.max_depth is not None and self.latency is not None:
            raise QirError("qir-pipeline: give max-depth or latency, not both")
        from qir.dialect.stream_ops import is_stream_model

        for model in [m for m in op.walk() if isinstance(m, ModelOp)]:
            if is_stream_model(model):
                continue  # stream level: each qir.map body (a model itself) is pipelined instead
            if any(isinstance(o, RegOp) for o in model.block.ops):
                raise QirError("qir-pipeline: the model already has qir.reg ops; run it once, on unpipelined IR")
            if self.max_depth or self.latency:
                pipeline_by_depth(model, self.max_depth or 0, self.latency or 0)
            else:
                self._pipeline(model)

    def _pipeline(self, model: ModelOp) -> None:
        stage: dict[SSAValue, int] = {}
        uses: list[tuple[Operation, int, int]] = []  # (user, operand index, stage needed there)
        for o in model.block.ops:
            if isinstance(o, InputOp):
                stage[o.result] = 0
                continue
            s = max((max(stage[v], 1) for v in o.operands), default=1)
            if o.has_trait(LayerStage):
                s = max((stage[v] for v in o.operands), default=0) + 1
            if isinstance(o, OutputOp):
                s = max((max(stage[v], 1) for v in o.operands), default=1) + 1
                if all(stage[v] == 0 for v in o.operands):
                    s = 0  # no arithmetic at all: combinational
            for i in range(len(o.operands)):
                uses.append((o, i, s))
            for r in o.results:
                stage[r] = s + _cycles(o)
        _insert_registers(uses, lambda v: max(stage[v], 1))


def _insert_registers(uses: list[tuple[Operation, int, int]], stage_of: Callable[[SSAValue], int]) -> None:
    """Delay every operand use (user, operand index, stage needed there) from the stage its value
    has (``stage_of``) to the stage needed, sharing one register chain per (value, stage)."""
    chains: dict[tuple[SSAValue, int], SSAValue] = {}
    for user, i, need in uses:
        v = user.operands[i]
        have = stage_of(v) if need else 0
        if need <= have:
            continue
        key = (v, need)
        if key not in chains:
            after = v.owner if isinstance(v.owner, Operation) else None
            chains[key] = _reg_chain(v, have, need - 1, after)
        user.operands[i] = chains[key]


# ------------------------------------------------------------------ delay-budget mode
#: adder levels charged for a fused epilogue (rounding/relu/saturation logic)
EPILOGUE_LEVELS = 1


def _cycles(o: Operation) -> int:
    """Internal registers of an op (a folded layer's R: ``cycles()``), else 0."""
    c = getattr(o, "cycles", None)
    return c() if callable(c) else 0


def _op_levels(o: Operation) -> int:
    """Adder levels of an op that is not cut inside: its ``levels()`` (products: balanced-tree
    depth; popcounts: tree depth plus the compare), else 1."""
    levels = getattr(o, "levels", None)
    return levels() if callable(levels) else 1


def _addergraph_plan(op: AdderGraphOp, level: int, d: int):
    """(node stages, output stages, latency, level after) for inputs arriving at ``level``."""
    g = op.graph()
    lev = [level + dp for dp in g.depth]
    node_st = [max(0, (lev[k] - 1) // d) for k in range(g.n_in, g.n_nodes)]
    epi = EPILOGUE_LEVELS if op.acc_type is not None else 0
    outs = []
    for j, k in enumerate(g.onode):
        e = (lev[k] if k >= 0 else level) + g.out_extra_depth(j) + epi
        outs.append(max(node_st[k - g.n_in] if k >= g.n_in else 0, (e - 1) // d if e else 0))
    lat = max(outs, default=0)
    end = max(((lev[k] if k >= 0 else level) + g.out_extra_depth(j) + epi for j, k in enumerate(g.onode)),
              default=level)
    return node_st, lat, max(end - lat * d, 0)


def plan(model: ModelOp, d: int):
    """Stage assignment for budget ``d``: (stage per value, operand uses, addergraph plans, latency)."""
    when: dict[SSAValue, tuple[int, int]] = {}
    uses: list[tuple[Operation, int, int]] = []
    ag: dict[AdderGraphOp, tuple[list[int], int]] = {}
    latency = 0
    for o in model.block.ops:
        if isinstance(o, InputOp):
            when[o.result] = (1, 0)
            continue
        if isinstance(o, OutputOp):
            last = max((when[v][0] for v in o.operands), default=1)
            if all(isinstance(v.owner, InputOp) for v in o.operands):
                for i, _ in enumerate(o.operands):
                    uses.append((o, i, 0))
                latency = 0
            else:
                for i, _ in enumerate(o.operands):
                    uses.append((o, i, last + 1))
                latency = last
            break
        s = max((when[v][0] for v in o.operands), default=1)
        lvl = max((when[v][1] for v in o.operands if when[v][0] == s), default=0)
        if isinstance(o, AdderGraphOp):
            if lvl >= d:
                s, lvl = s + 1, 0
            node_st, lat, after = _addergraph_plan(o, lvl, d)
            ag[o] = (node_st, lat)
            res = (s + lat, after)
        else:
            n = _op_levels(o)
            if lvl + n > d and lvl > 0:
                s, lvl = s + 1, 0
            c = _cycles(o)
            # a folded layer: its result is a register c cycles later (then a threshold compare)
            res = (s + c, 1 if getattr(o, "thresholds", None) is not None else 0) if c else (s, lvl + n)
        for i, _ in enumerate(o.operands):
            uses.append((o, i, s))
        for r in o.results:
            when[r] = res
    return when, uses, ag, latency


def pipeline_by_depth(model: ModelOp, max_depth: int, target_latency: int) -> None:
    if max_depth:
        d = max_depth
    else:
        d = None
        for cand in range(1, 257):
            if plan(model, cand)[3] <= target_latency:
                d = cand
                break
        if d is None:
            folded = sum(_cycles(o) for o in model.block.ops)
            why = f" (its folded layers alone take {folded} cycles: reuse R each)" if folded else ""
            raise QirError(f"qir-pipeline: no depth budget reaches latency {target_latency}{why}")
    when, uses, ag, _ = plan(model, d)
    for o, (node_st, lat) in ag.items():
        g = o.graph()
        o.properties["stages"] = int_elements(np.array(node_st + [lat] * g.n_out, dtype=np.int64))
        o.properties["latency"] = IntegerAttr(lat, i32)
    _insert_registers(uses, lambda v: when[v][0])
