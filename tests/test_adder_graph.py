"""The constant-matrix adder-graph library (qir.lowering.adder_graph): exactness, widths, cost."""
import itertools

import numpy as np
import pytest
from qir.lowering.adder_graph import AdderGraph, build, csd, range_bits, tz


def _corners(lo, hi, rng, n_random=300):
    """All-min, all-max, alternating corners, single-hot extremes and random points."""
    n = len(lo)
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    rows = [lo, hi, np.where(np.arange(n) % 2, lo, hi), np.where(np.arange(n) % 2, hi, lo), np.zeros(n)]
    for i in range(min(n, 16)):
        r = lo.copy()
        r[i] = hi[i]
        rows.append(r)
    rows.append(np.clip(np.zeros(n, dtype=np.int64), lo, hi))
    rand = rng.integers(lo, hi + 1, size=(n_random, n))
    return np.vstack([np.clip(np.asarray(rows, dtype=np.int64), lo, hi), rand])


def _check_exact(m, off, lo, hi, rng, **kw):
    g = build(m, off, lo, hi, **kw)
    x = _corners(lo, hi, rng)
    off = np.zeros(np.shape(m)[1], dtype=np.int64) if off is None else off
    want = x.astype(object) @ np.asarray(m, dtype=object) + np.asarray(off, dtype=object)
    got = g.evaluate(x)
    assert (got.astype(object) == want).all()
    # every node stays within its exact interval, and the interval bounds are attained
    vals = g.node_values(x)
    for k in range(g.n_in, g.n_nodes):
        v = vals[k]
        assert v.min() >= g.lo[k] and v.max() <= g.hi[k]
        c = np.asarray(g.coef_vector(k), dtype=object)
        arg_hi = np.where(c > 0, hi, lo)
        arg_lo = np.where(c > 0, lo, hi)
        assert int(np.dot(arg_hi.astype(object), c)) == g.hi[k]
        assert int(np.dot(arg_lo.astype(object), c)) == g.lo[k]
        assert range_bits(int(v.min()), int(v.max())) <= g.width(k)
        # known-zero LSBs really are zero
        if g.zero_lsbs[k]:
            assert (v.astype(object) % (1 << g.zero_lsbs[k]) == 0).all()
    for j in range(g.n_out):
        lo_j, hi_j = g.out_bounds(j)
        assert got[:, j].min() >= lo_j and got[:, j].max() <= hi_j
    assert (g.matrix() == np.asarray(m, dtype=object)).all()
    return g


@pytest.mark.parametrize("n", list(range(-70, 71)) + [2**20 - 1, -(2**33) + 5, 0x5555_5555])
def test_csd_digits(n):
    d = csd(n)
    assert sum(s << p for p, s in d) == n
    pos = [p for p, _ in d]
    assert all(b - a >= 2 for a, b in zip(pos, pos[1:]))  # non-adjacent form
    assert len(d) <= (abs(n).bit_length() + 2) // 2 + 1


def test_tz_and_range_bits():
    assert [tz(v) for v in (1, 2, 12, -8)] == [0, 1, 2, 3]
    assert range_bits(0, 0) == 1 and range_bits(0, 255) == 8 and range_bits(-128, 127) == 8
    assert range_bits(-129, 0) == 9 and range_bits(-1, 0) == 1 and range_bits(-1, 1) == 2


@pytest.mark.parametrize("seed", range(6))
def test_random_dense_signed_inputs(seed):
    rng = np.random.default_rng(seed)
    n_in, n_out = rng.integers(1, 12), rng.integers(1, 12)
    m = rng.integers(-40, 41, size=(n_in, n_out))
    off = rng.integers(-1000, 1000, size=n_out)
    lo, hi = [-(1 << 9)] * n_in, [(1 << 9) - 1] * n_in
    _check_exact(m, off, lo, hi, rng)


