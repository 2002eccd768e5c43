"""The Keras frontend against real Keras 3 + qkeras-v3 (jax backend): models covering every QKeras
quantizer and layer, saved as .keras and .h5, imported and compared with the model's own predict().

Needs the ``heavy`` extra (keras, jax, qkeras-v3); skipped without it."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
qkeras = pytest.importorskip("qkeras")

from qir.frontends.keras import import_keras  # noqa: E402

from qir.errors import QirError  # noqa: E402
from qir.fixed import Fixed  # noqa: E402
from qir.interp import evaluate_real  # noqa: E402

pytestmark = [pytest.mark.heavy,
              # qkeras-v3 (pyparsing) and Keras (numpy 2 __array__) raise deprecation warnings of their
              # own; the non-heavy tests keep them errors for qir's code
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]
L = keras.layers
Q = qkeras


def on_grid(shape, t: Fixed, seed=0, n=64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return t.to_real(rng.integers(t.min_int, t.max_int + 1, (n, *shape))).astype(np.float32).astype(np.float64)


def layer_outputs(model, x) -> dict[str, np.ndarray]:
    layers = [lay for lay in model.layers if not isinstance(lay, L.InputLayer)]
    probe = keras.Model(model.inputs, [lay.output for lay in layers])
    outs = probe.predict(x.astype(np.float32), verbose=0)
    return {lay.name: np.asarray(o, dtype=np.float64) for lay, o in zip(layers, outs)}


def randomize(model, seed=0, scale=0.5):
    """Random weights (batch-norm variances positive) so quantizers see non-trivial values."""
    rng = np.random.default_rng(seed)
    for lay in model.layers:
        ws = lay.get_weights()
        if not ws:
            continue
        new = []
        for v, w in zip(lay.weights, ws):
            name = v.path.rsplit("/", 1)[-1]
            if w.dtype.kind != "f":
                new.append(w)
            elif "variance" in name:
                new.append(rng.uniform(0.3, 2.0, w.shape).astype(w.dtype))
            elif "gamma" in name:
                new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
            else:
                new.append((rng.normal(size=w.shape) * scale).astype(w.dtype))
        lay.set_weights(new)


def compare(model, tmp_path, x, in_t, exact_layers, close_layers=(), tol=1e-4, fmt=(".keras", ".h5"), **kw):
    ref = layer_outputs(model, x)
    for suffix in fmt:
        path = tmp_path / f"{model.name}{suffix}"
        model.save(path)
        module = import_keras(path, input_type=in_t, **kw)
        _, ev = evaluate_real(module, [x])
        ours = {n: t.to_real(m) for n, (t, m) in ev.layer_outputs().items()}
        for name in exact_layers:
            frac = np.mean(ours[name] == ref[name])
            assert frac >= 0.999, (suffix, name, frac, np.abs(ours[name] - ref[name]).max())
        for name in close_layers:
            err = np.abs(ours[name] - ref[name]).max()
            assert err <= tol * max(1.0, np.abs(ref[name]).max()), (suffix, name, err)
    return ref


# ------------------------------------------------------------------------------ quantizers on Dense
def test_dense_quantizers(tmp_path):
    inp = keras.Input((12,))
    x = Q.QActivation("quantized_bits(8,3,alpha=1)", name="qin")(inp)
    x = Q.QDense(16, kernel_quantizer=Q.quantized_bits(4, 0), bias_quantizer=Q.quantized_bits(6, 2),
                 name="d1")(x)
    x = Q.QActivation(Q.quantized_relu(4, 2), name="a1")(x)
    x = Q.QDense(16, kernel_quantizer=Q.ternary(), bias_quantizer=Q.quantized_bits(8, 3, alpha=1), name="d2")(x)
    x = Q.QActivation("quantized_tanh(5)", name="a2")(x)
    x = Q.QDense(16, kernel_quantizer=Q.binary(), bias_quantizer=Q.quantized_po2(4), name="d3")(x)
    x = Q.QActivation(Q.quantized_sigmoid(6, symmetric=True), name="a3")(x)
    x = Q.QDense(16, kernel_quantizer=Q.quantized_po2(4, 1), bias_quantizer=Q.quantized_bits(8, 3, alpha=1),
                 activation=Q.quantized_relu(5, 2, negative_slope=0.25), name="d4")(x)
    x = Q.QDense(16, kernel_quantizer=Q.stochastic_ternary(), bias_quantizer=Q.quantized_bits(8, 3, alpha=1),
                 name="d5")(x)
    x = Q.QActivation(Q.ternary(threshold=0.5, alpha=0.5), name="a5")(x)
    x = Q.QDense(16, kernel_quantizer=Q.stochastic_binary(), bias_quantizer=Q.quantized_bits(8, 3, alpha=1),
                 name="d6")(x)
    x = Q.QActivation(Q.binary(alpha=0.5), name="a6")(x)
    x = Q.QDense(8, kernel_quantizer=Q.quantized_bits(6, 2, alpha="auto_po2"),
                 bias_quantizer=Q.quantized_bits(6, 2), name="d7")(x)
    x = Q.QActivation("quantized_bits(6,2,1,alpha=2.0)", name="a7")(x)
    x = Q.QDense(8, kernel_quantizer=Q.quantized_bits(5, 1, alpha=0.75), bias_quantizer=Q.quantized_bits(8, 3),
                 name="d8")(x)
    x = Q.QActivation(Q.quantized_bits(1, 0), name="a8")(x)
    out = Q.QDense(4, kernel_quantizer=Q.quantized_bits(4, 0, alpha=1), bias_quantizer=Q.quantized_bits(4, 0),
                   name="out")(x)
    model = keras.Model(inp, out, name="dense_q")
    randomize(model)
    x = on_grid((12,), Fixed(8, 4), n=256)
    layers = ["qin", "d1", "a1", "d2", "a2", "d3", "a3", "d4", "d5", "a5", "d6", "a6", "d7", "a7", "d8",
              "a8", "out"]
    compare(model, tmp_path, x, Fixed(8, 4), layers)


def test_relu_po2_and_sigmoid_activations(tmp_path):
    inp = keras.Input((10,))
    x = Q.QActivation("quantized_bits(8,2,alpha=1)", name="qin")(inp)
    a = Q.QActivation("quantized_relu_po2(4)", name="rp")(x)
    b = Q.QActivation(Q.quantized_relu_po2(5, negative_slope=0.25), name="rpn")(x)
    c = Q.QActivation("quantized_po2(5,1)", name="p")(x)
    d = Q.QActivation("binary_tanh", name="bt")(x)
    e = Q.QActivation(Q.quantized_relu(6, 2), name="r")(x)
    # symmetric is QKeras's second positional argument, any number of codes (issue 14)
    f = Q.QActivation("quantized_sigmoid(8, 3)", name="sg")(x)
    g = Q.QActivation(Q.quantized_tanh(5, 0, 3), name="th")(x)
    cat = L.Concatenate(name="cat")([a, b, c, d, e, f, g])
    model = keras.Model(inp, cat, name="acts")
    x = on_grid((10,), Fixed(10, 4), n=256)
    compare(model, tmp_path, x, Fixed(10, 4), ["qin", "rp", "rpn", "p", "bt", "r", "sg", "th", "cat"])


# ------------------------------------------------------------------------------ convolutional QKeras
def test_conv_layers(tmp_path):
    q4 = Q.quantized_bits(4, 0, alpha=1)
    inp = keras.Input((10, 10, 3))
    x = Q.QActivation("quantized_bits(8,3,alpha=1)", name="qin")(inp)
    x = Q.QConv2D(6, (3, 3), padding="same", kernel_quantizer=Q.quantized_bits(4, 0),
                  bias_quantizer=Q.quantized_bits(8, 3), name="c1")(x)
    x = Q.QActivation("quantized_relu(6,2)", name="a1")(x)
    x = L.MaxPooling2D((2, 2), name="mp")(x)
    x = L.ZeroPadding2D(((1, 0), (0, 1)), name="zp")(x)
    x = Q.QDepthwiseConv2D((3, 3), depth_multiplier=2, depthwise_quantizer=Q.quantized_bits(4, 0),
                           bias_quantizer=Q.quantized_bits(8, 3), name="dw")(x)
    x = Q.QActivation("quantized_relu(6,2)", name="a2")(x)
    y = Q.QSeparableConv2D(12, (2, 2), padding="same", depthwise_quantizer=q4, pointwise_quantizer=q4,
                           bias_quantizer=Q.quantized_bits(8, 3), name="sep")(x)
    y = Q.QActivation("quantized_bits(8,3,alpha=1)", name="a3")(y)
    z = Q.QConv2DBatchnorm(12, (1, 1), kernel_quantizer=Q.quantized_bits(6, 2),
                           bias_quantizer=Q.quantized_bits(10, 4), name="cbn")(x)
    z = Q.QActivation("quantized_bits(8,3,alpha=1)", name="a4")(z)
    s = L.Add(name="add")([y, z])
    s = Q.QAveragePooling2D((2, 2), average_quantizer=Q.quantized_bits(8, 0, alpha=1), name="ap")(s)
    g = Q.QGlobalAveragePooling2D(average_quantizer="quantized_bits(8,0,alpha=1)", name="gap")(s)
    f = L.Flatten(name="fl")(s)
    f = Q.QDense(6, kernel_quantizer=q4, bias_quantizer=q4, name="fd")(f)
    out = L.Concatenate(name="cat")([g, f])
    model = keras.Model(inp, out, name="conv_q")
    randomize(model, seed=1)
    x = on_grid((10, 10, 3), Fixed(8, 3), n=64)
    compare(model, tmp_path, x, Fixed(8, 3),
            ["qin", "a1", "mp", "zp", "a2", "a3", "a4", "add", "cat"],
            close_layers=["c1", "dw", "sep", "cbn", "ap", "gap", "fd"], tol=1e-4)


def qbn_reference(layer, x: np.ndarray) -> np.ndarray:
    """QBatchNormalization at inference with QKeras's own quantizer objects (the layer's call()
    itself only runs on the TensorFlow backend): inv = Q_g(g)/sqrt(Q_v(v)+eps) [Q_inv], y = x*inv +
    (Q_b(b) - Q_m(m)*inv), in float32 as QKeras computes it."""
    def q(quant, v):
        v = keras.ops.convert_to_numpy(v).astype(np.float32)
        return np.asarray(keras.ops.convert_to_numpy(quant(v)), np.float32) if quant is not None else v
    gamma = q(layer.gamma_quantizer_internal, layer.gamma)
    beta = q(layer.beta_quantizer_internal, layer.beta)
    mean = q(layer.mean_quantizer_internal, layer.moving_mean)
    var = q(layer.variance_quantizer_internal, layer.moving_variance)
    inv = np.float32(1) / np.sqrt(var + np.float32(layer.epsilon)) * gamma
    if layer.inverse_quantizer_internal is not None:
        inv = q(layer.inverse_quantizer_internal, inv)
    return x.astype(np.float32) * inv + (beta - mean * inv)


def test_qbatchnorm_inverse_quantizer_and_conv1d(tmp_path):
    inp = keras.Input((16, 2))
    x = Q.QActivation("quantized_bits(8,3,alpha=1)", name="qin")(inp)
    x = Q.QConv1D(4, 3, strides=2, padding="valid", kernel_quantizer=Q.quantized_bits(5, 1, alpha=1),
                  bias_quantizer=Q.quantized_bits(8, 3), name="c1")(x)
    model = keras.Model(inp, x, name="c1d")
    randomize(model, seed=2)
    bn = Q.QBatchNormalization(name="qbn", gamma_quantizer=None, variance_quantizer=None,
                               inverse_quantizer="quantized_po2(6)")
    bn.build((None, 7, 4))
    full = keras.Model(inp, Q.QActivation("quantized_relu(6,2)", name="a1")(bn(x)), name="c1d_bn")
    randomize(full, seed=3)
    x = on_grid((16, 2), Fixed(8, 4), n=128)
    conv = model.predict(x.astype(np.float32), verbose=0).astype(np.float64)
    ref_bn = qbn_reference(bn, conv)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"c1d_bn{suffix}"
        full.save(path)
        _, ev = evaluate_real(import_keras(path), [x])
        ours = {n: t.to_real(m) for n, (t, m) in ev.layer_outputs().items()}
        assert np.abs(ours["c1"] - conv).max() <= 1e-4
        assert np.abs(ours["qbn"] - ref_bn).max() <= 1e-4 * max(1, np.abs(ref_bn).max())
        want = np.clip(np.rint(np.maximum(ref_bn, 0) * 16), 0, 63) / 16
        assert np.mean(ours["a1"] == want) >= 0.999


def test_qbatchnorm_default_quantizers_need_precision(tmp_path):
    inp = keras.Input((6,))
    x = Q.QActivation("quantized_bits(8,3,alpha=1)", name="qin")(inp)
    bn = Q.QBatchNormalization(name="qbn")
    model = keras.Model(inp, bn(x), name="qbn")
    randomize(model, seed=3)
    path = tmp_path / "qbn.keras"
    model.save(path)
    with pytest.raises(QirError, match="--precision") as e:
        import_keras(path)
    assert "layer 'qbn' (QBatchNormalization)" in str(e.value)
    module = import_keras(path, precision=Fixed(24, 8))
    x = on_grid((6,), Fixed(8, 4), n=256)
    (y,), _ = evaluate_real(module, [x])
    ref = qbn_reference(bn, x)
    assert np.abs(y - ref).max() < 1e-3


# ------------------------------------------------------------------------------ float Keras models
def test_float_keras_layers(tmp_path):
    inp = keras.Input((16, 3))
    x = L.Conv1D(6, 3, padding="same", name="c1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(max_value=6.0, name="r1")(x)
    x = L.MaxPooling1D(2, name="mp")(x)
    x = L.Conv1D(6, 3, padding="causal", dilation_rate=2, name="c2")(x)
    x = L.LeakyReLU(negative_slope=0.125, name="lr")(x)
    a = L.AveragePooling1D(2, name="ap")(x)
    b = L.GlobalAveragePooling1D(name="gap")(x)
    a = L.Flatten(name="fl")(a)
    a = L.Dropout(0.3, name="drop")(a)
    x = L.Concatenate(name="cat")([a, b])
    x = L.Dense(8, activation="tanh", name="d1")(x)
    x = L.Dense(8, name="d2")(x)
    x = L.Activation("sigmoid", name="sig")(x)
    x = L.Reshape((2, 4), name="rs")(x)
    x = L.Flatten(name="fl2")(x)
    out = L.Dense(4, activation="softmax", name="out")(x)
    model = keras.Model(inp, out, name="float_k")
    randomize(model, seed=4, scale=0.4)
    x = on_grid((16, 3), Fixed(12, 4), n=256)
    ref = layer_outputs(model, x)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"float_k{suffix}"
        model.save(path)
        module = import_keras(path, input_type=Fixed(12, 4), precision=Fixed(18, 8), softmax="none")
        _, ev = evaluate_real(module, [x])
        ours = {n: t.to_real(m) for n, (t, m) in ev.layer_outputs().items()}
        for name in ("bn1", "r1", "mp", "lr", "cat", "d1", "sig"):  # c1 is folded into bn1
            assert np.abs(ours[name] - ref[name]).max() < 0.03, (suffix, name)
        logits_ref = np.log(ref["out"])
        assert np.mean(np.argmax(ours["out"], 1) == np.argmax(logits_ref, 1)) >= 0.98


def test_live_model_and_sequential(tmp_path):
    model = keras.Sequential([keras.Input((8,)), Q.QActivation("quantized_bits(6,2,alpha=1)", name="qin"),
                              Q.QDense(5, kernel_quantizer="quantized_bits(4,0,alpha=1)",
                                       bias_quantizer="quantized_bits(4,0)", activation="quantized_relu(4,1)",
                                       name="d")], name="seq")
    randomize(model, seed=5)
    x = on_grid((8,), Fixed(6, 3), n=128)
    ref = model.predict(x.astype(np.float32), verbose=0)
    for src in (model, tmp_path / "seq.keras", tmp_path / "seq.h5"):
        if not isinstance(src, keras.Model):
            model.save(src)
        (y,), _ = evaluate_real(import_keras(src), [x])
        assert np.array_equal(y, ref)


# ------------------------------------------------------------------------------ Keras 3 PTQ
def _ptq_model(mode: str, config=None):
    model = keras.Sequential([keras.Input((16,)), L.Dense(12, activation="relu", name="d1"),
                              L.Dense(4, name="d2")], name=f"ptq_{mode}")
    randomize(model, seed=6)
    model.quantize(mode, config=config) if config is not None else model.quantize(mode)
    return model


def test_ptq_int8_dynamic_rejected_and_weight_only(tmp_path):
    model = _ptq_model("int8")
    path = tmp_path / "q8.keras"
    model.save(path)
    with pytest.raises(QirError, match="quantizes activations dynamically per row") as e:
        import_keras(path, input_type=Fixed(10, 4), precision=Fixed(18, 8))
    assert "layer 'd1' (Dense)" in str(e.value) and "Int8QuantizationConfig(activation_quantizer=None)" in str(e.value)
    module = import_keras(path, input_type=Fixed(10, 4), precision=Fixed(18, 8), ptq="weight-only")
    x = on_grid((16,), Fixed(10, 4), n=256)
    (y,), _ = evaluate_real(module, [x])
    ref = model.predict(x.astype(np.float32), verbose=0)
    # weight-only: the input is not quantized to int8 per row as Keras does (about 1% error there)
    assert np.abs(y - ref).max() < 0.03 * np.abs(ref).max()


def test_ptq_weight_only_files(tmp_path):
    from keras.quantizers import Int4QuantizationConfig, Int8QuantizationConfig

    for mode, cfg in (("int8", Int8QuantizationConfig(activation_quantizer=None)),
                      ("int4", None), ("int4", Int4QuantizationConfig(block_size=-1))):
        model = _ptq_model(mode, cfg)
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        module = import_keras(path, input_type=Fixed(10, 4), precision=Fixed(20, 8))
        x = on_grid((16,), Fixed(10, 4), n=256)
        (y,), _ = evaluate_real(module, [x])
        ref = model.predict(x.astype(np.float32), verbose=0)
        assert np.abs(y - ref).max() < 0.02, (mode, cfg)


def test_float_conv2d_layers(tmp_path):
    inp = keras.Input((9, 9, 2))
    x = L.ZeroPadding2D(1, name="zp")(inp)
    x = L.Conv2D(4, (3, 3), strides=2, name="c1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.Activation("relu", name="r1")(x)
    a = L.DepthwiseConv2D((2, 2), depth_multiplier=2, padding="same", name="dw")(x)
    b = L.SeparableConv2D(8, (3, 3), padding="same", name="sep")(x)
    x = L.Add(name="add")([a, b])
    x = L.BatchNormalization(name="bn2")(x)  # after Add: a scale op
    p = L.AveragePooling2D((2, 2), padding="same", name="ap")(x)
    g = L.GlobalMaxPooling2D(name="gmp")(x)
    p = L.Flatten(name="fl")(p)
    x = L.Concatenate(name="cat")([p, g])
    out = L.Dense(3, name="out")(x)
    model = keras.Model(inp, out, name="float_2d")
    randomize(model, seed=8, scale=0.4)
    x = on_grid((9, 9, 2), Fixed(10, 4), n=128)
    ref = layer_outputs(model, x)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"float_2d{suffix}"
        model.save(path)
        module = import_keras(path, input_type=Fixed(10, 4), precision=Fixed(20, 8))
        _, ev = evaluate_real(module, [x])
        ours = {n: t.to_real(m) for n, (t, m) in ev.layer_outputs().items()}
        assert "c1" not in ours  # folded into bn1
        for name in ("zp", "bn1", "r1", "dw", "sep", "add", "bn2", "ap", "gmp", "cat", "out"):
            err = np.abs(ours[name] - ref[name]).max()
            assert err < 0.02 * max(1.0, np.abs(ref[name]).max()), (suffix, name, err)


def test_qkeras_folded_batchnorm_layers(tmp_path):
    inp = keras.Input((6, 6, 3))
    x = Q.QActivation("quantized_bits(8,3,alpha=1)", name="qin")(inp)
    x = Q.QDepthwiseConv2DBatchnorm((3, 3), depth_multiplier=1, depthwise_quantizer=Q.quantized_bits(6, 2),
                                    bias_quantizer=Q.quantized_bits(10, 4), name="dwbn")(x)
    x = Q.QActivation("quantized_relu(6,2)", name="a1")(x)
    x = L.Flatten(name="fl")(x)
    x = Q.QDenseBatchnorm(8, kernel_quantizer=Q.quantized_bits(5, 1), bias_quantizer=Q.quantized_bits(10, 4),
                          name="dbn")(x)
    x = Q.QActivation(Q.binary(use_01=True), name="b01")(x)
    # (a per-channel alpha array fails inside qkeras-v3's own quantized_bits; a scalar works)
    out = Q.QDense(4, kernel_quantizer=Q.quantized_bits(4, 0, alpha=0.375), bias_quantizer=Q.quantized_bits(6, 2),
                   name="out")(x)
    model = keras.Model(inp, out, name="qfold")
    randomize(model, seed=9)
    x = on_grid((6, 6, 3), Fixed(8, 4), n=128)
    compare(model, tmp_path, x, Fixed(8, 4), ["qin", "a1", "fl", "b01", "out"], close_layers=["dwbn", "dbn"])
