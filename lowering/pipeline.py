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
"""
from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import AdderGraphOp, CmvmOp, ConvOp, DenseOp, InputOp, ModelOp, OutputOp, RegOp, XnorOp
from qir.errors import QirError
from qir.ir import layer_of, set_layer

_STAGE_OPS = (CmvmOp, DenseOp, ConvOp, AdderGraphOp, XnorOp)


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
        from qir.stream_ops import is_stream_model

        for model in [m for m in op.walk() if isinstance(m, ModelOp)]:
            if is_stream_model(model):
                continue  # stream level: each qir.map body (a model itself) is pipelined instead
            if any(isinstance(o, RegOp) for o in model.block.ops):
                raise QirError("qir-pipeline: the model already has qir.reg ops; run it once, on unpipelined IR")
            if self.max_depth or self.latency:
                from qir.lowering.pipeline_depth import pipeline_by_depth

                pipeline_by_depth(model, self.max_depth or 0, self.latency or 0, _reg_chain)
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
            if isinstance(o, _STAGE_OPS):
                s = max((stage[v] for v in o.operands), default=0) + 1
            if isinstance(o, OutputOp):
                s = max((max(stage[v], 1) for v in o.operands), default=1) + 1
                if all(stage[v] == 0 for v in o.operands):
                    s = 0  # no arithmetic at all: combinational
            for i, v in enumerate(o.operands):
                uses.append((o, i, s))
            for r in o.results:
                stage[r] = s
        chains: dict[tuple[SSAValue, int], SSAValue] = {}
        for user, i, need in uses:
            v = user.operands[i]
            have = max(stage[v], 1) if need else 0
            if need <= have:
                continue
            key = (v, need)
            if key not in chains:
                after = v.owner if isinstance(v.owner, Operation) else None
                chains[key] = _reg_chain(v, have, need - 1, after)
            user.operands[i] = chains[key]
