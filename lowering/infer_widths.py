"""``qir-infer-widths``: give every arithmetic result the narrowest type that holds it exactly.

For ``qir.dense`` and ``qir.cmvm`` the result interval is computed from the actual constant
weights and the input type's range (interval arithmetic per output, then the union), and the result
gets exactly the fractional bits the products and bias need; nothing can overflow and no bit is
wasted.  ``qir.conv``, average ``qir.pool``, ``qir.scale``, ``qir.leaky_relu``, ``qir.add``,
``qir.concat``, ``qir.mul`` and sum/maxabs ``qir.reduce`` get the narrowest type holding their
ops' ``exact_bounds()`` (tight over border windows too).  Types that must equal their input
(``qir.relu``, ``qir.reg``, max ``qir.pool``, max ``qir.reduce``,
``qir.reshape``, ``qir.transpose``, ``qir.pad``) follow.  ``qir.quantize`` and ``qir.lut``
results are the user's explicit choice and are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from qir.dialect import ModelOp
from qir.exact import inferred_type


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
