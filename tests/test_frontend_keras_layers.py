"""Keras frontend, issue 3: float models with a precision configuration, every QKeras quantizer as
an activation (run through the reference interpreter) and as a weight quantizer, and the layer
set (convolutions, pooling, batch normalization, branches, reshapes) on small hand-built models."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from qir.frontends.keras import import_keras
from qir.frontends.keras_quantizers import resolve_activation, resolve_quantizer
from qir.frontends.keras_steps import exact_fixed

from qir.dialect import ConvOp, DenseOp, LutOp, PoolOp, QuantizeOp, ReshapeOp, ScaleOp, elem, elements_to_numpy
from qir.errors import QirError
from qir.fixed import Fixed
from qir.interp import evaluate_real
from qir.ir import get_model, layer_of, new_model, set_layer, verify
from qir.precision import PrecisionConfig

DATA = Path(__file__).parent / "data"
JET = DATA / "keras_3layer"
CONV1D = DATA / "keras_conv1d_small"
F18 = Fixed(18, 8)


# ------------------------------------------------------------------------------ helpers
def run_steps(steps, x: np.ndarray, in_t: Fixed) -> np.ndarray:
    """Real outputs of ``steps`` built into a model and run by the reference interpreter."""
    from qir.dialect import InputOp, OutputOp, tensor_of

    module, _, block = new_model("steps")
    inp = InputOp("x", tensor_of(in_t, [x.shape[1]]), layer="in")
    block.add_op(inp)

    def emit(op):
        block.add_op(set_layer(op, "q"))
        return op.results[0]

    v = [inp.result]
    for s in steps:
        v = [s.build(v, emit, {})]
    block.add_op(OutputOp(v[0]))
    verify(module, "steps")
    (y,), _ = evaluate_real(module, [x])
    return y


def grid(t: Fixed, n: int = 400, seed: int = 0) -> np.ndarray:
    """Every value of a narrow type, or a random sample of a wide one (one row)."""
    codes = np.arange(t.min_int, t.max_int + 1) if t.width <= 10 else \
        np.random.default_rng(seed).integers(t.min_int, t.max_int + 1, n)
    return t.to_real(codes)[None, :]


def pairs(text: str):
    xs, ys = zip(*(p.split("→") for p in text.split(", ")))
    return np.array([[float(x) for x in xs]]), [float(y) for y in ys]


def vectors(d: Path):
    return np.load(d / "vectors.npz")


# ------------------------------------------------------------------------------ quantizer tables (§5.1)
TABLES = {
    "quantized_tanh(4)": "-5→-1, -1→-1, -.9→-.875, -.0625→0, .0625→0, .1875→.25, .3→.25, .5→.5, .99→.875, 5→.875",
    "quantized_tanh(4,symmetric=True)": "-5→-.875, -.9375→-.875, .9375→.875",
    "quantized_tanh(8)": ".00390625→0, .01171875→.015625, -.5→-.5, .7→.703125, 1→.9921875, -1→-1, -2→-1",
    "quantized_tanh(6)": "-2→-1, -.984375→-1, -.3→-.3125, -.015625→0, .046875→.0625, .2→.1875, .51→.5, "
                         ".96875→.96875, .99→.96875",
    "quantized_sigmoid(4)": "-5→0, -1→0, 0→.5, .0625→.5, .125→.5625, .5→.75, 1→.9375, 1.9→.9375, 5→.9375",
    "quantized_sigmoid(8)": "0→.5, .00390625→.5, .01171875→.5078125, -.5→.25, 1.5→.99609375, 2→.99609375",
    # symmetric is a count of codes (QKeras clips at (1.0*symmetric)/2^bits): any truthy number, notes §1.4
    "quantized_sigmoid(4,3)": "-5→.1875, -1→.1875, -.625→.1875, -.5→.25, 0→.5, 1→.9375, 5→.9375",
    "quantized_sigmoid(4,True)": "-5→.0625, -.875→.0625, -.8125→.125, 0→.5, 5→.9375",
    "quantized_tanh(4,0,3)": "-5→-.625, -.75→-.625, -.5→-.5, 0→0, 5→.875",
    "quantized_sigmoid(6)": "-3→0, -1.5→0, -.1→.453125, .03125→.515625, .09375→.546875, .6→.796875, "
                            "1.9→.984375, 2.5→.984375",
    "binary()": "-2→-1, -.3→-1, 0→1, .3→1, 2→1",
    "binary(use_01=True)": "-2→0, 0→1, .3→1",
    "binary(alpha=0.5)": "-2→-.5, 0→.5, .3→.5",
    "stochastic_binary(alpha=0.5)": "-2→-.5, 0→.5, .3→.5",
    "ternary()": "-1→-1, -.34→-1, -.33→-1, -.32→0, 0→0, .32→0, .33→1, .34→1, 1→1, 5→1",
    "ternary(threshold=0.5)": "-.6→-1, -.5→-1, -.49→0, .49→0, .5→1, .6→1",
    "ternary(alpha=0.25)": "-1→-.25, .33→.25, .32→0",
    "ternary(threshold=0.1)": "-.11→-1, -.1→-1, -.09→0, .09→0, .1→1, .5→1, -3→-1",
    "stochastic_ternary(threshold=0.1)": "-.11→-1, -.1→-1, -.09→0, .09→0, .1→1, .5→1, -3→-1",
    "quantized_relu(4,2,negative_slope=0.25)": "-8→-1, -3→-1, -1→0, .3→.5, 1.6→1.5, 3.5→3.5, 5→3.5",
    "quantized_relu_po2(4)": "-1→.00390625, 0→.00390625, .01→.0078125, .3→.25, .36→.5, 1→1, 3→4, 1000→128",
    "quantized_relu_po2(4,negative_slope=0.25)": "-4→-1, -1→-.25, .3→.25",
    "quantized_relu_po2(5,max_value=4)": f"-2→{2**-16}, 0→{2**-16}, .1→.125, .7→.5, 2.9→4, 3.5→4, 100→4",
    "quantized_bits(4,0,alpha=2.0)": ".3→.5, .9→1.75, -2→-2",
    "quantized_bits(1,0)": "-2→-1, -.1→-1, 0→1, .1→1, 3→1",
    "binary_tanh": "-1→-1, -.001→-1, 0→-1, .001→1, .5→1",
}
FUNCTIONS = {"binary_tanh"}  # a function: no weight form
TABLE_ACTIVATIONS = {s for s in TABLES if "po2" in s}  # tables over narrow inputs: test_po2_activation_table


@pytest.mark.parametrize("spec", sorted(set(TABLES) - FUNCTIONS))
def test_quantizer_tables_as_weights(spec):
    x, want = pairs(TABLES[spec])
    got = resolve_quantizer(spec).quantize_weights(x[0].astype(np.float32)).tolist()
    assert got == want


@pytest.mark.parametrize("spec", sorted(set(TABLES) - TABLE_ACTIVATIONS))
def test_quantizer_tables_as_activations(spec):
    x, want = pairs(TABLES[spec])
    # the inputs as QKeras sees them (float32), on a fine exact grid
    x32 = x.astype(np.float32).astype(np.float64)
    mant, t = exact_fixed(x32)
    t = Fixed(max(t.width, 2) + 2, t.integer + 2)  # room for the values
    assert run_steps(resolve_activation(spec).steps(), x32, t).tolist()[0] == want


@pytest.mark.parametrize("spec", [
    "quantized_bits(4,0)", "quantized_bits(6,2,1)", "quantized_bits(5,1,keep_negative=False)", "quantized_bits(1,0)",
    "quantized_bits(4,0,alpha=0.75)", "quantized_relu(4,1)", "quantized_relu(5,2,negative_slope=0.5)",
    "quantized_relu(3,0,negative_slope=0.0625)", "quantized_tanh(5)", "quantized_tanh(3,0,1)",
    "quantized_sigmoid(5)", "quantized_sigmoid(4,1)", "quantized_sigmoid(8, 3)", "quantized_sigmoid(5,31)",
    "quantized_tanh(5,0,2)", "quantized_tanh(4,0,15)", "binary()", "binary(1)", "binary(alpha=0.375)",
    "ternary()", "ternary(threshold=0.2)", "ternary(alpha=1.5,threshold=0.7)", "quantized_po2(4)",
    "quantized_po2(5,1)", "quantized_relu_po2(4)", "quantized_relu_po2(5,negative_slope=0.5)",
    "quantized_linear(4,1)",
])
@pytest.mark.parametrize("in_t", [Fixed(10, 4), Fixed(8, 1), Fixed(12, 3)])
def test_activation_steps_match_quantizer_formula(spec, in_t):
    """The exact qir ops of an activation quantizer equal QKeras's float32 formula on every input
    code of the input type."""
    x = grid(in_t)
    q = resolve_quantizer(spec)
    want = q.quantize_weights(x[0].astype(np.float32))
    assert run_steps(q.steps(), x, in_t).tolist()[0] == np.asarray(want, np.float64).tolist()


def test_po2_activation_table():
    steps = resolve_activation("quantized_relu_po2(4)").steps()
    (lut,) = steps
    x = grid(Fixed(8, 2))
    y = run_steps(steps, x, Fixed(8, 2))
    assert set(np.log2(y[0]).tolist()) <= set(range(-8, 8))  # never zero
    assert y[0, x[0] <= 0].tolist() == [2 ** -8] * int(np.sum(x[0] <= 0))
    # a wide input is a qir.steps compare chain (tests/test_qkeras_docs.py), equal to the formula
    xw = grid(Fixed(20, 4))
    q = resolve_activation("quantized_relu_po2(4)")
    assert np.array_equal(run_steps(steps, xw, Fixed(20, 4))[0], q.quantize_weights(xw[0].astype(np.float32)))


AUTO_W = [[.1, -.5, 2], [.3, .25, -1.5], [-.7, .05, .1]]


def test_binary_ternary_auto_po2_kernels():
    w = np.asarray(AUTO_W, np.float32)
    assert resolve_quantizer("binary()").for_kernel().quantize_weights(w).tolist() == \
        [[.5, -.25, 1], [.5, .25, -1], [-.5, .25, 1]]
    assert resolve_quantizer("ternary()").for_kernel().quantize_weights(w).tolist() == \
        [[0, -.5, 2], [.5, 0, -2], [-.5, 0, 0]]
    assert resolve_quantizer("stochastic_ternary()").for_kernel().quantize_weights(w).tolist() == \
        [[0, -.5, 2], [.5, 0, -2], [-.5, 0, 0]]


def test_string_spec_is_never_evaluated():
    for text in ("quantized_relu(__import__('os').getpid())", "quantized_relu(6,2)+1", "eval('1')"):
        with pytest.raises(QirError):
            resolve_activation(text).steps()


# ------------------------------------------------------------------------------ float models
def error_bound(module, v, names, prec: Fixed) -> np.ndarray:
    """Per-vector worst-case |ours - float model| on the logits of a Dense/ReLU chain at ``prec``
    (weights, biases and layer results rounded to nearest, no saturation): e' = |W^| e +
    2^-(F+1) (|x|_1 + 1) + 2^-(F+1) per layer, x the float model's input of the layer."""
    half = 2.0 ** -(prec.frac + 1)
    dense = [op for op in get_model(module).block.ops if isinstance(op, DenseOp)]
    x, e = v["x"], np.zeros_like(v["x"])
    for op, name in zip(dense, names):
        w = np.abs(op.weight_type.spec.to_real(elements_to_numpy(op.weights)))
        e = e @ w + half * (np.abs(x).sum(axis=1, keepdims=True) + 1) + half
        x = v[f"layer_{name}"]
    return e.max(axis=1)


