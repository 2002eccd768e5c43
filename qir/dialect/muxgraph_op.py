"""``qir.muxgraph``: a constant matrix-vector product folded over its outputs into ``reuse`` = R
phases, computed by one time-multiplexed adder graph (``qir.muxgraph.MuxGraph``; issue #12)."""
from __future__ import annotations

import weakref

from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerAttr, StringAttr, TensorType
from xdsl.irdl import IRDLOperation, irdl_op_definition, operand_def, prop_def, result_def, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from qir.dialect.types import (
    ExactResult,
    LayerStage,
    _check_bounds,
    _layer,
    elem,
    elements_to_numpy,
    int_elements,
    shape_of,
)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@irdl_op_definition
class MuxGraphOp(ExactResult, IRDLOperation):
    """out[j] = the sums of a ``qir.mvu`` (mantissas, result frac = input frac + ``shift``),
    computed over R = ``reuse`` cycles by a multiplexed adder graph: phase r computes the output
    columns of group r from the held input with the P = ``phases`` <= R phase graphs merged into
    one (P < R when fewer phases are cheaper: the graph then idles R - P cycles).  ``nodes``
    (N*P x 5, row i*P + r = merged adder i in phase r: [a, sa, b, sb, sign], a = -1 idle),
    ``outputs`` (Q*P x 4, [col, node, shift, sign], col = -1 unused), ``offset`` (Q*P): see
    ``qir.muxgraph``.  Hardware (``rtl/muxgraph.py``): one input every R cycles, the result P + 1
    cycles after it (``cycles()``), held until the next result.  ``style``: the unfolded style
    (cmvm, po2, ternary)."""

    name = "qir.muxgraph"
    input = operand_def(TensorType)
    nodes = prop_def(DenseIntOrFPElementsAttr)
    outputs = prop_def(DenseIntOrFPElementsAttr)
    offset = prop_def(DenseIntOrFPElementsAttr)
    shift = prop_def(IntegerAttr)
    style = prop_def(StringAttr)
    reuse = prop_def(IntegerAttr)
    phases = prop_def(IntegerAttr)
    output = result_def(TensorType)
    traits = traits_def(LayerStage(), Pure())
    assembly_format = (
        "$input `nodes` `(` $nodes `)` `outputs` `(` $outputs `)` `offset` `(` $offset `)` `shift` $shift "
        "`style` $style `reuse` $reuse `phases` $phases attr-dict `:` type($input) `->` type($output)"
    )

    @classmethod
    def of(cls, x, result_type, g, shift, style, reuse, attributes: dict) -> MuxGraphOp:
        """The op computing the ``MuxGraph`` ``g`` (``g.R`` phases) on ``x``, an input every
        ``reuse`` cycles."""
        from xdsl.dialects.builtin import i64

        from qir.muxgraph import to_arrays

        nodes, outs, off = to_arrays(g)
        return cls.build(operands=[x], result_types=[result_type],
                         properties={"nodes": int_elements(nodes), "outputs": int_elements(outs),
                                     "offset": int_elements(off), "shift": shift, "style": style, "reuse": reuse,
                                     "phases": IntegerAttr(g.R, i64)},
                         attributes=dict(attributes))

    @property
    def R(self) -> int:
        """Cycles per input (the reuse factor)."""
        return self.reuse.value.data

    @property
    def P(self) -> int:
        """Phases of the graph (P <= R: with fewer phases than cycles the graph idles)."""
        return self.phases.value.data

    def graph(self):
        """The ``qir.muxgraph.MuxGraph`` (cached while the properties are the same objects)."""
        from qir.muxgraph import from_arrays

        key = (self.nodes, self.outputs, self.offset, self.input.type, self.phases)
        hit = _CACHE.get(self)
        if hit is not None and all(a is b for a, b in zip(hit[0], key)):
            return hit[1]
        in_t = elem(self.input.type)
        (n_in,) = shape_of(self.input.type)
        g = from_arrays(n_in, [in_t.min_int] * n_in, [in_t.max_int] * n_in, self.P, elements_to_numpy(self.nodes),
                        elements_to_numpy(self.outputs), elements_to_numpy(self.offset))
        _CACHE[self] = (key, g)
        return g

    def cycles(self) -> int:
        """Internal latency: the input is held at the start, phase r runs in cycle r + 1 and
        registers its outputs, so the result is complete P + 1 cycles after the input."""
        return self.P + 1

    def levels(self) -> int:
        """Adder levels of the deepest phase, plus the operand multiplexers."""
        return self.graph().depth() + 1

    def cost(self) -> dict:
        """Cost for ``qir report``: ``qir.folding.estimate`` of the merged graph."""
        from qir.folding import estimate

        return estimate(self, self.R)

    def exact_bounds(self):
        g = self.graph()
        b = [g.out_bounds(j) for j in range(g.n_out)]
        return (int(min((v[0] for v in b), default=0)), int(max((v[1] for v in b), default=0)),
                elem(self.input.type).frac + self.shift.value.data)

    def verify_(self) -> None:
        from qir.muxgraph import check_arrays

        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        if len(shape_of(self.input.type)) != 1 or len(shape_of(self.output.type)) != 1:
            raise VerifyException(f"{where}: qir.muxgraph takes and returns 1-D tensors")
        if not 1 <= self.P <= self.R:
            raise VerifyException(f"{where}: phases must be 1 .. reuse ({self.R}), got {self.P}")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        why = check_arrays(n_in, n_out, self.P, elements_to_numpy(self.nodes), elements_to_numpy(self.outputs),
                           elements_to_numpy(self.offset))
        if why:
            raise VerifyException(f"{where}: qir.muxgraph {why}")
        if self.style.data not in ("cmvm", "po2", "ternary"):
            raise VerifyException(f"{where}: style {self.style.data!r} is not one of cmvm, po2, ternary")
        frac = in_t.frac + self.shift.value.data
        if out_t.frac != frac:
            raise VerifyException(f"{where}: result must have exactly {frac} fractional bits, has {out_t.frac}")
        _check_bounds(where, out_t, *self.exact_bounds())


#: the ops of this module, registered with the dialect (qir.dialect.QIR)
OPS = (MuxGraphOp,)
__all__ = ["MuxGraphOp"]
