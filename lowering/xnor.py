"""The ``xnor`` dense style: binary weights times a two-valued input as XNOR + popcount.

A ``qir.dense`` qualifies when its folded integer weights are ``s[i, j] * a[j]`` with
s = +-1 and one magnitude a[j] >= 0 per output column, and its input is provably two-valued
{lo, hi} (``qir.lowering.value_sets.two_valued``).  With b[i] = [x[i] == hi], d = hi - lo,
S[j] = sum_i s[i, j] and N0[j] = #{i : s[i, j] = -1}, the popcount p[j] = #{i : b[i] == [s[i, j] > 0]}
gives sum_i s[i, j] * b[i] = p[j] - N0[j], so on the folded grid (``frac`` fractional bits)

    y[j] = sum_i x[i] * s[i, j] * a[j] + off[j] = g[j] * p[j] + c[j],
    g[j] = a[j] * d,  c[j] = a[j] * (lo * S[j] - d * N0[j]) + off[j].

``lower_xnor`` writes ``qir.xnor`` (popcount, ``ufixed<k,k>``, k = bit length of n_in) and an
exact ``qir.scale`` by g, c; its verifier bounds the scale over the popcount type's full range
[0, 2^k - 1], so when that overshoots the dense's result type a ``qir.quantize`` (no rounding,
``wrap``: exact, because p <= n_in and the true result fits) brings it back to that very type.
The rest of the model is untouched; ``qir-fold-threshold`` later folds a following batchnorm /
sign chain into thresholds.
"""
from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, i64
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import DenseOp, QuantizeOp, ScaleOp, XnorOp, elem, fixed_type, int_elements, shape_of, tensor_of
from qir.fixed import Fixed
from qir.ir import layer_of, set_layer
from qir.lowering.value_sets import two_valued


def sign_magnitude(w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
    """(s, a): w[i, j] = s[i, j] * a[j] with s = +-1 (+1 where w = 0, i.e. a zero column),
    or the reason why w is not of that form."""
    w = np.asarray(w, dtype=object)
    mags = np.abs(w)
    a = mags.max(axis=0) if w.size else np.zeros(w.shape[1], dtype=object)
    bad = [j for j in range(w.shape[1]) if any(m != a[j] for m in mags[:, j])]
    if bad:
        j = bad[0]
        vals = sorted({int(v) for v in w[:, j]})
        shown = ", ".join(map(str, vals[:6])) + (", ..." if len(vals) > 6 else "")
        return (f"its weights are not +-a with one magnitude a per output (output {j} has the mantissas "
                f"{shown})")
    s = np.where(w < 0, -1, 1).astype(np.int64)
    return s, a


def xnor_plan(dense: DenseOp) -> tuple | str:
    """(s, a, lo, hi) when ``dense`` qualifies for the xnor style, else the reason it does not."""
    if len(shape_of(dense.input.type)) != 1:
        return "its input is not a 1-D tensor"
    w = dense.folded()[0]
    sm = sign_magnitude(w)
    if isinstance(sm, str):
        return sm
    pair = two_valued(dense.input)
    if pair is None:
        return ("its input is not provably two-valued (no chain of element-wise ops back to an "
                "enumerable source gives every element the same two codes)")
    return (*sm, *pair)


def xnor_constants(dense: DenseOp, plan) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(weight bits (n_out, n_in), g, c, frac) for a qualifying ``dense``."""
    s, a, lo, hi = plan
    _, off, frac, _ = dense.folded()
    d = hi - lo
    S = s.sum(axis=0).astype(object)
    n0 = (s < 0).sum(axis=0).astype(object)
    a = np.asarray(a, dtype=object)
    g = a * d
    c = a * (lo * S - d * n0) + np.asarray(off, dtype=object)
    bits = (s > 0).astype(np.int64).T
    return bits, g, c, frac


def lower_xnor(dense: DenseOp, plan) -> None:
    """Replace ``dense`` by ``qir.xnor`` + ``qir.scale`` (+ a wrap ``qir.quantize``)."""
    bits, g, c, frac = xnor_constants(dense, plan)
    _, _, lo, hi = plan
    n_in = shape_of(dense.input.type)[0]
    n_out = bits.shape[0]
    layer = layer_of(dense)
    k = max(n_in.bit_length(), 1)
    pop_t = Fixed(k, k, False)
    xn = XnorOp.build(operands=[dense.input], result_types=[tensor_of(pop_t, (n_out,))],
                      properties={"weights": int_elements(bits), "one": IntegerAttr(hi, i64),
                                  "zero": IntegerAttr(lo, i64)})
    set_layer(xn, layer)
    out_t = elem(dense.output.type)
    sh = out_t.frac - frac  # >= 0 (DenseOp verifier)
    gs, cs = g * (1 << sh), c * (1 << sh)
    st = Fixed.for_range(int(min(gs)), int(max(gs)), out_t.frac) if n_out else Fixed(1, 1, False)
    bt = Fixed.for_range(int(min(cs)), int(max(cs)), out_t.frac) if n_out else Fixed(1, 1, False)
    ends = [gs * 0 + cs, gs * pop_t.max_int + cs]
    lo_b = int(min(np.minimum(*ends), default=0))
    hi_b = int(max(np.maximum(*ends), default=0))
    scale_t = out_t if out_t.contains(lo_b, hi_b) else Fixed.for_range(lo_b, hi_b, out_t.frac)
    sc = ScaleOp.build(operands=[xn.output], result_types=[tensor_of(scale_t, (n_out,))],
                       properties={"scale": int_elements(gs), "scale_type": fixed_type(st),
                                   "bias": int_elements(cs), "bias_type": fixed_type(bt)})
    set_layer(sc, layer)
    new = [xn, sc]
    if scale_t != out_t:
        new.append(set_layer(QuantizeOp(sc.output, dense.output.type, "trn", "wrap"), layer))
    Rewriter.insert_op(new, InsertPoint.before(dense))
    dense.output.replace_all_uses_with(new[-1].results[0])
    Rewriter.erase_op(dense)


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
LUTS_PER_INPUT = 0.78


def xnor_estimate(op: XnorOp) -> dict:
    """Cost of a ``qir.xnor`` for ``qir.report.estimate``: per output that is not constant,
    ``LUTS_PER_INPUT`` LUTs per input plus one for a threshold compare (``luts``); for
    information the structure's tree adders and their bits (result width minus the carry-out)
    plus the compare's width (``adder_bits``) and the leaves' output bits (``leaf_luts``)."""
    n, n_out = op.n_in, shape_of(op.output.type)[0]
    tt = op.threshold_table()
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
            "leaf_luts": live * leaf_bits, "luts": round(live * (LUTS_PER_INPUT * n + compare)),
            "depth": op.levels()}