def test_keras_3layer_float_precision():
    v = vectors(JET)
    logits_ref = None
    for prec, min_agree in [(F18, 0.99), (Fixed(16, 6), 0.99), (Fixed(14, 6), 0.99), (Fixed(12, 4), 0.97)]:
        module = import_keras(JET / "KERAS_3layer.json", input_type=Fixed(16, 6), softmax="none", precision=prec)
        (y,), ev = evaluate_real(module, [v["x"]])
        agree = np.argmax(y, 1) == np.argmax(v["y"], 1)
        assert agree.mean() >= min_agree, prec
        # the stated guarantee: |ours - float| <= the bound, and argmax agrees wherever the float
        # model's logit margin exceeds twice the bound (logits from its softmax output)
        logits_ref = np.log(np.maximum(v["y"], 1e-30))
        bound = error_bound(module, v, ["fc1_relu", "fc2_relu", "fc3_relu", "output_softmax"], prec)
        top2 = np.sort(logits_ref, axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        sure = margin > 2 * bound + 1e-4
        assert np.all(agree[sure]), prec
        for name in ("fc1_relu", "fc2_relu", "fc3_relu"):
            t, mant = ev.layer_outputs()[name]
            assert t == prec  # the layer result is cast to the result type
    assert logits_ref is not None


def test_keras_3layer_structure():
    module = import_keras(JET / "KERAS_3layer.json", input_type=Fixed(16, 6), softmax="none", precision=F18)
    ops = list(get_model(module).block.ops)
    kinds = [(type(op).__name__, layer_of(op)) for op in ops[1:-1]]
    assert kinds[:3] == [("DenseOp", "fc1_relu"), ("QuantizeOp", "fc1_relu"), ("ReluOp", "fc1_relu")]
    q = ops[2]
    assert isinstance(q, QuantizeOp) and q.rounding.data == "rnd_conv" and q.overflow.data == "sat"
    d = ops[1]
    assert isinstance(d, DenseOp) and d.weight_type.spec == F18 and d.bias_type.spec == F18


def test_keras_conv1d_float_precision():
    v = vectors(CONV1D)
    module = import_keras(CONV1D / "KERAS_conv1d_small.json", input_type=Fixed(16, 6), softmax="none",
                          precision=F18)
    (y,), ev = evaluate_real(module, [v["x"]])
    assert np.mean(np.argmax(y, 1) == np.argmax(v["y"], 1)) >= 0.99
    ops = list(get_model(module).block.ops)
    assert sum(isinstance(op, ConvOp) for op in ops) == 3
    assert any(isinstance(op, ReshapeOp) and layer_of(op) == "flatten_1" for op in ops)
    # every layer close to the float model (18,8 keeps ~1e-3)
    for name in ("conv1_relu", "conv2_relu", "conv3_relu", "flatten_1", "fc1_relu"):
        t, mant = ev.layer_outputs()[name]
        assert np.abs(t.to_real(mant) - v[f"layer_{name}"]).max() < 0.02, name


def test_precision_config_file_overrides(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("default: {weight: 'fixed<18,8>', bias: 'fixed<18,8>', result: 'fixed<18,8>'}\n"
                   "layers:\n  fc1_relu: {weight: 'fixed<8,2>', result: 'fixed<12,5>'}\n"
                   "  output_softmax: {result: null, accum: 'fixed<24,10>'}\n")
    module = import_keras(JET / "KERAS_3layer.json", input_type=Fixed(16, 6), softmax="none",
                          precision=PrecisionConfig.load(cfg))
    ops = list(get_model(module).block.ops)
    d1 = next(op for op in ops if isinstance(op, DenseOp) and layer_of(op) == "fc1_relu")
    assert d1.weight_type.spec == Fixed(8, 2)
    casts = [op for op in ops if isinstance(op, QuantizeOp)]
    assert elem(casts[0].output.type) == Fixed(12, 5)
    out = [op for op in ops if layer_of(op) == "output_softmax"]
    assert [type(op) for op in out] == [DenseOp, QuantizeOp]  # accum cast, no result cast
    assert elem(out[-1].output.type) == Fixed(24, 10)


def test_float_model_needs_precision():
    with pytest.raises(QirError, match="--precision") as e:
        import_keras(JET / "KERAS_3layer.json", input_type=Fixed(16, 6), softmax="none")
    assert "layer 'fc1_relu' (Dense)" in str(e.value)
    with pytest.raises(QirError, match="precision must be"):
        import_keras(JET / "KERAS_3layer.json", input_type=Fixed(16, 6), precision="fixed<18,8>")


# ------------------------------------------------------------------------------ hand-built models
def write_functional(tmp_path: Path, name: str, layers: list[dict], weights: dict, outputs: list[str],
                     input_shape: list[int]) -> Path:
    """A Keras 2 functional model .json + weights .h5 (save_weights layout)."""
    all_layers = [{"class_name": "InputLayer", "name": "inp", "inbound_nodes": [],
                   "config": {"batch_input_shape": [None, *input_shape], "name": "inp"}}] + layers
    config = {"class_name": "Functional", "config": {
        "name": name, "layers": all_layers, "input_layers": [["inp", 0, 0]],
        "output_layers": [[o, 0, 0] for o in outputs]}, "keras_version": "2.13.0"}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    with h5py.File(tmp_path / f"{name}_weights.h5", "w") as f:
        f.attrs["layer_names"] = np.array([lay["config"]["name"].encode() for lay in all_layers])
        for lay in all_layers:
            lname = lay["config"]["name"]
            g = f.create_group(lname)
            var = weights.get(lname, {})
            g.attrs["weight_names"] = np.array([f"{lname}/{k}:0".encode() for k in var]) if var else np.array([])
            for k, val in var.items():
                g.create_dataset(f"{lname}/{k}:0", data=np.asarray(val, dtype=np.float32))
    return path


def node(cls: str, name: str, inputs: list[str], **cfg) -> dict:
    return {"class_name": cls, "name": name, "config": {"name": name, **cfg},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]]}


