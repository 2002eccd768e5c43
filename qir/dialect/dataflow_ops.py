"""Dataflow ops (lowering produces them, rtl consumes them): ``qir.cmvm``, ``qir.reg``,
``qir.addergraph``, ``qir.threshold``, ``qir.xnor`` (and the popcount structure)."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerAttr, StringAttr, TensorType, i32
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from qir.dialect.types import (
    BareInt,
    Elementwise,
    ExactResult,
    FixedType,
    LayerStage,
    UFixedType,
    _check_1d,
    _check_bounds,
    _check_in_type,
    _check_per_channel,
    _check_shifted_result,
    _check_vector,
    _layer,
    cached_graph,
    elem,
    elements_to_numpy,
    int_elements,
    matrix_exact_bounds,
    shape_of,
    tree_levels,
)
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed

# ---------------------------------------------------------------------------- dataflow ops
#: ``mac``: multipliers (DSPs); ``cmvm``: shared adder graph of CSD digits; ``ternary``: weights in
#: {-1, 0, 1}, adds/subtracts only; ``po2``: weights 0 or +-2^k, shifts only (see qir.addergraph).
CMVM_STYLES = ("mac", "cmvm", "ternary", "po2")


class ConstProductOp(IRDLOperation):
    """What the ops of a constant matrix times the vector ``input`` on mantissas declare alike
    (``qir.cmvm``, ``qir.addergraph``, the folded ``FoldedLayerOp``s): the constant ``offset``
    added per output, ``shift`` (the sums on the grid of input frac + shift), the implementation
    ``style``; a layer stage of its own (``qir-pipeline``)."""

    input = operand_def(TensorType)
    offset = prop_def(DenseIntOrFPElementsAttr)
    shift = prop_def(IntegerAttr)
    style = prop_def(StringAttr)
    output = result_def(TensorType)
    traits = traits_def(LayerStage(), Pure())


@irdl_op_definition
class CmvmOp(ExactResult, ConstProductOp):
    """out[j] = sum_i in[i] * matrix[i, j] + offset[j] on mantissas; result frac = in frac + shift."""

    name = "qir.cmvm"
    matrix = prop_def(DenseIntOrFPElementsAttr)
    assembly_format = (
        "$input `matrix` `(` $matrix `)` `offset` `(` $offset `)` `shift` $shift `style` $style "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def cost(self) -> dict:
        """Cost for ``qir report``: the multipliers (weights that are not 0 or +-2^k)."""
        m = elements_to_numpy(self.matrix)
        return {"multipliers": int(sum(1 for v in m.ravel() if v and abs(int(v)) & (abs(int(v)) - 1)))}

    def exact_bounds(self):
        """(lo, hi, frac) over every output, x anywhere in the input type's range."""
        return matrix_exact_bounds(self, elements_to_numpy(self.matrix))

    def levels(self) -> int:
        """Adder levels when not cut inside (``qir-pipeline{max-depth=N}``)."""
        return tree_levels(int(np.prod(shape_of(self.operands[0].type))))

    def verify_(self) -> None:
        where = _layer(self)
        in_t = elem(self.input.type, f"{where} input")
        out_t = elem(self.output.type, f"{where} result")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        m, off = elements_to_numpy(self.matrix), elements_to_numpy(self.offset)
        if m.shape != (n_in, n_out) or off.shape != (n_out,):
            raise VerifyException(f"{where}: matrix {m.shape} / offset {off.shape} do not match "
                                  f"({n_in}, {n_out}) / ({n_out},)")
        if self.style.data not in CMVM_STYLES:
            raise VerifyException(f"{where}: style {self.style.data!r} is not one of {', '.join(CMVM_STYLES)}")
        _check_shifted_result(self, where, in_t, out_t)


@irdl_op_definition
class RegOp(IRDLOperation):
    """A pipeline register: the value one clock cycle later (stage = pipeline stage it ends)."""

    name = "qir.reg"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    output = result_def(T)
    stage = prop_def(IntegerAttr)
    assembly_format = "$input `stage` $stage attr-dict `:` type($input)"
    traits = traits_def(Elementwise())

    def cost(self) -> dict:
        """Cost for ``qir report``: the register bits."""
        return {"reg_bits": elem(self.input.type).width * int(np.prod(shape_of(self.input.type)))}

    def exact_spec(self) -> Fixed:
        """The input's element type (a register)."""
        return elem(self.input.type)


