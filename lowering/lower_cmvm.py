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

from dataclasses import dataclass

import numpy as np
from qir.lowering.adder_graph import build
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i1
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from qir.addergraph import TARGETS, AdderGraph
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


def graph_for(op: CmvmOp, depth_slack: int = 1, target: str = "xilinx") -> AdderGraph:
    in_t = elem(op.input.type)
    (n_in,) = shape_of(op.input.type)
    m = elements_to_numpy(op.matrix)
    return build(m, elements_to_numpy(op.offset), [in_t.min_int] * n_in, [in_t.max_int] * n_in,
                 depth_slack=depth_slack, target=target)


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
        for cm in [o for o in op.walk() if isinstance(o, CmvmOp) and o.style.data in ADDERGRAPH_STYLES]:
            self._lower(cm)
        for mv in [o for o in op.walk() if isinstance(o, MvuOp) and o.impl.data == "muxgraph"]:
            from qir.lowering.mux_adder_graph import lower_mvu

            lower_mvu(mv, self.depth_slack, self.target)
        for mv in [o for o in op.walk() if isinstance(o, MvuOp) and o.impl.data == "digitserial"]:
            from qir.lowering.digit_serial import lower_mvu as lower_digits

            lower_digits(mv, self.depth_slack, self.target)

    def _lower(self, cm: CmvmOp) -> None:
        from qir.progress import note

        m = shape_of(cm.matrix.type) if hasattr(cm.matrix, "type") else None
        note(f"adder graph search: layer {layer_of(cm) or '?'}" + (f" ({m[0]}x{m[1]})" if m and len(m) == 2 else ""))
        g = graph_for(cm, self.depth_slack, self.target)
        props = AdderGraphOp.properties_of(g)
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
