"""Delay-budget pipelining for ``qir-pipeline{max-depth=D}`` / ``{latency=L}``.

Stages are 1-based as in the default mode: model inputs live in stage 1, a value made in stage a
and read in stage b > a crosses b - a ``qir.reg``, and the outputs get one final register, so the
latency is the last stage's number.  Within a stage at most D adder levels run: every value
carries (stage, level), ``qir.addergraph`` nodes at level l + depth go to stage
``(l + depth - 1) // D`` of the op (the op's ``stages``/``latency`` properties), other ops add
their level count and move to the next stage first if they would exceed D.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, i32
from xdsl.ir import Operation, SSAValue

from qir.dialect import (AdderGraphOp, CmvmOp, ConvOp, DenseOp, InputOp, ModelOp, OutputOp, XnorOp, int_elements,
                         shape_of)
from qir.errors import QirError

#: adder levels charged for a fused epilogue (rounding/relu/saturation logic)
EPILOGUE_LEVELS = 1


def _op_levels(o: Operation) -> int:
    """Adder levels of an op that is not cut inside."""
    if isinstance(o, (CmvmOp, DenseOp, ConvOp)):
        n = max(int(np.prod(shape_of(o.operands[0].type))), 1)
        return max((n - 1).bit_length(), 1) + 1
    if isinstance(o, XnorOp):
        return o.levels()
    return 1


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
            res = (s, lvl + n)
        for i, _ in enumerate(o.operands):
            uses.append((o, i, s))
        for r in o.results:
            when[r] = res
    return when, uses, ag, latency


def pipeline_by_depth(model: ModelOp, max_depth: int, target_latency: int,
                      reg_chain: Callable[[SSAValue, int, int, Operation], SSAValue]) -> None:
    if max_depth:
        d = max_depth
    else:
        d = None
        for cand in range(1, 257):
            if plan(model, cand)[3] <= target_latency:
                d = cand
                break
        if d is None:
            raise QirError(f"qir-pipeline: no depth budget reaches latency {target_latency}")
    when, uses, ag, _ = plan(model, d)
    for o, (node_st, lat) in ag.items():
        g = o.graph()
        o.properties["stages"] = int_elements(np.array(node_st + [lat] * g.n_out, dtype=np.int64))
        o.properties["latency"] = IntegerAttr(lat, i32)
    chains: dict[tuple[SSAValue, int], SSAValue] = {}
    for user, i, need in uses:
        v = user.operands[i]
        have = when[v][0] if need else 0
        if need <= have:
            continue
        key = (v, need)
        if key not in chains:
            after = v.owner if isinstance(v.owner, Operation) else None
            chains[key] = reg_chain(v, have, need - 1, after)
        user.operands[i] = chains[key]