# ------------------------------------------------------------------ adder graphs (issue 5)
#: styles a ``qir.addergraph`` may record (the ``qir.cmvm`` style it was lowered from)
ADDERGRAPH_STYLES = ("cmvm", "ternary", "po2")


@irdl_op_definition
class AdderGraphOp(ConstProductOp):
    """A constant matrix-vector product as an explicit graph of two-input adders.

    Values ``v``: the input mantissas ``v[0..n_in-1]``, then one per row of ``nodes``
    ``[a, sa, b, sb, sign]``: ``v[k] = (v[a] << sa) + sign * (v[b] << sb)`` (a, b < k).
    Sums: one per row of ``outputs`` ``[node, shift, sign]``:
    ``acc[j] = offset[j] + sign * (v[node] << shift)`` (node -1: ``offset[j]`` alone), on the
    grid with ``input frac + shift`` fractional bits (the op's ``shift`` property).
    Without ``acc_type`` the result is ``acc``, whose type must hold it exactly.  With
    ``acc_type`` (the exact type of ``acc``) the op also applies a fused epilogue: ``relu``
    (when ``relu`` is true) then ``qir.quantize`` to the result type with ``rounding`` and
    ``overflow``.  ``stages`` (one per node, then one per output) and ``latency`` place the
    adders in pipeline stages: stage s runs after s clock edges, operands from earlier stages
    are registered, and the result is ``latency`` cycles after the input (all outputs are in
    stage ``latency``).  Registers change timing only, never values.
    """

    name = "qir.addergraph"
    nodes = prop_def(DenseIntOrFPElementsAttr)
    outputs = prop_def(DenseIntOrFPElementsAttr)
    stages = prop_def(DenseIntOrFPElementsAttr)
    latency = prop_def(IntegerAttr)
    acc_type = opt_prop_def(base(FixedType) | base(UFixedType))
    relu = opt_prop_def(IntegerAttr)
    rounding = opt_prop_def(StringAttr)
    overflow = opt_prop_def(StringAttr)
    assembly_format = (
        "$input `nodes` `(` $nodes `)` `outputs` `(` $outputs `)` `offset` `(` $offset `)` "
        "`shift` $shift `style` $style `stages` `(` $stages `)` `latency` $latency "
        "(`epilogue` `(` $acc_type^ `relu` $relu `rounding` $rounding `overflow` $overflow `)`)? "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def graph(self):
        """The ``qir.addergraph.AdderGraph`` this op computes (input bounds from the input type;
        cached per op while its properties are the same attribute objects)."""
        from qir.addergraph import from_arrays

        def build():
            in_t = elem(self.input.type)
            n_in = shape_of(self.input.type)[0] if shape_of(self.input.type) else 1
            return from_arrays(n_in, [in_t.min_int] * n_in, [in_t.max_int] * n_in, elements_to_numpy(self.nodes),
                               elements_to_numpy(self.outputs), elements_to_numpy(self.offset))

        return cached_graph(self, (self.nodes, self.outputs, self.offset, self.input.type), build)

    @staticmethod
    def properties_of(g) -> dict:
        """The ``nodes``/``outputs``/``offset``/``stages``/``latency`` properties of the
        ``AdderGraph`` ``g`` (unpipelined: every node and output in stage 0); ``graph()`` is the
        inverse."""
        from qir.addergraph import to_arrays

        return AdderGraphOp.properties_of_arrays(*to_arrays(g))

    @staticmethod
    def properties_of_arrays(nodes, outs, offset) -> dict:
        """``properties_of`` from the graph's ``qir.addergraph.to_arrays`` (nodes, outputs, offset)."""
        return {
            "nodes": int_elements(nodes),
            "outputs": int_elements(outs),
            "offset": int_elements(offset),
            "stages": int_elements(np.zeros(len(nodes) + len(outs), dtype=np.int64)),
            "latency": IntegerAttr(0, i32),
        }

    #: LUTs charged per output bit of a fused epilogue (relu/rounding/saturation logic), plus
    #: per output (``qir report``'s estimate)
    EPILOGUE_LUTS_PER_BIT: ClassVar[int] = 2
    EPILOGUE_LUTS_PER_OUTPUT: ClassVar[int] = 0

    def cost(self) -> dict:
        """Cost for ``qir report``: adders, adder bits where both operands can be non-zero
        (``AdderGraph.lut_bits``), epilogue LUTs, bits of the registers inside the graph, depth
        and internal latency."""
        g = self.graph()
        n_out = g.n_out
        epilogue = 0
        if self.acc_type is not None:
            out_t = elem(self.output.type)
            epilogue = n_out * (self.EPILOGUE_LUTS_PER_BIT * out_t.width + self.EPILOGUE_LUTS_PER_OUTPUT)
        st = [int(v) for v in elements_to_numpy(self.stages).ravel()]
        node_st = [0] * g.n_in + st[:g.n_adders]
        last_use = list(node_st)
        for i in range(g.n_adders):
            k = g.n_in + i
            for o in (g.a[i], g.b[i]):
                last_use[o] = max(last_use[o], node_st[k])
        lat = self.latency.value.data
        for k in g.onode:
            if k >= 0:
                last_use[k] = max(last_use[k], lat)
        reg_bits = sum((last_use[k] - node_st[k]) * g.width(k) for k in range(g.n_nodes))
        return {"adders": g.n_adders, "adder_bits": g.lut_bits(), "epilogue_luts": epilogue, "reg_bits": reg_bits,
                "depth": g.max_depth(), "latency": lat}

    @property
    def acc_spec(self) -> Fixed:
        """The exact type of the sums (the result type when there is no epilogue)."""
        return self.acc_type.spec if self.acc_type is not None else elem(self.output.type)

    def verify_(self) -> None:
        where = _layer(self)
        in_t, _, n_in, n_out = _check_vector(self, where)
        nodes, outs = elements_to_numpy(self.nodes), elements_to_numpy(self.outputs)
        st = elements_to_numpy(self.stages)
        check_graph_arrays(where, n_in, n_out, nodes, outs, elements_to_numpy(self.offset))
        if self.style.data not in ADDERGRAPH_STYLES:
            raise VerifyException(f"{where}: style {self.style.data!r} is not one of {', '.join(ADDERGRAPH_STYLES)}")
        lat = self.latency.value.data
        if st.shape != (nodes.shape[0] + n_out,):
            raise VerifyException(f"{where}: stages must have one entry per node and per output "
                                  f"({nodes.shape[0] + n_out}), has {st.shape}")
        stl = st.tolist()
        node_st = [0] * n_in + stl[:nodes.shape[0]]
        for k, (a, _, b, _, _) in enumerate(nodes.tolist(), start=n_in):
            if not node_st[a] <= node_st[k] >= node_st[b] or node_st[k] > lat:
                raise VerifyException(f"{where}: node {k} is in stage {node_st[k]}, before an operand or after "
                                      f"the latency {lat}")
        for j, (k, _, _) in enumerate(outs.tolist()):
            if stl[nodes.shape[0] + j] != lat or (k >= 0 and node_st[k] > lat):
                raise VerifyException(f"{where}: output {j} must be in the last stage {lat}")
        acc = self.acc_spec
        frac = in_t.frac + self.shift.value.data
        if acc.frac != frac:
            raise VerifyException(f"{where}: the sums must have exactly {frac} fractional bits, have {acc.frac}")
        g = self.graph()
        lo = min((g.out_bounds(j)[0] for j in range(n_out)), default=0)
        hi = max((g.out_bounds(j)[1] for j in range(n_out)), default=0)
        if not acc.contains(lo, hi):
            raise VerifyException(f"{where}: the sums [{lo}, {hi}] (mantissas) do not fit {acc}; it needs "
                                  f"{Fixed.for_range(lo, hi, frac)}")
        epi = (self.acc_type, self.relu, self.rounding, self.overflow)
        if any(e is None for e in epi) and any(e is not None for e in epi):
            raise VerifyException(f"{where}: the epilogue needs acc_type, relu, rounding and overflow together")
        if self.rounding is not None:
            if self.rounding.data not in ROUNDING_MODES or self.overflow.data not in OVERFLOW_MODES:
                raise VerifyException(f"{where}: epilogue rounding/overflow must be one of {', '.join(ROUNDING_MODES)}"
                                      f" / {', '.join(OVERFLOW_MODES)}")
        if self.style.data in ("ternary", "po2"):
            mags = {abs(int(v)) for v in g.matrix().ravel()} - {0}
            if any(v & (v - 1) for v in mags) or (self.style.data == "ternary" and len(mags) > 1):
                raise VerifyException(f"{where}: style {self.style.data!r} needs weights "
                                      + ("in {-c, 0, c} (c a power of two)" if self.style.data == "ternary"
                                         else "0 or +-2^k"))


def check_graph_arrays(where: str, n_in: int, n_out: int, nodes, outs, off, max_shift: int | None = None) -> None:
    """The arrays of an adder graph (``qir.addergraph``, ``qir.digitserial``): ``nodes`` N x 5
    [a, sa, b, sb, sign] on earlier nodes, ``outputs`` n_out x 3 [node, shift, sign] (node -1:
    none), ``offset`` (n_out,); shifts >= 0 (and <= ``max_shift`` when given), signs +-1."""
    if nodes.ndim != 2 or nodes.shape[1] != 5:
        raise VerifyException(f"{where}: nodes must be an N x 5 array [a, sa, b, sb, sign]")
    if outs.shape != (n_out, 3) or off.shape != (n_out,):
        raise VerifyException(f"{where}: outputs must be {n_out} x 3 [node, shift, sign] and offset ({n_out},)")
    top = float("inf") if max_shift is None else max_shift
    shifts = "non-negative shifts" if max_shift is None else f"shifts 0 .. {max_shift}"
    n_nodes = n_in + nodes.shape[0]
    for k, (a, sa, b, sb, sg) in enumerate(nodes.tolist(), start=n_in):
        if not (0 <= a < k and 0 <= b < k) or not 0 <= sa <= top or not 0 <= sb <= top or sg not in (-1, 1):
            raise VerifyException(f"{where}: node {k} = [{a}, {sa}, {b}, {sb}, {sg}] must use earlier nodes, "
                                  f"{shifts} and sign +-1")
    for j, (k, sh, sg) in enumerate(outs.tolist()):
        if not -1 <= k < n_nodes or not 0 <= sh <= top or sg not in (-1, 1):
            raise VerifyException(f"{where}: output {j} = [{k}, {sh}, {sg}] is not a node, shift >= 0, sign +-1")


@irdl_op_definition
class ThresholdOp(IRDLOperation):
    """A per-channel step: ``y = above[c] if x >= thresholds[c] else below[c]`` on mantissas
    (channel = last axis; (1,) broadcasts).  Thresholds are input mantissas in
    [min_int, max_int + 1] of the input type (min_int: always above, max_int + 1: always below);
    below/above are result mantissas.  ``qir-fold-threshold`` writes it for a batchnorm + sign
    chain after a non-binary layer."""

    name = "qir.threshold"
    input = operand_def(TensorType)
    thresholds = prop_def(DenseIntOrFPElementsAttr)
    below = prop_def(DenseIntOrFPElementsAttr)
    above = prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `thresholds` `(` $thresholds `)` `below` `(` $below `)` `above` `(` $above `)` "
        "attr-dict `:` type($input) `->` type($output)"
    )

    def table(self):
        """(thresholds, below, above), each broadcast to shape (C,)."""
        c = shape_of(self.input.type)[-1]
        return tuple(np.broadcast_to(elements_to_numpy(a), (c,)) for a in (self.thresholds, self.below, self.above))

    def reachable(self) -> list[list[int]]:
        """Per element (row-major), the codes it can take (sorted)."""
        in_t = elem(self.input.type)
        per_channel = []
        for t, b, a in zip(*(v.tolist() for v in self.table())):
            codes = ({b} if t > in_t.min_int else set()) | ({a} if t <= in_t.max_int else set())
            per_channel.append(sorted(codes))
        size = int(np.prod(shape_of(self.input.type)))
        return [per_channel[k % len(per_channel)] for k in range(size)]

    def verify_(self) -> None:
        where = _layer(self)
        in_t, out_t, ishape = _check_per_channel(self, where)
        for name in ("thresholds", "below", "above"):
            v = elements_to_numpy(getattr(self, name))
            if v.shape not in ((ishape[-1],), (1,)):
                raise VerifyException(f"{where}: {name} shape {v.shape} must be ({ishape[-1]},) or (1,)")
        t, b, a = self.table()
        if t.size and (t.min() < in_t.min_int or t.max() > in_t.max_int + 1):
            raise VerifyException(f"{where}: thresholds must lie in [{in_t.min_int}, {in_t.max_int + 1}] "
                                  f"(input mantissas of {in_t}, or one past the largest)")
        _check_in_type(b, out_t, f"{where} below")
        _check_in_type(a, out_t, f"{where} above")


