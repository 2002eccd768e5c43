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
from qir.lowering.value_sets import element_codes, two_valued
from xdsl.dialects.builtin import IntegerAttr, i64
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import DenseOp, QuantizeOp, ScaleOp, XnorOp, elem, fixed_type, int_elements, shape_of, tensor_of
from qir.fixed import Fixed
from qir.ir import layer_of, set_layer


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
        codes = element_codes(dense.input)
        if codes is not None and np.unique(codes).size <= 8:  # name the codes (a padded window adds its fill)
            return (f"its input is not provably two-valued (it can take the codes "
                    f"{', '.join(str(int(c)) for c in np.unique(codes))})")
        return ("its input is not provably two-valued (no chain of element-wise ops back to an "
                "enumerable source gives every element the same two codes)")
    return (*sm, *pair)


def xnor_constants(dense: DenseOp, plan) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(weight bits (n_out, n_in), g, c, frac) for a qualifying ``dense``."""
    s, a, lo, hi = plan
    _, off, frac = dense.folded()
    d = hi - lo
    S = s.sum(axis=0).astype(object)
    n0 = (s < 0).sum(axis=0).astype(object)
    a = np.asarray(a, dtype=object)
    g = a * d
    c = a * (lo * S - d * n0) + np.asarray(off, dtype=object)
    bits = (s > 0).astype(np.int64).T
    return bits, g, c, frac


def lower_xnor(dense: DenseOp, plan, reuse: int = 1) -> XnorOp:
    """Replace ``dense`` by ``qir.xnor`` + ``qir.scale`` (+ a wrap ``qir.quantize``); ``reuse`` > 1:
    a folded ``qir.xnor`` (``qir.folding``).  Returns the ``qir.xnor``."""
    bits, g, c, frac = xnor_constants(dense, plan)
    _, _, lo, hi = plan
    n_in = shape_of(dense.input.type)[0]
    n_out = bits.shape[0]
    layer = layer_of(dense)
    k = max(n_in.bit_length(), 1)
    pop_t = Fixed(k, k, False)
    xn = XnorOp.build(operands=[dense.input], result_types=[tensor_of(pop_t, (n_out,))],
                      properties={"weights": int_elements(bits), "one": IntegerAttr(hi, i64),
                                  "zero": IntegerAttr(lo, i64),
                                  **({"reuse": IntegerAttr(reuse, i64)} if reuse > 1 else {})})
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
    return xn