def test_branches_add_and_concatenate(tmp_path):
    rng = np.random.default_rng(1)
    w1 = rng.integers(-4, 4, (4, 3)) / 4
    w2 = rng.integers(-4, 4, (4, 3)) / 8
    q = "quantized_bits(4,2,alpha=1)"
    layers = [
        node("QActivation", "qin", ["inp"], activation="quantized_bits(6,2,alpha=1)"),
        node("QDense", "a", ["qin"], units=3, activation="linear", use_bias=False, kernel_quantizer=q),
        node("QDense", "b", ["qin"], units=3, activation="quantized_relu(4,1)", use_bias=False, kernel_quantizer=q),
        node("Add", "sum", ["a", "b"]),
        node("Concatenate", "cat", ["sum", "b", "qin"], axis=-1),
    ]
    path = write_functional(tmp_path, "br", layers, {"a": {"kernel": w1}, "b": {"kernel": w2}}, ["cat"], [4])
    module = import_keras(path)
    x = np.array([[0.5, -1.25, 2.0, 0.75], [-2, -1, 1.5, 0.25]])
    (y,), _ = evaluate_real(module, [x])
    qa = np.clip(np.rint(w1 * 2), -8, 7) / 2  # quantized_bits(4,2): LSB 2^(2-4+1)
    qb = np.clip(np.rint(w2 * 2), -8, 7) / 2
    a = x @ qa
    b = np.clip(np.rint(np.maximum(x @ qb, 0) * 8), 0, 15) / 8
    assert np.array_equal(y, np.concatenate([a + b, b, x], axis=1))