# ----------------------------------------------------------- binary layers: XNOR + popcount
def xnor_bit(one: int, zero: int) -> int:
    """The bit of the raw two's-complement code that tells ``one`` from ``zero``: the lowest bit
    in which they differ."""
    d = one ^ zero
    return (d & -d).bit_length() - 1


# ------------------------------------------------------------------ popcount structure and cost
#: input bits counted by one logic block (a 6-input, 3-output function: three 6-input LUTs)
LEAF_BITS = 6


def popcount_tree(n: int) -> tuple[list[int], list[list[int]]]:
    """The popcount's structure for ``n`` bits: leaf sizes (consecutive groups of at most
    ``LEAF_BITS`` bits, counted by logic), then the balanced adder tree over the leaf counts as
    levels of maximum counts (level 0 = the leaves); every node's width is the bit length of
    its maximum count."""
    leaves = [min(LEAF_BITS, n - s) for s in range(0, n, LEAF_BITS)]
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        levels.append([cur[k] + cur[k + 1] for k in range(0, len(cur) - 1, 2)] + ([cur[-1]] if len(cur) & 1 else []))
    return leaves, levels


#: Yosys ``synth_xilinx`` LUTs per input bit of one output's popcount (leaves, tree and the
#: XNOR together), measured on 64-, 32- and 16-input random layers: 0.79, 0.79, 0.68
XNOR_LUTS_PER_INPUT = 0.78


