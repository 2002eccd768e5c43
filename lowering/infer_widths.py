"""``qir-infer-widths``: give every arithmetic result the narrowest type that holds it exactly.

For ``qir.dense`` and ``qir.cmvm`` the result interval is computed from the actual constant
weights and the input type's range (interval arithmetic per output, then the union), and the result
gets exactly the fractional bits the products and bias need; nothing can overflow and no bit is
wasted.  ``qir.conv``, average ``qir.pool``, ``qir.scale``, ``qir.leaky_relu``, ``qir.add``,
``qir.concat``, ``qir.mul`` and sum/maxabs ``qir.reduce`` get the narrowest type holding their ops' ``exact_bounds()`` (tight over border
windows too).  Types that must equal their input (``qir.relu``, ``qir.reg``, max ``qir.pool``, max ``qir.reduce``,
``qir.reshape``, ``qir.transpose``, ``qir.pad``) follow.  ``qir.quantize`` and ``qir.lut``
results are the user's explicit choice and are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from qir.dialect import (
    AddOp,
    CmvmOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    LeakyReluOp,
    ModelOp,
    MulOp,
    PadOp,
    PoolOp,
    ReduceOp,
    RegOp,
    ReluOp,
    ReshapeOp,
    ScaleOp,
    TransposeOp,
    elem,
    elements_to_numpy,
    tensor_of,
)
from qir.exact import dense_type
from qir.fixed import Fixed


def inferred_type(op: Operation):
    """The result type ``op`` should have, or None to keep it."""
    if isinstance(op, DenseOp):
        w, off, frac, _ = op.folded()
        t = dense_type(elem(op.input.type), w, off, frac)
    elif isinstance(op, CmvmOp):
        in_t = elem(op.input.type)
        t = dense_type(in_t, elements_to_numpy(op.matrix), elements_to_numpy(op.offset),
                       in_t.frac + op.shift.value.data)
    elif isinstance(op, (ReluOp, RegOp)):
        return op.input.type
    elif isinstance(op, (PoolOp, ReduceOp)) and op.kind.data == "max" or isinstance(op, (ReshapeOp, TransposeOp, PadOp)):
        t = elem(op.input.type)
    elif isinstance(op, (ConvOp, PoolOp, ScaleOp, LeakyReluOp, AddOp, ConcatOp, MulOp, ReduceOp)):
        t = Fixed.for_range(*op.exact_bounds())
    else:
        return None
    return tensor_of(t, op.results[0].type.get_shape())


@dataclass(frozen=True)
class InferWidths(ModulePass):
    name = "qir-infer-widths"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for model in op.walk():
            if not isinstance(model, ModelOp):
                continue
            for inner in list(model.block.ops):
                new = inferred_type(inner)
                if new is not None and isinstance(new, TensorType) and new != inner.results[0].type:
                    Rewriter.replace_value_with_new_type(inner.results[0], new)
