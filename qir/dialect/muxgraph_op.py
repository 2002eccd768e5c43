"""``qir.muxgraph``: a constant matrix-vector product folded over its outputs into ``reuse`` = R
phases, computed by one time-multiplexed adder graph (``qir.muxgraph.MuxGraph``; issue #12)."""
from __future__ import annotations

from xdsl.dialects.builtin import IntegerAttr
from xdsl.irdl import irdl_op_definition, prop_def
from xdsl.utils.exceptions import VerifyException

from qir.dialect.dataflow_ops import FoldedGraphOp
from qir.dialect.types import cached_graph, elem, elements_to_numpy, int_elements, shape_of


@irdl_op_definition
class MuxGraphOp(FoldedGraphOp):
    """out[j] = the sums of a ``qir.mvu`` (mantissas, result frac = input frac + ``shift``),
    computed over R = ``reuse`` cycles by a multiplexed adder graph: phase r computes the output
    columns of group r from the held input with the P = ``phases`` <= R phase graphs merged into
    one (P < R when fewer phases are cheaper: the graph then idles R - P cycles).  ``nodes``
    (N*P x 5, row i*P + r = merged adder i in phase r: [a, sa, b, sb, sign], a = -1 idle),
    ``outputs`` (Q*P x 4, [col, node, shift, sign], col = -1 unused), ``offset`` (Q*P): see
    ``qir.muxgraph``.  Hardware (``rtl/muxgraph.py``): one input every R cycles, the result P + 1
    cycles after it (``cycles()``), held until the next result.  ``style``: the unfolded style
    (cmvm, po2, ternary).  The declarations and checks it shares with ``qir.digitserial``:
    ``FoldedGraphOp``."""

    name = "qir.muxgraph"
    phases = prop_def(IntegerAttr)
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
    def P(self) -> int:
        """Phases of the graph (P <= R: with fewer phases than cycles the graph idles)."""
        return self.phases.value.data

    def graph(self):
        """The ``qir.muxgraph.MuxGraph`` (cached while the properties are the same objects)."""
        from qir.muxgraph import from_arrays

        def build():
            in_t = elem(self.input.type)
            (n_in,) = shape_of(self.input.type)
            return from_arrays(n_in, [in_t.min_int] * n_in, [in_t.max_int] * n_in, self.P,
                               elements_to_numpy(self.nodes), elements_to_numpy(self.outputs),
                               elements_to_numpy(self.offset))

        return cached_graph(self, (self.nodes, self.outputs, self.offset, self.input.type, self.phases), build)

    def cycles(self) -> int:
        """Internal latency: the input is held at the start, phase r runs in cycle r + 1 and
        registers its outputs, so the result is complete P + 1 cycles after the input."""
        return self.P + 1

    def levels(self) -> int:
        """Adder levels of the deepest phase, plus the operand multiplexers."""
        return self.graph().depth() + 1

    def exact_bounds(self):
        g = self.graph()
        b = [g.out_bounds(j) for j in range(g.n_out)]
        return (int(min((v[0] for v in b), default=0)), int(max((v[1] for v in b), default=0)),
                elem(self.input.type).frac + self.shift.value.data)

    def _verify_graph(self, where: str, in_t, n_in: int, n_out: int) -> None:
        from qir.muxgraph import check_arrays

        if not 1 <= self.P <= self.R:
            raise VerifyException(f"{where}: phases must be 1 .. reuse ({self.R}), got {self.P}")
        why = check_arrays(n_in, n_out, self.P, elements_to_numpy(self.nodes), elements_to_numpy(self.outputs),
                           elements_to_numpy(self.offset))
        if why:
            raise VerifyException(f"{where}: qir.muxgraph {why}")


#: the ops of this module, registered with the dialect (qir.dialect.QIR)
OPS = (MuxGraphOp,)
__all__ = ["MuxGraphOp"]