@pytest.mark.parametrize("seed", range(4))
def test_random_sparse_unsigned_and_mixed_ranges(seed):
    rng = np.random.default_rng(100 + seed)
    n_in, n_out = 20, 9
    m = rng.integers(-31, 32, size=(n_in, n_out)) * (rng.random((n_in, n_out)) < 0.4)
    lo = rng.integers(-50, 5, size=n_in)
    lo[: n_in // 2] = 0
    hi = lo + rng.integers(0, 90, size=n_in)
    off = rng.integers(-5, 5, size=n_out) << rng.integers(0, 6, size=n_out)
    _check_exact(m, off, lo, hi, rng)


@pytest.mark.parametrize("kind", ["binary", "ternary", "po2", "negative", "zero_cols", "all_zero",
                                  "one_hot", "wide_consts"])
def test_special_matrices(kind):
    rng = np.random.default_rng(7)
    n_in, n_out = 10, 7
    if kind == "binary":
        m = rng.choice([-1, 1], size=(n_in, n_out))
    elif kind == "ternary":
        m = rng.choice([-1, 0, 1], size=(n_in, n_out))
    elif kind == "po2":
        m = rng.choice([-1, 1], size=(n_in, n_out)) << rng.integers(0, 7, size=(n_in, n_out))
        m = m * (rng.random((n_in, n_out)) < 0.7)
    elif kind == "negative":
        m = -rng.integers(1, 64, size=(n_in, n_out))
    elif kind == "zero_cols":
        m = rng.integers(-9, 10, size=(n_in, n_out))
        m[:, [0, 3, 6]] = 0
    elif kind == "all_zero":
        m = np.zeros((n_in, n_out), dtype=np.int64)
    elif kind == "one_hot":
        m = np.zeros((n_in, n_out), dtype=np.int64)
        m[2, 0] = 1
        m[5, 1] = -1
        m[7, 2] = 8
    else:
        m = rng.integers(-(2**40), 2**40, size=(n_in, n_out))
    off = rng.integers(-300, 300, size=n_out)
    g = _check_exact(m, off, [-128] * n_in, [127] * n_in, rng)
    if kind in ("po2", "one_hot"):
        # a single-digit column is a shifted wire; summing k digits takes k - 1 adders at most
        digits = sum(len(csd(v)) for v in m.ravel())
        assert g.n_adders <= max(digits - n_out, 0) + n_out
    if kind == "all_zero":
        assert g.n_adders == 0 and all(k == -1 for k in g.onode)
    if kind == "one_hot":
        assert g.n_adders == 0 and g.cost() == sum(g.out_cost(j) for j in range(n_out))


def test_wide_values_use_python_ints():
    rng = np.random.default_rng(3)
    m = rng.integers(-(2**40), 2**40, size=(4, 3))
    lo, hi = [-(2**30)] * 4, [2**30 - 1] * 4
    g = _check_exact(m, [0, 1, -1], lo, hi, rng)
    assert max(g.width(k) for k in range(g.n_nodes)) > 62


def test_constant_zero_input_is_ignored():
    m = np.array([[3, 5], [7, 9]])
    g = build(m, [1, 2], [0, -4], [0, 3])
    assert all(0 not in c for c in g.coefs[g.n_in:])
    x = np.array([[0, -4], [0, 3]])
    assert (g.evaluate(x) == x @ m + [1, 2]).all()


def test_sharing_reduces_cost_and_adders():
    # every column contains x0 + x1 (shifted differently) and x2 - x3: both are shared
    rng = np.random.default_rng(11)
    base = np.array([[1], [1], [4], [-4]])
    m = np.hstack([base << s for s in range(6)]) + np.vstack([np.zeros((4, 6), dtype=int)])
    m = np.vstack([m, rng.integers(-3, 4, size=(2, 6))])
    lo, hi = [-(2**11)] * 6, [2**11 - 1] * 6
    shared = _check_exact(m, None, lo, hi, rng)
    plain = build(m, None, lo, hi, cse=False)
    assert shared.n_adders < plain.n_adders
    assert shared.cost() < plain.cost()


def test_cost_counts_result_bits_above_passthrough():
    # x0 + (x1 << 4) on 8-bit signed inputs: the 4 LSBs pass through, 13-bit result -> 9 bits
    g = build(np.array([[1], [16]]), None, [-128, -128], [127, 127])
    assert g.n_adders == 1 and g.width(g.n_in) == 13
    assert g.node_cost(g.n_in) == 9 and g.cost() == 9
    # a constant added at the output costs the bits from its lowest set bit up
    g2 = build(np.array([[1]]), [64], [0], [255])  # x + 64, x in [0, 255]: 9 bits, bit 6 up -> 3
    assert g2.n_adders == 0 and g2.cost() == 3
    # subtraction keeps the subtrahend on the side with more zero LSBs: x0 - (x1 << 3)
    g3 = build(np.array([[1], [-8]]), None, [-128, -128], [127, 127])
    assert g3.node_cost(g3.n_in) == g3.width(g3.n_in) - 3


@pytest.mark.parametrize("slack", [0, 1, 3])
def test_depth_budget(slack):
    rng = np.random.default_rng(5)
    m = rng.integers(-63, 64, size=(24, 16))
    g = build(m, None, [-512] * 24, [511] * 24, depth_slack=slack)
    for j in range(16):
        k = g.onode[j]
        digits = sum(len(csd(v)) for v in m[:, j])
        assert g.depth[k] <= (digits - 1).bit_length() + slack
    x = _corners([-512] * 24, [511] * 24, rng)
    assert (g.evaluate(x) == x @ m).all()


def test_stages_respect_the_depth_per_stage():
    rng = np.random.default_rng(9)
    m = rng.integers(-63, 64, size=(16, 8))
    g = build(m, rng.integers(-9, 9, size=8), [-512] * 16, [511] * 16)
    for per_stage in (1, 2, 3):
        st, ost = g.stages(per_stage)
        for k in range(g.n_in, g.n_nodes):
            i = k - g.n_in
            assert st[g.a[i]] <= st[k] and st[g.b[i]] <= st[k]
            assert st[k] == (g.depth[k] - 1) // per_stage
        for j, k in enumerate(g.onode):
            assert ost[j] >= st[k]
        assert max(ost) <= g.max_depth() // per_stage + 1


def test_prune_keeps_semantics():
    g = AdderGraph(2, [-8, -8], [7, 7], a=[0, 0], sa=[0, 1], b=[1, 1], sb=[0, 0], sign=[1, -1],
                   onode=[3], oshift=[2], osign=[-1], offset=[5])
    from qir.lowering.adder_graph import prune

    p = prune(g)
    assert p.n_adders == 1
    x = np.array(list(itertools.product(range(-8, 8), repeat=2)))
    assert (p.evaluate(x) == g.evaluate(x)).all()
    assert (p.evaluate(x)[:, 0] == 5 - ((2 * x[:, 0] - x[:, 1]) << 2)).all()


def test_grouped_sharing_for_wide_layers():
    # above max_pairs the inputs are split into groups that share subexpressions separately
    rng = np.random.default_rng(21)
    m = rng.choice([-4, -2, -1, 0, 1, 2, 4], size=(120, 6))
    lo, hi = [0] * 120, [3] * 120
    grouped = build(m, rng.integers(-9, 9, size=6), lo, hi, max_pairs=2000)
    plain = build(m, None, lo, hi, cse=False)
    assert grouped.n_adders < plain.n_adders
    x = _corners(lo, hi, rng)
    assert (grouped.evaluate(x).astype(object) == x.astype(object) @ m.astype(object)
            + np.asarray(grouped.offset, dtype=object)).all()
    assert (grouped.matrix() == m.astype(object)).all()
