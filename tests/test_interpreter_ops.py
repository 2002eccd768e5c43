"""Interpreter semantics of the spatial, elementwise and shape ops against independent
references: direct loops over output positions and taps (conv, pooling) and plain numpy on real
values (float64, exact at these sizes) or Python ints (results wider than 62 bits).

Every op is evaluated twice: with an over-wide result type (Python-int object arrays) and with the
type qir-infer-widths gives (int64); both must agree exactly, and corner inputs (all min, all max)
must reach the inferred type's bounds where the op attains them."""
import itertools

import numpy as np
import pytest

from qir.errors import QirError
from qir.fixed import Fixed
from qir.flow import run_passes
from qir.interp import evaluate, output_types
from qir.ir import get_model, parse_module

WIDE = Fixed(200, 100)


def ty(t: Fixed, shape) -> str:
    dims = "".join(f"{d}x" for d in shape)
    return f"tensor<{dims}!qir.{'fixed' if t.signed else 'ufixed'}<{t.width},{t.integer}>>"


def dense(values, t: Fixed | None = None) -> str:
    """A dense i32/i64 literal, optionally followed by ``: !qir.<type>``."""
    v = np.asarray(values)
    bits = 32 if v.size == 0 or (v.min() >= -(1 << 31) and v.max() < (1 << 31)) else 64
    body = np.array2string(v, separator=", ", threshold=1 << 30, max_line_width=1 << 30)
    text = f"dense<{body}> : tensor<{''.join(f'{d}x' for d in v.shape)}i{bits}>"
    if t is not None:
        text += f" : !qir.{'fixed' if t.signed else 'ufixed'}<{t.width},{t.integer}>"
    return text


def model(ins, op: str, out_shape, out_t: Fixed = WIDE) -> str:
    """One op applied to inputs %x0.. of the given (type, shape); ``op`` uses {a} for the
    operands and types, e.g. ``qir.relu {a}``; its result type is appended."""
    lines = [f'  %x{i} = qir.input "x{i}" : {ty(t, s)}' for i, (t, s) in enumerate(ins)]
    res = ty(out_t, out_shape)
    lines.append(f"  %r = {op} : {', '.join(ty(t, s) for t, s in ins)} -> {res}")
    lines.append(f"  qir.output %r : {res}")
    return "qir.model @t {\n" + "\n".join(lines) + "\n}\n"


def run(text: str, xs):
    """(inferred result type, its mantissas); checks the over-wide evaluation agrees."""
    wide = parse_module(text)
    (wt, _), = output_types(get_model(wide))
    yw = evaluate(wide, xs).outputs[0]
    assert yw.dtype == object
    module = run_passes(parse_module(text), "qir-infer-widths")
    (t, _), = output_types(get_model(module))
    y = evaluate(module, xs).outputs[0]
    assert y.dtype == (np.int64 if t.width <= 62 else object)
    assert t.frac <= wt.frac
    assert np.array_equal(yw, y.astype(object) * (1 << (wt.frac - t.frac)))
    assert y.min() >= t.min_int and y.max() <= t.max_int
    return t, y


def samples(rng, t: Fixed, shape, n=12):
    """Corner inputs (all min, all max, zero, alternating) then random ones, shape (n+4, *shape)."""
    size = int(np.prod(shape))
    alt = np.where(np.arange(size) % 2, t.max_int, t.min_int)
    rows = [np.full(size, t.min_int), np.full(size, t.max_int), np.zeros(size, dtype=np.int64), alt]
    rows += list(rng.integers(t.min_int, t.max_int + 1, size=(n, size)))
    return np.stack(rows).reshape((-1,) + tuple(shape)).astype(np.int64)


def rand_weights(rng, t: Fixed, shape):
    w = rng.integers(t.min_int, t.max_int + 1, size=shape)
    flat = w.reshape(-1)
    flat[: min(2, flat.size)] = [t.min_int, t.max_int][: min(2, flat.size)]
    return w


def real(t: Fixed, m) -> np.ndarray:
    return t.to_real(m)


