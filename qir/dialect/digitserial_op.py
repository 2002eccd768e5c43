"""``qir.digitserial``: a constant matrix-vector product folded over ``reuse`` = R cycles as the
unfolded constant adder graph applied to D input digits, shift-accumulated
(``qir.digitserial``; issue #12)."""
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
class DigitSerialOp(ExactResult, IRDLOperation):
    """out[j] = sum_i in[i] * W[i, j] + offset[j] on mantissas (result frac = input frac +
    ``shift``), W the matrix of the adder graph ``nodes``/``outputs`` (the arrays of
    ``qir.addergraph``, no offset of its own), computed over R = ``reuse`` cycles: the input in
    offset binary u = x - x_min split into D = ``digits`` digits of k = ceil(n / D) bits, the
    graph on one digit per cycle, accumulated LSB first (``qir.digitserial``).  Hardware
    (``rtl/digitserial.py``): one input every R cycles, the result D cycles after it
    (``cycles()``), held until the next result.  ``style``: the unfolded style (cmvm, po2,
    ternary)."""

    name = "qir.digitserial"
    input = operand_def(TensorType)
    nodes = prop_def(DenseIntOrFPElementsAttr)
    outputs = prop_def(DenseIntOrFPElementsAttr)
    offset = prop_def(DenseIntOrFPElementsAttr)
    shift = prop_def(IntegerAttr)
    style = prop_def(StringAttr)
    reuse = prop_def(IntegerAttr)
    digits = prop_def(IntegerAttr)
    output = result_def(TensorType)
    traits = traits_def(LayerStage(), Pure())
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
    def R(self) -> int:
        """Cycles per input (the reuse factor)."""
        return self.reuse.value.data

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

        key = (self.nodes, self.outputs, self.input.type, self.digits)
        hit = _CACHE.get(self)
        if hit is not None and all(a is b for a, b in zip(hit[0], key)):
            return hit[1]
        (n_in,) = shape_of(self.input.type)
        outs = elements_to_numpy(self.outputs).reshape(-1, 3)
        g = from_arrays(n_in, [0] * n_in, [(1 << self.k) - 1] * n_in, elements_to_numpy(self.nodes), outs,
                        [0] * outs.shape[0])
        _CACHE[self] = (key, g)
        return g

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

    def cost(self) -> dict:
        """Cost for ``qir report``: ``qir.folding.estimate`` of the lowered op."""
        from qir.folding import estimate

        return estimate(self, self.R)

    def exact_bounds(self):
        from qir.dialect.types import dense_bounds

        in_t = elem(self.input.type)
        lo, hi = dense_bounds(in_t, self.matrix(), elements_to_numpy(self.offset))
        return int(min(lo, default=0)), int(max(hi, default=0)), in_t.frac + self.shift.value.data

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        if len(shape_of(self.input.type)) != 1 or len(shape_of(self.output.type)) != 1:
            raise VerifyException(f"{where}: qir.digitserial takes and returns 1-D tensors")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        D, R, n = self.D, self.R, in_t.width
        if not 2 <= D <= min(R, n):
            raise VerifyException(f"{where}: digits must be 2 .. min(reuse, input bits) = {min(R, n)}, got {D}")
        if -(-n // self.k) != D:
            raise VerifyException(f"{where}: {D} digits of ceil({n}/{D}) = {self.k} bits cover {n} bits with a "
                                  f"whole spare digit; use {-(-n // self.k)} digits")
        nodes, outs = elements_to_numpy(self.nodes), elements_to_numpy(self.outputs)
        off = elements_to_numpy(self.offset)
        if nodes.ndim != 2 or nodes.shape[1] != 5:
            raise VerifyException(f"{where}: nodes must be an N x 5 array [a, sa, b, sb, sign]")
        if outs.shape != (n_out, 3) or off.shape != (n_out,):
            raise VerifyException(f"{where}: outputs must be {n_out} x 3 [node, shift, sign] and offset ({n_out},)")
        n_nodes = n_in + nodes.shape[0]
        for k, (a, sa, b, sb, sg) in enumerate(nodes.tolist(), start=n_in):
            if not (0 <= a < k and 0 <= b < k) or not 0 <= sa <= 256 or not 0 <= sb <= 256 or sg not in (-1, 1):
                raise VerifyException(f"{where}: node {k} = [{a}, {sa}, {b}, {sb}, {sg}] must use earlier nodes, "
                                      "shifts 0 .. 256 and sign +-1")
        for j, (k, sh, sg) in enumerate(outs.tolist()):
            if not -1 <= k < n_nodes or not 0 <= sh <= 256 or sg not in (-1, 1):
                raise VerifyException(f"{where}: output {j} = [{k}, {sh}, {sg}] is not a node, shift >= 0, sign +-1")
        if self.style.data not in ("cmvm", "po2", "ternary"):
            raise VerifyException(f"{where}: style {self.style.data!r} is not one of cmvm, po2, ternary")
        frac = in_t.frac + self.shift.value.data
        if out_t.frac != frac:
            raise VerifyException(f"{where}: result must have exactly {frac} fractional bits, has {out_t.frac}")
        _check_bounds(where, out_t, *self.exact_bounds())


#: the ops of this module, registered with the dialect (qir.dialect.QIR)
OPS = (DigitSerialOp,)
__all__ = ["DigitSerialOp"]
