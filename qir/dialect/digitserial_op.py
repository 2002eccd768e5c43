"""``qir.digitserial``: a constant matrix-vector product folded over ``reuse`` = R cycles as the
unfolded constant adder graph applied to D input digits, shift-accumulated
(``qir.digitserial``; issue #12)."""
from __future__ import annotations

from xdsl.dialects.builtin import IntegerAttr
from xdsl.irdl import irdl_op_definition, prop_def
from xdsl.utils.exceptions import VerifyException

from qir.dialect.dataflow_ops import FoldedGraphOp, check_graph_arrays
from qir.dialect.types import cached_graph, elem, elements_to_numpy, int_elements, matrix_exact_bounds, shape_of


@irdl_op_definition
class DigitSerialOp(FoldedGraphOp):
    """out[j] = sum_i in[i] * W[i, j] + offset[j] on mantissas (result frac = input frac +
    ``shift``), W the matrix of the adder graph ``nodes``/``outputs`` (the arrays of
    ``qir.addergraph``, no offset of its own), computed over R = ``reuse`` cycles: the input in
    offset binary u = x - x_min split into D = ``digits`` digits of k = ceil(n / D) bits, the
    graph on one digit per cycle, accumulated LSB first (``qir.digitserial``).  Hardware
    (``rtl/digitserial.py``): one input every R cycles, the result D cycles after it
    (``cycles()``), held until the next result.  ``style``: the unfolded style (cmvm, po2,
    ternary).  The declarations and checks it shares with ``qir.muxgraph``: ``FoldedGraphOp``."""

    name = "qir.digitserial"
    digits = prop_def(IntegerAttr)
    assembly_format = (
        "$input `nodes` `(` $nodes `)` `outputs` `(` $outputs `)` `offset` `(` $offset `)` `shift` $shift "
        "`style` $style `reuse` $reuse `digits` $digits attr-dict `:` type($input) `->` type($output)"
    )

    @classmethod
    def of(cls, x, result_type, g, offset, shift, style, reuse, digits: int, attributes: dict) -> DigitSerialOp:
        """The op computing ``x @ g.matrix() + offset`` by the adder graph ``g`` on ``digits``
        digits, an input every ``reuse`` cycles."""
        from xdsl.dialects.builtin import i64

        from qir.addergraph import to_arrays

        nodes, outs, _ = to_arrays(g)
        return cls.build(operands=[x], result_types=[result_type],
                         properties={"nodes": int_elements(nodes), "outputs": int_elements(outs),
                                     "offset": int_elements(offset), "shift": shift, "style": style, "reuse": reuse,
                                     "digits": IntegerAttr(digits, i64)},
                         attributes=dict(attributes))

    @property
    def D(self) -> int:
        """Digits (= working cycles) per input."""
        return self.digits.value.data

    @property
    def n_bits(self) -> int:
        return elem(self.input.type).width

    @property
    def k(self) -> int:
        """Bits per digit: ceil(n / D)."""
        return -(-self.n_bits // max(self.D, 1))

    @property
    def x_min(self) -> int:
        """The input type's smallest mantissa (u = x - x_min is the offset-binary input)."""
        return elem(self.input.type).min_int

    def graph(self):
        """The digit adder graph (``qir.addergraph.AdderGraph``, inputs in [0, 2^k - 1], zero
        offsets; cached while the properties are the same objects)."""
        from qir.addergraph import from_arrays

        def build():
            (n_in,) = shape_of(self.input.type)
            outs = elements_to_numpy(self.outputs).reshape(-1, 3)
            return from_arrays(n_in, [0] * n_in, [(1 << self.k) - 1] * n_in, elements_to_numpy(self.nodes), outs,
                               [0] * outs.shape[0])

        return cached_graph(self, (self.nodes, self.outputs, self.input.type, self.digits), build)

    def matrix(self):
        """The constant matrix W (n_in x n_out) the graph computes."""
        return self.graph().matrix()

    def acc_ranges(self) -> list[tuple[int, int]]:
        """Per output, the accumulator register's exact range (``qir.digitserial.partial_ranges``)."""
        from qir.digitserial import partial_ranges

        return partial_ranges(self.matrix(), elements_to_numpy(self.offset), self.x_min, self.n_bits, self.D, self.k)

    def cycles(self) -> int:
        """Internal latency: digit d is added at edge d + 1, so the result is complete D cycles
        after the input."""
        return self.D

    def levels(self) -> int:
        """Adder levels of the graph plus the accumulator's add."""
        return self.graph().max_depth() + 1

    def exact_bounds(self):
        return matrix_exact_bounds(self, self.matrix())

    def _verify_graph(self, where: str, in_t, n_in: int, n_out: int) -> None:
        D, R, n = self.D, self.R, in_t.width
        if not 2 <= D <= min(R, n):
            raise VerifyException(f"{where}: digits must be 2 .. min(reuse, input bits) = {min(R, n)}, got {D}")
        if -(-n // self.k) != D:
            raise VerifyException(f"{where}: {D} digits of ceil({n}/{D}) = {self.k} bits cover {n} bits with a "
                                  f"whole spare digit; use {-(-n // self.k)} digits")
        check_graph_arrays(where, n_in, n_out, elements_to_numpy(self.nodes), elements_to_numpy(self.outputs),
                           elements_to_numpy(self.offset), max_shift=256)


#: the ops of this module, registered with the dialect (qir.dialect.QIR)
OPS = (DigitSerialOp,)
__all__ = ["DigitSerialOp"]