# --------------------------------------------------------------------------------- conv
def conv_ref(x, w, b, strides, dil, pads, groups, zero=0.0):
    """Direct loops: y[n, p, o] = sum over taps inside the input and the group's channels."""
    nd = len(strides)
    sp, k = x.shape[1:-1], w.shape[:nd]
    cin_g, cout = w.shape[nd], w.shape[nd + 1]
    cog = cout // groups
    out_sp = [(sp[d] + pads[d] + pads[nd + d] - dil[d] * (k[d] - 1) - 1) // strides[d] + 1 for d in range(nd)]
    y = np.empty((x.shape[0], *out_sp, cout), dtype=x.dtype)
    for p in itertools.product(*map(range, out_sp)):
        for o in range(cout):
            g = o // cog
            acc = np.full(x.shape[0], zero, dtype=x.dtype)
            for t in itertools.product(*map(range, k)):
                pos = [p[d] * strides[d] - pads[d] + t[d] * dil[d] for d in range(nd)]
                if all(0 <= pos[d] < sp[d] for d in range(nd)):
                    for i in range(cin_g):
                        acc = acc + x[(slice(None), *pos, g * cin_g + i)] * w[(*t, i, o)]
            y[(slice(None), *p, o)] = acc + (b[o] if b is not None else zero)
    return y


def conv_text(x_shape, w, wt, b, bt, strides, dil, pads, groups):
    bias = f" bias({dense(b, bt)})" if b is not None else ""
    return (f"qir.conv %x0 weights({dense(w, wt)}){bias} strides {list(strides)} dilations {list(dil)} "
            f"pads {list(pads)} groups {groups}")


CONV_CASES = [
    # in shape, kernel, cin/groups, cout, strides, dilations, pads, groups, in type, w type, b type
    ((5, 3), (3,), 3, 2, (1,), (1,), (1, 1), 1, Fixed(6, 2), Fixed(4, 1), Fixed(6, 3)),
    ((9, 2), (3,), 2, 3, (2,), (2,), (0, 3), 1, Fixed(5, 0, False), Fixed(3, 0), None),
    ((5, 4, 2), (3, 2), 2, 3, (1, 1), (1, 1), (1, 0, 1, 1), 1, Fixed(6, 3), Fixed(4, 1), Fixed(8, 0)),
    ((6, 5, 4), (2, 3), 2, 4, (2, 1), (1, 2), (0, 2, 1, 0), 2, Fixed(4, 4), Fixed(5, -1), Fixed(4, 6)),
    # depthwise: groups = C_in, multiplier 2 (Keras (kh, kw, C, M) reshaped to (kh, kw, 1, C*M))
    ((4, 4, 3), (3, 3), 1, 6, (1, 1), (1, 1), (1, 1, 1, 1), 3, Fixed(8, 1), Fixed(4, 1), Fixed(8, 2)),
    ((7, 6, 1), (3, 3), 1, 2, (3, 2), (1, 1), (0, 0, 0, 0), 1, Fixed(3, 3), Fixed(2, 1), None),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv_matches_direct_loops(case):
    shape, k, cin_g, cout, strides, dil, pads, groups, in_t, wt, bt = CONV_CASES[case]
    rng = np.random.default_rng(case)
    w = rand_weights(rng, wt, (*k, cin_g, cout))
    b = None if bt is None else rand_weights(rng, bt, (cout,))
    x = samples(rng, in_t, shape)
    nd = len(k)
    out_sp = [(shape[d] + pads[d] + pads[nd + d] - dil[d] * (k[d] - 1) - 1) // strides[d] + 1 for d in range(nd)]
    text = model([(in_t, shape)], conv_text(shape, w, wt, b, bt, strides, dil, pads, groups), (*out_sp, cout))
    t, y = run(text, [x])
    ref = conv_ref(real(in_t, x), real(wt, w), None if b is None else real(bt, b), strides, dil, pads, groups)
    assert np.array_equal(real(t, y), ref)


def test_conv_min_times_min_reaches_the_inferred_bound():
    in_t, wt = Fixed(4, 1), Fixed(4, 1)
    w = np.full((2, 2, 2, 1), wt.min_int)  # all -1.0: all-min input gives the maximum 8 * 1.0
    x = samples(np.random.default_rng(0), in_t, (3, 3, 2))
    text = model([(in_t, (3, 3, 2))], conv_text(None, w, wt, None, None, (1, 1), (1, 1), (0, 0, 0, 0), 1), (2, 2, 1))
    t, y = run(text, [x])
    assert real(t, y[0]).max() == 8.0 and real(t, y[1]).min() == -8 * 0.875
    assert t == Fixed.for_range(int(y.min()), int(y.max()), t.frac) == Fixed(11, 5)


def test_conv_border_windows_give_a_tight_type():
    # 1x1 input, 3x3 kernel, pads 1: only the centre tap ever sees data, so the bound is one
    # product, not nine.
    in_t, wt = Fixed(4, 4), Fixed(4, 4)
    w = np.full((3, 3, 1, 1), wt.min_int)
    x = samples(np.random.default_rng(1), in_t, (1, 1, 1))
    text = model([(in_t, (1, 1, 1))], conv_text(None, w, wt, None, None, (1, 1), (1, 1), (1, 1, 1, 1), 1), (1, 1, 1))
    t, y = run(text, [x])
    assert int(y.max()) == 64 and t == Fixed.for_range(-56, 64, 0)


def test_conv_wider_than_62_bits_uses_python_ints():
    in_t, wt, bt = Fixed(40, 10), Fixed(30, 2), Fixed(50, 20)
    rng = np.random.default_rng(2)
    w = rand_weights(rng, wt, (2, 2, 3))
    b = rand_weights(rng, bt, (3,))
    x = samples(rng, in_t, (3, 2), n=4)
    text = model([(in_t, (3, 2))], conv_text(None, w, wt, b, bt, (1,), (1,), (1, 0), 1), (3, 3))
    t, y = run(text, [x])
    assert t.width > 62 and y.dtype == object
    # Python-int reference on the common grid (frac = max(in.frac + w.frac, b.frac)).
    frac = max(in_t.frac + wt.frac, bt.frac)
    xo, wo = x.astype(object), w.astype(object) * (1 << (frac - in_t.frac - wt.frac))
    ref = conv_ref(xo, wo, b.astype(object) * (1 << (frac - bt.frac)), (1,), (1,), (1, 0), 1, zero=0)
    assert np.array_equal(y, ref * (1 << (t.frac - frac)))


# -------------------------------------------------------------------------------- pooling
def pool_ref(x, window, strides, pads, kind, mult=None, count="window"):
    nd = len(window)
    sp = x.shape[1:-1]
    out_sp = [(sp[d] + pads[d] + pads[nd + d] - window[d]) // strides[d] + 1 for d in range(nd)]
    y = np.empty((x.shape[0], *out_sp, x.shape[-1]))
    for p in itertools.product(*map(range, out_sp)):
        vals = []
        for t in itertools.product(*map(range, window)):
            pos = [p[d] * strides[d] - pads[d] + t[d] for d in range(nd)]
            if all(0 <= pos[d] < sp[d] for d in range(nd)):
                vals.append(x[(slice(None), *pos)])
        vals = np.stack(vals)
        if kind == "max":
            y[(slice(None), *p)] = vals.max(axis=0)
        else:
            m = mult[0] if count == "window" else mult[len(vals) - 1]
            y[(slice(None), *p)] = vals.sum(axis=0) * m
    return y


def pool_text(kind, window, strides, pads, count=None, mult=None, mt=None):
    text = f'qir.pool %x0 kind "{kind}" window {list(window)} strides {list(strides)} pads {list(pads)}'
    if kind == "avg":
        text += f' count "{count}" multiplier({dense(mult, mt)})'
    return text


def pool_out(shape, window, strides, pads):
    nd = len(window)
    return tuple((shape[d] + pads[d] + pads[nd + d] - window[d]) // strides[d] + 1 for d in range(nd)) + (shape[-1],)


@pytest.mark.parametrize("shape,window,strides,pads", [
    ((5, 5, 2), (2, 2), (2, 2), (0, 0, 1, 1)),
    ((4, 3, 3), (3, 3), (1, 1), (1, 1, 1, 1)),
    ((7, 2), (3,), (2,), (1, 1)),
])
@pytest.mark.parametrize("in_t", [Fixed(6, 2), Fixed(70, 30)])
def test_max_pool_padding_never_wins(shape, window, strides, pads, in_t):
    x = samples(np.random.default_rng(3), Fixed(6, 2), shape).astype(object) * (1 << (in_t.width - 6))
    x[0] = in_t.min_int + 1  # all negative: a zero pad would win if it were a candidate
    text = model([(in_t, shape)], pool_text("max", window, strides, pads), pool_out(shape, window, strides, pads), in_t)
    module = parse_module(text)
    y = evaluate(module, [x]).outputs[0]
    assert y.dtype == (np.int64 if in_t.width <= 62 else object)
    assert np.array_equal(real(in_t, y), pool_ref(real(in_t, x), window, strides, pads, "max"))
    assert (y[0] == in_t.min_int + 1).all()
    run_passes(module, "qir-infer-widths")
    assert output_types(get_model(module))[0][0] == in_t


@pytest.mark.parametrize("count", ["window", "valid"])
@pytest.mark.parametrize("in_t", [Fixed(6, 2), Fixed(5, 1, False)])
def test_avg_pool(count, in_t):
    shape, window, strides, pads = (5, 4, 3), (2, 3), (2, 1), (1, 1, 0, 1)
    area = 6
    mt = Fixed(8, 0, False)
    # multiplier ~ 1/count (QKeras Q(1/A) for "window"; ONNX/Keras valid-count averaging)
    mult = [round(256 / area)] if count == "window" else [min(round(256 / k), 255) for k in range(1, area + 1)]
    x = samples(np.random.default_rng(4), in_t, shape)
    text = model([(in_t, shape)], pool_text("avg", window, strides, pads, count, mult, mt),
                 pool_out(shape, window, strides, pads))
    t, y = run(text, [x])
    ref = pool_ref(real(in_t, x), window, strides, pads, "avg", real(mt, np.array(mult)), count)
    assert np.array_equal(real(t, y), ref)
    assert t.frac == in_t.frac + mt.frac


def test_global_avg_pool_qkeras_style():
    # QGlobalAveragePooling2D: sum * Q(1/A), 3x3 -> Q(1/9) = 0.109375 with quantized_bits(8,0)
    in_t, mt = Fixed(8, 3), Fixed(8, 1)
    x = samples(np.random.default_rng(5), in_t, (3, 3, 2))
    text = model([(in_t, (3, 3, 2))], pool_text("avg", (3, 3), (1, 1), (0, 0, 0, 0), "window", [14], mt), (1, 1, 2))
    t, y = run(text, [x])
    assert np.array_equal(real(t, y)[:, 0, 0], real(in_t, x).sum(axis=(1, 2)) * 0.109375)
    assert real(t, y[0]).min() == 9 * -4.0 * 0.109375  # the all-min corner is the lower bound
    assert t.min_int * (1 << (t.frac - in_t.frac - mt.frac)) <= int(y.min())


# --------------------------------------------------------------------- elementwise & shape
def test_scale_per_channel():
    in_t, st, bt = Fixed(6, 3), Fixed(5, 1), Fixed(7, -1)
    rng = np.random.default_rng(6)
    s, b = np.array([-16, 15, 3]), np.array([-64, 63, 5])
    x = samples(rng, in_t, (2, 2, 3))
    text = model([(in_t, (2, 2, 3))], f"qir.scale %x0 scale({dense(s, st)}) bias({dense(b, bt)})", (2, 2, 3))
    t, y = run(text, [x])
    assert np.array_equal(real(t, y), real(in_t, x) * real(st, s) + real(bt, b))
    # min*min corner: x = -4, s = -1 gives the maximum 4 + bias
    assert real(t, y[0, 0, 0, 0]) == 4.0 + real(bt, b[0])


@pytest.mark.parametrize("op", ["scale", "bias"])
def test_scale_single_constant_broadcast(op):
    in_t, ct = Fixed(4, 2), Fixed(3, 0, False)
    x = samples(np.random.default_rng(7), in_t, (5,))
    text = model([(in_t, (5,))], f"qir.scale %x0 {op}({dense([7], ct)})", (5,))
    t, y = run(text, [x])
    want = real(in_t, x) * 0.875 if op == "scale" else real(in_t, x) + 0.875
    assert np.array_equal(real(t, y), want)


def test_leaky_relu_per_channel_alpha():
    in_t, at = Fixed(6, 2), Fixed(4, 0)
    a = np.array([3, -8])  # 0.1875 and -0.5
    x = samples(np.random.default_rng(8), in_t, (3, 2))
    text = model([(in_t, (3, 2))], f"qir.leaky_relu %x0 alpha({dense(a, at)})", (3, 2))
    t, y = run(text, [x])
    xr = real(in_t, x)
    assert np.array_equal(real(t, y), np.where(xr >= 0, xr, xr * real(at, a)))
    assert t.frac == in_t.frac + at.frac


def test_add_three_mixed_types():
    ts = [Fixed(5, 2), Fixed(4, 4, False), Fixed(8, -1)]
    rng = np.random.default_rng(9)
    xs = [samples(rng, t, (2, 3)) for t in ts]
    text = model([(t, (2, 3)) for t in ts], "qir.add %x0, %x1, %x2", (2, 3))
    t, y = run(text, xs)
    assert np.array_equal(real(t, y), sum(real(tt, x) for tt, x in zip(ts, xs)))
    assert t.frac == 9 and real(t, y[0]).min() == -2 + 0 - 0.25  # all-min corner is the minimum


def test_concat_mixed_types():
    ts = [Fixed(4, 1), Fixed(6, 6, False), Fixed(3, -2)]
    rng = np.random.default_rng(10)
    shapes = [(2, 2, 1), (2, 2, 3), (2, 2, 2)]
    xs = [samples(rng, t, s) for t, s in zip(ts, shapes)]
    text = model(list(zip(ts, shapes)), "qir.concat %x0, %x1, %x2 axis 2", (2, 2, 6))
    t, y = run(text, xs)
    assert np.array_equal(real(t, y), np.concatenate([real(tt, x) for tt, x in zip(ts, xs)], axis=-1))
    # frac 5 (from fixed<3,-2>), range [-1, 63]: signed, 7 integer bits
    assert t == Fixed(12, 7)


def test_concat_first_axis():
    t0 = Fixed(4, 2)
    x0, x1 = samples(np.random.default_rng(11), t0, (1, 3)), samples(np.random.default_rng(12), t0, (2, 3))
    text = model([(t0, (1, 3)), (t0, (2, 3))], "qir.concat %x0, %x1 axis 0", (3, 3))
    t, y = run(text, [x0, x1])
    assert t == t0 and np.array_equal(y, np.concatenate([x0, x1], axis=1))


def test_reshape_is_row_major_nhwc_flatten():
    in_t = Fixed(5, 2)
    x = samples(np.random.default_rng(13), in_t, (2, 3, 4))
    y = evaluate(parse_module(model([(in_t, (2, 3, 4))], "qir.reshape %x0", (24,), in_t)), [x]).outputs[0]
    assert y.shape == (len(x), 24)
    # element (h, w, c) lands at index (h*3 + w)*4 + c
    for h, w, c in itertools.product(range(2), range(3), range(4)):
        assert np.array_equal(y[:, (h * 3 + w) * 4 + c], x[:, h, w, c])


def test_transpose_nchw_to_nhwc():
    in_t = Fixed(5, 2)
    x = samples(np.random.default_rng(14), in_t, (3, 2, 4))  # C, H, W
    text = model([(in_t, (3, 2, 4))], "qir.transpose %x0 perm [1, 2, 0]", (2, 4, 3), in_t)
    y = evaluate(parse_module(text), [x]).outputs[0]
    for c, h, w in itertools.product(range(3), range(2), range(4)):
        assert np.array_equal(y[:, h, w, c], x[:, c, h, w])


def test_pad_zero_corners():
    in_t = Fixed(4, 4, False)
    x = samples(np.random.default_rng(15), in_t, (2, 2, 1))
    text = model([(in_t, (2, 2, 1))], "qir.pad %x0 pads [1, 0, 0, 2, 1, 0]", (5, 3, 1), in_t)
    y = evaluate(parse_module(text), [x]).outputs[0]
    assert y.shape == (len(x), 5, 3, 1)
    assert (y[:, 0] == 0).all() and (y[:, 3:] == 0).all() and (y[:, :, 2] == 0).all()
    assert np.array_equal(y[:, 1:3, 0:2], x)


def test_pad_then_max_pool_differs_from_padded_pool():
    # Keras ZeroPadding2D + MaxPooling2D: explicit zeros do compete, pool pads do not.
    in_t = Fixed(4, 2)
    x = np.full((1, 2, 2, 1), -3)
    pad_text = ("qir.model @t {\n"
                f'  %x0 = qir.input "x0" : {ty(in_t, (2, 2, 1))}\n'
                f"  %p = qir.pad %x0 pads [1, 1, 0, 0, 0, 0] : {ty(in_t, (2, 2, 1))} -> {ty(in_t, (3, 3, 1))}\n"
                f'  %r = qir.pool %p kind "max" window [2, 2] strides [1, 1] pads [0, 0, 0, 0] : '
                f"{ty(in_t, (3, 3, 1))} -> {ty(in_t, (2, 2, 1))}\n"
                f"  qir.output %r : {ty(in_t, (2, 2, 1))}\n}}\n")
    y = evaluate(parse_module(pad_text), [x]).outputs[0]
    assert y[0, :, :, 0].tolist() == [[0, 0], [0, -3]]
    text = model([(in_t, (2, 2, 1))], pool_text("max", (2, 2), (1, 1), (1, 1, 0, 0)), (2, 2, 1), in_t)
    assert (evaluate(parse_module(text), [x]).outputs[0] == -3).all()


def test_lut_tanh_table():
    in_t, out_t = Fixed(6, 3), Fixed(8, 1)
    codes = np.arange(in_t.min_int, in_t.max_int + 1)
    table = np.clip(np.rint(np.tanh(real(in_t, codes)) * 128), -128, 127).astype(np.int64)
    x = samples(np.random.default_rng(16), in_t, (4,))
    text = model([(in_t, (4,))], f"qir.lut %x0 table({dense(table)})", (4,), out_t)
    y = evaluate(parse_module(text), [x]).outputs[0]
    want = np.clip(np.rint(np.tanh(real(in_t, x)) * 128), -128, 127) / 128
    assert np.array_equal(real(out_t, y), want)
    assert real(out_t, y[0]).tolist() == [np.rint(np.tanh(-4.0) * 128) / 128] * 4


def test_lut_unsigned_index_offset():
    in_t, out_t = Fixed(3, 3, False), Fixed(5, 5)
    table = np.array([-16, -1, 2, 3, 4, 5, 6, 15])
    x = np.arange(8).reshape(1, 8)
    y = evaluate(parse_module(model([(in_t, (8,))], f"qir.lut %x0 table({dense(table)})", (8,), out_t)), [x]).outputs[0]
    assert y.tolist() == [table.tolist()]


def test_verifier_rejects_a_narrow_conv_result():
    in_t, wt = Fixed(4, 1), Fixed(4, 1)
    w = np.full((2, 2, 1, 1), wt.min_int)
    text = model([(in_t, (2, 2, 1))], conv_text(None, w, wt, None, None, (1, 1), (1, 1), (0, 0, 0, 0), 1),
                 (1, 1, 1), Fixed(9, 3))
    with pytest.raises(QirError, match=r"cannot hold the exact results \[-3.5, 4.0\]; it needs at least fixed<10,4>"):
        parse_module(text)


def test_default_pipeline_on_a_small_cnn():
    """conv is a pipeline stage; qir-lower-dense touches only dense; semantics are preserved."""
    from qir.lowering import DEFAULT_PIPELINE

    rng = np.random.default_rng(17)
    in_t, wt, act_t = Fixed(6, 2), Fixed(4, 1), Fixed(4, 2, False)
    w = rand_weights(rng, wt, (3, 3, 2, 4))
    d = rand_weights(rng, wt, (16, 3))
    x_ty, c_ty = ty(in_t, (4, 4, 2)), ty(WIDE, (4, 4, 4))
    text = f"""qir.model @cnn {{
  %0 = qir.input "x" : {x_ty}
  %1 = qir.conv %0 weights({dense(w, wt)}) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {{layer = "c"}} : {x_ty} -> {c_ty}
  %2 = qir.relu %1 {{layer = "c"}} : {c_ty}
  %3 = qir.quantize %2 rounding "rnd" overflow "sat" {{layer = "c"}} : {c_ty} -> {ty(act_t, (4, 4, 4))}
  %4 = qir.pool %3 kind "max" window [2, 2] strides [2, 2] pads [0, 0, 0, 0] {{layer = "p"}} : {ty(act_t, (4, 4, 4))} -> {ty(act_t, (2, 2, 4))}
  %5 = qir.reshape %4 {{layer = "f"}} : {ty(act_t, (2, 2, 4))} -> {ty(act_t, (16,))}
  %6 = qir.dense %5 weights({dense(d, wt)}) {{layer = "fc"}} : {ty(act_t, (16,))} -> {ty(WIDE, (3,))}
  qir.output %6 : {ty(WIDE, (3,))}
}}
"""
    x = samples(rng, in_t, (4, 4, 2), n=40)
    ref = evaluate(parse_module(text), [x]).outputs[0]
    lowered = run_passes(parse_module(text), DEFAULT_PIPELINE)
    ops = [op.name for op in get_model(lowered).block.ops]
    # the default pipeline lowers dense to an adder graph and registers by adder depth
    assert "qir.dense" not in ops and ops.count("qir.addergraph") >= 1
    stages = [op.stage.value.data for op in get_model(lowered).block.ops if op.name == "qir.reg"]
    assert stages and stages == sorted(stages) and stages[0] >= 1
    (t, _), = output_types(get_model(lowered))
    got = evaluate(lowered, [x]).outputs[0]
    assert np.array_equal(ref.astype(object), got.astype(object) * (1 << (WIDE.frac - t.frac)))