def test_batchnorm_fold_and_scale(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    bn = {"gamma": [1.5, 0.5, 2.0], "beta": [0.1, -0.2, 0.3], "moving_mean": [0.2, -0.1, 0.0],
          "moving_variance": [0.5, 2.0, 1.0]}
    bn_in = {"gamma": [1.0, 2.0, 0.5, 1.0], "beta": [0.0, 0.5, -0.5, 0.25], "moving_mean": [0.1] * 4,
             "moving_variance": [1.0, 0.25, 4.0, 1.0]}
    layers = [node("BatchNormalization", "bn_in", ["inp"], epsilon=0.001),
              node("Dense", "d", ["bn_in"], units=3, activation="linear", use_bias=True),
              node("BatchNormalization", "bn", ["d"], epsilon=0.001),
              node("ReLU", "r", ["bn"])]
    path = write_functional(tmp_path, "bnm", layers, {"bn_in": bn_in, "d": {"kernel": w, "bias": [0.1, 0, -0.1]},
                                                      "bn": bn}, ["r"], [4])
    module = import_keras(path, input_type=Fixed(10, 3), precision=F18)
    ops = list(get_model(module).block.ops)
    assert [layer_of(op) for op in ops if isinstance(op, ScaleOp)] == ["bn_in"]  # on the input: a scale op
    dense = [op for op in ops if isinstance(op, DenseOp)]
    assert [layer_of(op) for op in dense] == ["bn"]  # folded: the dense carries the batchnorm's name
    x = np.random.default_rng(3).integers(-512, 512, (50, 4)) / 128
    (y,), _ = evaluate_real(module, [x])

    def bnorm(x, p):
        return (x - np.array(p["moving_mean"])) / np.sqrt(np.array(p["moving_variance"]) + 1e-3) * \
            np.array(p["gamma"]) + np.array(p["beta"])
    ref = np.maximum(bnorm(bnorm(x, bn_in) @ w + [0.1, 0, -0.1], bn), 0)
    assert np.abs(y - ref).max() < 0.02


def test_conv_pool_padding_depthwise(tmp_path):
    """Conv2D 'same' + MaxPooling2D + ZeroPadding2D + DepthwiseConv2D + AveragePooling2D + global
    average pooling, QKeras-quantized: exact against a direct numpy evaluation."""
    rng = np.random.default_rng(4)
    k1 = rng.integers(-8, 8, (3, 3, 2, 3)) / 8
    dw = rng.integers(-8, 8, (2, 2, 3, 2)) / 8
    q = "quantized_bits(4,0,alpha=1)"
    layers = [
        node("QConv2D", "c1", ["inp"], filters=3, kernel_size=[3, 3], strides=[1, 1], padding="same",
             dilation_rate=[1, 1], activation="quantized_relu(6,2)", use_bias=False, kernel_quantizer=q),
        node("MaxPooling2D", "mp", ["c1"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("ZeroPadding2D", "zp", ["mp"], padding=[[1, 1], [0, 2]]),
        node("QDepthwiseConv2D", "dw", ["zp"], kernel_size=[2, 2], strides=[1, 1], padding="valid",
             depth_multiplier=2, activation="linear", use_bias=False, depthwise_quantizer=q),
        node("AveragePooling2D", "ap", ["dw"], pool_size=[2, 2], strides=[1, 1], padding="same"),
        node("GlobalAveragePooling2D", "gap", ["ap"]),
    ]
    path = write_functional(tmp_path, "cv", layers, {"c1": {"kernel": k1}, "dw": {"depthwise_kernel": dw}},
                            ["gap"], [6, 6, 2])
    module = import_keras(path, input_type=Fixed(8, 3))
    x = rng.integers(-128, 128, (5, 6, 6, 2)) / 32
    (y,), ev = evaluate_real(module, [x])

    def conv(x, k, pad):  # x (N,H,W,C), k (kh,kw,ci,co), zero pads ((t,b),(l,r)), stride 1
        xp = np.pad(x, ((0, 0), *pad, (0, 0)))
        kh, kw = k.shape[:2]
        H, W = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
        return sum(np.einsum("nhwc,cd->nhwd", xp[:, i:i + H, j:j + W], k[i, j]) for i in range(kh) for j in range(kw))

    c1 = np.clip(np.rint(np.maximum(conv(x, k1, ((1, 1), (1, 1))), 0) * 16), 0, 63) / 16
    mp = c1.reshape(5, 3, 2, 3, 2, 3).max(axis=(2, 4))
    zp = np.pad(mp, ((0, 0), (1, 1), (0, 2), (0, 0)))
    d = np.concatenate([conv(zp[..., c:c + 1], dw[:, :, c:c + 1, :], ((0, 0), (0, 0))) for c in range(3)], axis=-1)
    # 'same' average pooling 2x2 stride 1: pad end by 1, divide by the valid count
    s = np.pad(d, ((0, 0), (0, 1), (0, 1), (0, 0)))
    ones = np.pad(np.ones_like(d[..., :1]), ((0, 0), (0, 1), (0, 1), (0, 0)))
    tot = s[:, :-1, :-1] + s[:, 1:, :-1] + s[:, :-1, 1:] + s[:, 1:, 1:]
    cnt = ones[:, :-1, :-1] + ones[:, 1:, :-1] + ones[:, :-1, 1:] + ones[:, 1:, 1:]
    ap = tot / cnt
    gap = ap.mean(axis=(1, 2))
    assert np.array_equal(ev.layer_outputs()["c1"][0].to_real(ev.layer_outputs()["c1"][1]), c1)
    assert np.array_equal(ev.layer_outputs()["dw"][0].to_real(ev.layer_outputs()["dw"][1]), d)
    assert np.array_equal(y, gap)  # 4x4 window: 1/16 and counts 1, 2, 4 are powers of two: exact
    pools = [op for op in get_model(module).block.ops if isinstance(op, PoolOp)]
    assert [p.kind.data for p in pools] == ["max", "avg", "avg"]


def test_float_activation_tables(tmp_path):
    w = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    layers = [node("Dense", "d", ["inp"], units=2, activation="tanh", use_bias=False),
              node("Activation", "s", ["d"], activation="sigmoid")]
    path = write_functional(tmp_path, "tb", layers, {"d": {"kernel": w}}, ["s"], [2])
    cfg = PrecisionConfig.from_type(F18)
    module = import_keras(path, input_type=Fixed(8, 3), precision=cfg)
    luts = [op for op in get_model(module).block.ops if isinstance(op, LutOp)]
    assert [layer_of(op) for op in luts] == ["d", "s"]
    assert elem(luts[0].input.type) == Fixed(10, 4)  # the default table index type
    x = np.random.default_rng(5).integers(-128, 128, (40, 2)) / 32
    (y,), _ = evaluate_real(module, [x])
    ref = 1 / (1 + np.exp(-np.tanh(x @ w)))
    assert np.abs(y - ref).max() < 2 ** -6  # index step 1/64 at slope <= 1, plus rounding


def test_unsupported_layer_names_class_and_supported(tmp_path):
    layers = [node("LSTM", "rnn", ["inp"], units=3)]
    path = write_functional(tmp_path, "un", layers, {}, ["rnn"], [4])
    with pytest.raises(QirError) as e:
        import_keras(path, input_type=Fixed(8, 3))
    msg = str(e.value)
    assert "layer 'rnn' (LSTM)" in msg and "unsupported layer class 'LSTM'" in msg and "QConv2D" in msg


def test_shared_layer_and_multi_input_rejected(tmp_path):
    d = node("Dense", "d", ["inp"], units=4, use_bias=False)
    d["inbound_nodes"].append([["d", 0, 0, {}]])
    path = write_functional(tmp_path, "sh", [d], {"d": {"kernel": np.eye(4)}}, ["d"], [4])
    with pytest.raises(QirError, match="called 2 times"):
        import_keras(path, input_type=Fixed(8, 3), precision=F18)


# ------------------------------------------------------------------------------ real .keras / .h5 files
V3 = DATA / "qkeras_v3_small"


@pytest.mark.parametrize("fname", ["model.keras", "model.h5"])
def test_qkeras_v3_files(fname):
    """A QKeras-v3 model saved by Keras 3 (generate.py): QConv2DBatchnorm, ternary depthwise,
    separable with binary pointwise, Add, pooling, QDense; layer outputs of its own predict()."""
    v = vectors(V3)
    module = import_keras(V3 / fname)  # the input type comes from the first QActivation
    assert elem(get_model(module).inputs()[0].result.type) == Fixed(8, 4)
    _, ev = evaluate_real(module, [v["x"]])
    ours = {n: t.to_real(m) for n, (t, m) in ev.layer_outputs().items()}
    for name in ("qin", "a1", "a2", "a3", "add", "mp", "fl"):
        assert np.mean(ours[name] == v[f"layer_{name}"]) >= 0.999, name
    for name in ("cbn", "dw", "sep", "out"):  # float32 accumulation in Keras
        assert np.abs(ours[name] - v[f"layer_{name}"]).max() <= 1e-4, name


def test_keras_zip_guards(tmp_path):
    import zipfile

    src = V3 / "model.keras"
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                data = data + b" " * (8 << 20)  # a highly compressible member
            zout.writestr(item.filename, data)
    with pytest.raises(QirError, match="implausibly large"):
        import_keras(bomb)
    missing = tmp_path / "nocfg.keras"
    with zipfile.ZipFile(missing, "w") as z:
        z.writestr("model.weights.h5", b"")
    with pytest.raises(QirError, match="no config.json"):
        import_keras(missing)
    (tmp_path / "trunc.keras").write_bytes(src.read_bytes()[:1000])
    with pytest.raises(QirError, match="truncated or corrupt"):
        import_keras(tmp_path / "trunc.keras")


def test_cli_precision_config(tmp_path):
    from qir.cli import main

    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"default": {"weight": "fixed<18,8>", "bias": "fixed<18,8>",
                                           "result": "fixed<18,8>"},
                               "layers": {"output_softmax": {"result": None}}}))
    out = tmp_path / "net.mlir"
    assert main(["import", str(JET / "KERAS_3layer.json"), "--input-type", "fixed<16,6>", "--softmax", "none",
                 "--precision-config", str(cfg), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.count("qir.quantize") == 3 and text.count("qir.dense") == 4