@irdl_op_definition
class XnorOp(IRDLOperation):
    """A binary-weight, binary-activation dense layer: XNOR of input bits and weight bits, then
    popcount, optionally compared with a per-output threshold.

    Every input code means one bit: ``bit(x) = 1`` iff bit k of x's raw two's-complement code
    equals bit k of ``one``, k = the lowest bit in which the codes ``one`` and ``zero`` differ
    (for x in {one, zero}: x == one).  ``weights`` is an (n_out, n_in) 0/1 matrix (1 = +).
    ``p[j] = #{i : bit(x[i]) == weights[j, i]}`` in [0, n_in].  Without thresholds the result is
    ``p`` (an integer-grid type holding [0, n_in]).  With ``thresholds`` T (in [0, n_in + 1]) and
    the codes ``below``/``above`` (result mantissas), ``y[j] = above[j] if p[j] >= T[j] else
    below[j]``.
    """

    name = "qir.xnor"
    input = operand_def(TensorType)
    weights = prop_def(DenseIntOrFPElementsAttr)
    one = prop_def(IntegerAttr)
    zero = prop_def(IntegerAttr)
    thresholds = opt_prop_def(DenseIntOrFPElementsAttr)
    below = opt_prop_def(DenseIntOrFPElementsAttr)
    above = opt_prop_def(DenseIntOrFPElementsAttr)
    reuse = opt_prop_def(IntegerAttr)
    output = result_def(TensorType)
    traits = traits_def(LayerStage(), Pure())
    custom_directives = (BareInt,)
    assembly_format = (
        "$input `weights` `(` $weights `)` `one` custom<BareInt>($one) `zero` custom<BareInt>($zero) "
        "(`thresholds` `(` $thresholds^ `)` `below` `(` $below `)` `above` `(` $above `)`)? "
        "(`reuse` $reuse^)? attr-dict `:` type($input) `->` type($output)"
    )

    @property
    def R(self) -> int:
        """The reuse factor (1: not folded; R > 1: ``qir.folding``, popcounts accumulated over R
        cycles, S = ceil(n_in / R) bits per cycle)."""
        return 1 if self.reuse is None else self.reuse.value.data

    def cycles(self) -> int:
        """Internal latency: folded, the count is registered R cycles after the input (the
        threshold compare after it is combinational); unfolded, 0 (combinational)."""
        return self.R if self.R > 1 else 0

    @property
    def n_in(self) -> int:
        return shape_of(self.input.type)[0]

    def bit(self) -> int:
        return xnor_bit(self.one.value.data, self.zero.value.data)

    def levels(self) -> int:
        """Adder levels of the popcount tree, plus one for the threshold compare (folded: of one
        cycle's S bits, plus the accumulator)."""
        if self.R > 1:
            from qir.folding import fold_shape

            S = fold_shape(self.n_in, shape_of(self.output.type)[0], self.R).S
            return max((S - 1).bit_length(), 1) + 1 + (self.thresholds is not None)
        return max((self.n_in - 1).bit_length(), 1) + (self.thresholds is not None)

    def threshold_table(self):
        """(thresholds, below, above) as int64 arrays of shape (n_out,); None without thresholds."""
        if self.thresholds is None:
            return None
        return (elements_to_numpy(self.thresholds), elements_to_numpy(self.below), elements_to_numpy(self.above))

    def cost(self) -> dict:
        """Cost for ``qir report``: per output that is not constant, ``XNOR_LUTS_PER_INPUT`` LUTs
        per input plus one for a threshold compare (``luts``); for information the structure's
        tree adders and their bits (result width minus the carry-out) plus the compare's width
        (``adder_bits``) and the leaves' output bits (``leaf_luts``).  Folded (reuse > 1):
        ``qir.folding.estimate``."""
        if self.R > 1:
            from qir.folding import estimate

            return estimate(self, self.R, "xnor")
        n, n_out = self.n_in, shape_of(self.output.type)[0]
        tt = self.threshold_table()
        leaves, levels = popcount_tree(n)
        leaf_bits = sum(c.bit_length() for c in leaves if c > 1)
        tree_bits = 0
        for lv, nxt in zip(levels, levels[1:]):
            paired = len(lv) // 2
            tree_bits += sum(max(v.bit_length() - 1, 1) for v in nxt[:paired])
        adders = sum(len(lv) // 2 for lv in levels)
        live = sum(1 for j in range(n_out) if tt is None or 0 < int(tt[0][j]) <= n)
        compare = tt is not None
        return {"adders": live * adders, "adder_bits": live * (tree_bits + (n.bit_length() if compare else 0)),
                "leaf_luts": live * leaf_bits, "luts": round(live * (XNOR_LUTS_PER_INPUT * n + compare)),
                "depth": self.levels()}

    def reachable(self) -> list[list[int]]:
        """Per output element, the codes it can take (sorted)."""
        return xnor_reachable(self.threshold_table(), self.n_in, shape_of(self.output.type)[0])

    def verify_(self) -> None:
        where = _layer(self)
        in_t, out_t, n_in, n_out = _check_vector(self, where)
        w = elements_to_numpy(self.weights)
        if w.shape != (n_out, n_in):
            raise VerifyException(f"{where}: weights shape {w.shape} != ({n_out}, {n_in}) (outputs x inputs)")
        if w.size and not np.isin(w, (0, 1)).all():
            raise VerifyException(f"{where}: weights must be bits (0 = -, 1 = +)")
        if self.R < 1:
            raise VerifyException(f"{where}: reuse must be an integer >= 1, got {self.R}")
        check_xnor_codes(self, where, in_t, out_t, n_in, n_out)


def check_xnor_codes(op, where: str, in_t, out_t, n_in: int, n_out: int) -> None:
    """The checks ``qir.xnor`` and the xnor ``qir.stream_mvu`` share: the codes ``one``/``zero``
    of the input type, thresholds/below/above together, and the result type (the popcount's
    [0, n_in] on the integer grid, or the two codes)."""
    one, zero = op.one.value.data, op.zero.value.data
    if one == zero or not (in_t.contains(one, one) and in_t.contains(zero, zero)):
        raise VerifyException(f"{where}: the codes one {one} and zero {zero} must be two different "
                              f"mantissas of the input type {in_t}")
    present = [a is not None for a in (op.thresholds, op.below, op.above)]
    if any(present) and not all(present):
        raise VerifyException(f"{where}: thresholds, below and above go together")
    if op.thresholds is None:
        _check_bounds(where, out_t, 0, n_in, 0)
        return
    t, b, a = op.threshold_table()
    for name, v in (("thresholds", t), ("below", b), ("above", a)):
        if v.shape != (n_out,):
            raise VerifyException(f"{where}: {name} shape {v.shape} != ({n_out},)")
    if t.size and (t.min() < 0 or t.max() > n_in + 1):
        raise VerifyException(f"{where}: thresholds must lie in [0, {n_in + 1}] (0: always above, "
                              f"{n_in + 1}: always below)")
    _check_in_type(b, out_t, f"{where} below")
    _check_in_type(a, out_t, f"{where} above")


def xnor_reachable(tt, n: int, n_out: int) -> list[list[int]]:
    """Per output element, the codes a popcount of ``n`` bits (``tt`` None) or its threshold
    table ``tt`` = (T, below, above) can give (sorted)."""
    if tt is None:
        return [list(range(n + 1)) for _ in range(n_out)]
    out = []
    for t, b, a in zip(*(v.tolist() for v in tt)):
        codes = ({b} if t > 0 else set()) | ({a} if t <= n else set())
        out.append(sorted(codes))
    return out


# -------------------------------------------------------------- folded layers (issue 12)
#: implementations of a folded layer: ``rom`` (weights in a ROM, S x n_out product units)
MVU_IMPLS = ("rom", "muxgraph", "digitserial")
#: styles of a layer folded as an adder graph (``impl`` muxgraph / digitserial): the unfolded
#: adder-graph styles
FOLDED_GRAPH_STYLES = ("cmvm", "po2", "ternary")


class FoldedLayerOp(ExactResult, ConstProductOp):
    """A ``ConstProductOp`` folded over ``reuse`` = R cycles (``qir.mvu``, ``qir.muxgraph``,
    ``qir.digitserial``): 1-D input and result, exact result type (result frac = input frac +
    shift)."""

    reuse = prop_def(IntegerAttr)

    @property
    def R(self) -> int:
        """Cycles per input (the reuse factor)."""
        return self.reuse.value.data


class FoldedGraphOp(FoldedLayerOp):
    """A ``FoldedLayerOp`` computed by an adder graph (``qir.muxgraph``, ``qir.digitserial``): the
    graph's ``nodes``/``outputs`` arrays (their format is the subclass's), a ``style`` of
    ``FOLDED_GRAPH_STYLES``; ``graph()`` decodes them (cached), the cost is ``qir.folding``'s."""

    nodes = prop_def(DenseIntOrFPElementsAttr)
    outputs = prop_def(DenseIntOrFPElementsAttr)

    def cost(self) -> dict:
        """Cost for ``qir report``: ``qir.folding.estimate`` of the lowered op."""
        from qir.folding import estimate

        return estimate(self, self.R)

    def _verify_graph(self, where: str, in_t, n_in: int, n_out: int) -> None:
        """The subclass's own checks (folding parameters, arrays)."""
        raise NotImplementedError

    def verify_(self) -> None:
        where = _layer(self)
        in_t, out_t, n_in, n_out = _check_vector(self, where)
        self._verify_graph(where, in_t, n_in, n_out)
        if self.style.data not in FOLDED_GRAPH_STYLES:
            raise VerifyException(f"{where}: style {self.style.data!r} is not one of {', '.join(FOLDED_GRAPH_STYLES)}")
        _check_shifted_result(self, where, in_t, out_t)


@irdl_op_definition
class MvuOp(FoldedLayerOp):
    """A constant matrix-vector product folded over ``reuse`` = R cycles (FINN's MVAU, hls4ml's
    Resource strategy): the numbers of ``qir.cmvm`` (out[j] = sum_i in[i] * matrix[i, j] +
    offset[j] on mantissas, result frac = input frac + shift, exact result type); the hardware
    (``qir.folding``, ``rtl/fold.py``) takes a new input every R cycles and computes S =
    ceil(n_in / R) inputs x n_out outputs per cycle from a weight ROM (``impl = "rom"``) with
    exact accumulators, the result R cycles after the input.  ``style``: ``mac`` (multipliers),
    ``po2`` (weights 0 or +-2^k: shift-add units), ``ternary`` (0 or +-c, c = 2^k)."""

    name = "qir.mvu"
    matrix = prop_def(DenseIntOrFPElementsAttr)
    impl = prop_def(StringAttr)
    assembly_format = (
        "$input `matrix` `(` $matrix `)` `offset` `(` $offset `)` `shift` $shift `style` $style "
        "`reuse` $reuse `impl` $impl attr-dict `:` type($input) `->` type($output)"
    )

    def cycles(self) -> int:
        """Internal latency: the result is registered R cycles after the input (``qir-pipeline``
        and the RTL count it)."""
        return self.R

    def cost(self) -> dict:
        """Cost for ``qir report``: ``qir.folding.estimate`` (LUT, FF, DSP, ROM bits, cycles per
        beat)."""
        from qir.folding import estimate

        return estimate(self, self.R, self.style.data)

    def exact_bounds(self):
        """(lo, hi, frac) over every output, x anywhere in the input type's range."""
        return matrix_exact_bounds(self, elements_to_numpy(self.matrix))

    def levels(self) -> int:
        """Adder levels of one cycle's products (S of them) and the accumulator."""
        from qir.folding import fold_shape

        return tree_levels(fold_shape(shape_of(self.input.type)[0], shape_of(self.output.type)[0], self.R).S) + 1

    def verify_(self) -> None:
        _check_1d(self, _layer(self))
        check_mvu(self, shape_of(self.input.type)[0])


def check_mvu(self, n_in: int) -> None:
    """The checks ``qir.mvu`` and ``qir.stream_mvu`` share: matrix (n_in, n_out) and offset shapes,
    folded style, R >= 1, impl, po2/ternary weights, result grid and exact bounds."""
    from qir.folding import FOLD_STYLES

    where = _layer(self)
    in_t = elem(self.input.type, f"{where} input")
    out_t = elem(self.output.type, f"{where} result")
    (n_out,) = shape_of(self.output.type)
    m, off = elements_to_numpy(self.matrix), elements_to_numpy(self.offset)
    if m.shape != (n_in, n_out) or off.shape != (n_out,):
        raise VerifyException(f"{where}: matrix {m.shape} / offset {off.shape} do not match "
                              f"({n_in}, {n_out}) / ({n_out},)")
    styles = tuple(s for s in FOLD_STYLES if s != "xnor")
    if self.impl.data in ("muxgraph", "digitserial"):  # adder graphs
        styles = FOLDED_GRAPH_STYLES
    if self.style.data not in styles:
        raise VerifyException(f"{where}: style {self.style.data!r} is not one of {', '.join(styles)} "
                              "(a folded xnor layer is a qir.xnor with reuse)")
    if self.R < 1:
        raise VerifyException(f"{where}: reuse must be an integer >= 1, got {self.R}")
    if self.impl.data not in MVU_IMPLS:
        raise VerifyException(f"{where}: impl {self.impl.data!r} is not one of {', '.join(MVU_IMPLS)}")
    mags = {abs(int(v)) for v in m.ravel()} - {0}
    if self.style.data in ("po2", "ternary") and (any(v & (v - 1) for v in mags)
                                                   or (self.style.data == "ternary" and len(mags) > 1)):
        raise VerifyException(f"{where}: style {self.style.data!r} needs weights "
                              + ("in {-c, 0, c} (c a power of two)" if self.style.data == "ternary"
                                 else "0 or +-2^k"))
    _check_shifted_result(self, where, in_t, out_t)


#: the ops of this module, registered with the dialect (qir.dialect.QIR)
OPS = (CmvmOp, RegOp, AdderGraphOp, ThresholdOp, XnorOp, MvuOp)
