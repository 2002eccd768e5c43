"""``qir-lower-dense{style=mac}``: layer-level ``qir.dense`` -> dataflow ``qir.cmvm``.

The bias is aligned to the products' binary point (or the weights to the bias's) exactly as
``DenseOp.folded`` defines, and both are rescaled to the dense result's grid, so the
``qir.cmvm`` result has the very type of the ``qir.dense`` it replaces: the rest of the model is
untouched.  ``style`` picks the hardware implementation of the constant products; ``xnor``
(binary weights, two-valued input) writes ``qir.xnor`` + ``qir.scale`` instead (``qir.lowering.xnor``).
A ``reuse = R : i64`` attribute on the dense (R > 1, issue #12) folds it (``qir.folding``): a
``qir.mvu`` (style mac for cmvm, po2, ternary) or a ``qir.xnor`` with ``reuse R``.
"""
from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i32, i64
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from qir.dialect import CMVM_STYLES, CmvmOp, DenseOp, MvuOp, elem, int_elements
from qir.errors import QirError
from qir.ir import layer_of, reuse_of, style_of


def cmvm_from_dense(op: DenseOp, style: str) -> CmvmOp:
    w, off, frac = op.folded()
    in_t, out_t = elem(op.input.type), elem(op.output.type)
    scale = 1 << (out_t.frac - frac)  # the verifier guarantees out_t.frac >= frac
    cm = CmvmOp.build(
        operands=[op.input],
        result_types=[op.output.type],
        properties={
            "matrix": int_elements(w.astype(object) * scale),
            "offset": int_elements(off.astype(object) * scale),
            "shift": IntegerAttr(out_t.frac - in_t.frac, i32),
            "style": StringAttr(style),
        },
    )
    if layer_of(op) is not None:
        cm.attributes["layer"] = op.attributes["layer"]
    return cm


def folded(cm: CmvmOp, reuse: int, impl: str | None = None, recheck: bool = False) -> MvuOp:
    """``cm`` folded by ``reuse`` > 1 (``qir.folding``): a ``qir.mvu`` with the same numbers and
    the cheaper implementation (``qir.folding.choose_impl``; ``impl`` pins it: the layer op's
    ``impl`` attribute): ``muxgraph`` and ``digitserial`` keep the adder-graph style; as ``rom``
    the style ``cmvm`` becomes ``mac``.  ``recheck`` (a dense layer, at most
    ``qir.lowering.fold_auto.EXACT_R1_MAX_WEIGHTS`` weights): an automatic ROM choice is compared
    with the searched digit-serial figure (``_searched_digitserial_smaller``)."""
    from qir.dialect import elements_to_numpy
    from qir.folding import choose_impl

    if impl not in ("rom", "muxgraph", "digitserial") or cm.style.data not in ("cmvm", "po2", "ternary") or \
            (impl == "muxgraph" and cm.output.type.get_shape()[0] < 2) or \
            (impl == "digitserial" and elem(cm.input.type).width < 2):
        impl = choose_impl(elements_to_numpy(cm.matrix), elements_to_numpy(cm.offset), elem(cm.input.type), reuse,
                           cm.style.data)  # rom, muxgraph or digitserial (qir-lower-cmvm builds the last two)
        if impl == "rom" and recheck and _searched_digitserial_smaller(cm, reuse):
            impl = "digitserial"
    style = "mac" if cm.style.data == "cmvm" and impl == "rom" else cm.style.data
    mv = MvuOp.build(operands=[cm.input], result_types=[cm.output.type],
                     properties={"matrix": cm.matrix, "offset": cm.offset, "shift": cm.shift,
                                 "style": StringAttr(style), "reuse": IntegerAttr(reuse, i64),
                                 "impl": StringAttr(impl)},
                     attributes={k: v for k, v in cm.attributes.items() if k == "layer"})
    return mv


#: the rough digit-serial estimate (``qir.folding.estimate_digitserial``) runs up to ~1.9x the
#: searched one (qkeras_3layer at R = 8 and 16: 12,573 against 7,143 layer LUTs); within this
#: factor of the ROM's estimate the lowering searches the graph and compares the searched figure
DIGITSERIAL_RECHECK = 2.0


def _searched_digitserial_smaller(cm: CmvmOp, reuse: int) -> bool:
    """Whether the digit-serial form of ``cm`` at ``reuse``, priced by its searched adder graph
    (``qir.folding.digitserial_searched``, what ``qir-fold-auto`` plans with), is smaller than
    the ROM form: checked only where the rough figure is within ``DIGITSERIAL_RECHECK`` of the
    ROM's (the search costs what the R = 1 lowering's does)."""
    from qir.dialect import elements_to_numpy
    from qir.folding import digitserial_searched, impl_estimates

    ests = impl_estimates(elements_to_numpy(cm.matrix), elements_to_numpy(cm.offset), elem(cm.input.type), reuse,
                          cm.style.data)
    ds, rom = ests.get("digitserial"), ests["rom"]["lut"]
    from qir.lowering.fold_auto import EXACT_R1_MAX_WEIGHTS

    if ds is None or ds["lut"] > DIGITSERIAL_RECHECK * rom or elements_to_numpy(cm.matrix).size > EXACT_R1_MAX_WEIGHTS:
        return False
    from qir.lowering.lower_cmvm import graph_for

    return digitserial_searched(ds, graph_for(cm))["lut"] < rom


@dataclass(frozen=True)
class LowerDense(ModulePass):
    """``style`` is one of CMVM_STYLES, ``xnor`` or ``auto`` (per layer: ``xnor`` when the weights
    are +-a per output and the input is provably two-valued, see ``qir.lowering.xnor``; else
    ``po2`` when every weight is 0 or +-2^k, ``ternary`` when they are 0 or +-c, else ``cmvm``;
    never ``mac``); ``layers`` overrides it per source layer: ``layers="fc1:mac;fc3:xnor"``
    (quoted: ``:`` and ``;`` are not bare tokens in pass options)."""

    name = "qir-lower-dense"
    style: str = "mac"
    layers: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from qir.lowering.lower_cmvm import auto_style, parse_layer_styles
        from qir.lowering.xnor import lower_xnor, xnor_plan

        choices = CMVM_STYLES + ("xnor", "auto")
        if self.style not in choices:
            raise QirError(f"qir-lower-dense: unknown style {self.style!r}; use one of {', '.join(choices)}")
        per_layer = parse_layer_styles(self.layers, choices)
        for dense in [o for o in op.walk() if isinstance(o, DenseOp)]:
            style = per_layer.get(layer_of(dense) or "", style_of(dense) or self.style)
            if style not in choices:
                raise QirError(f"qir-lower-dense: layer {layer_of(dense)!r} has style {style!r}; use one of "
                               f"{', '.join(choices)}")
            reuse = reuse_of(dense)
            if style in ("xnor", "auto"):
                plan = xnor_plan(dense)
                if not isinstance(plan, str):
                    lower_xnor(dense, plan, reuse)
                    continue
                if style == "xnor":
                    name = layer_of(dense)
                    raise QirError(f"qir-lower-dense: {f'layer {name!r}' if name else 'a qir.dense'} cannot use "
                                   f"style xnor: {plan}; use style ternary, cmvm or auto for it "
                                   f'(layers="{name or "<layer>"}:auto")')
                style = auto_style(dense.folded()[0])
            cm = cmvm_from_dense(dense, style)
            pin = dense.attributes["impl"].data if "impl" in dense.attributes else None
            Rewriter.replace_op(dense, folded(cm, reuse, pin, recheck=True) if reuse > 1 else cm)
