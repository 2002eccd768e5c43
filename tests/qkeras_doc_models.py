"""Replicas of the models in the QKeras documentation (github.com/google/qkeras: README.md,
notebook/QKerasTutorial.ipynb, examples/, qkeras/qtools/examples/), written as QKeras JSON + .h5
with tests/qkeras_writer.py (no TensorFlow).  Layer lists, shapes and quantizer configurations are
the documented ones; the weights are seeded random float32 values with the initializers' scale
(he_normal-like), quantized by the frontend exactly as QKeras would at inference.

``scale`` shrinks the channel/unit counts for the quick regression tests (1 = the documented size).

- ``cifar10_po2``: examples/example_cifar10_po2.py (the documentation's only 32x32x3 QKeras CNN):
  QActivation quantized_relu_po2(4,4) -> QConv2D 128 3x3 (po2(4,1) kernel, po2(4,4) bias) ->
  QActivation ternary() -> MaxPool 2 -> QConv2D 256 3x3 (po2) -> quantized_relu(6,2) -> MaxPool ->
  QConv2D 128 3x3 (quantized_bits(4,0,1)) -> quantized_relu(4,2) -> MaxPool -> Flatten (512) ->
  QDense 10 (kernel quantized_ulaw(4,0,1), bias quantized_bits(4,0,1)) -> softmax.
- ``mnist_bn``: examples/example_mnist_bn.py (WITH_BN=1, 28x28x1): three blocks QConv2D (128, 256,
  128; 3x3, no bias, kernel ternary(threshold=0.1)) -> QBatchNormalization (gamma
  quantized_relu_po2(4,8), variance quantized_relu_po2(6), beta quantized_po2(4,4), mean the
  default quantized_po2(5)) -> quantized_relu(3,1) -> MaxPool 2, then Flatten (128) -> QDense 10
  (quantized_ulaw(4,0,1), bias quantized_bits(4,0,1)) -> softmax.  The batch normalizations are
  float scale/shift: they need a precision.
- ``autoq_cifar10``: notebook/AutoQKeras.ipynb ``get_model("cifar10")`` (the float model AutoQKeras
  quantizes; ConvBlockNetwork 32x32x3, filters [16, [32]*3, [64]*3, [128]*3], MobileNet separable,
  xnornet trick): per conv a DepthwiseConv2D 3x3 same (no bias) -> BatchNormalization -> relu ->
  Conv2D 1x1 (no bias) [-> BatchNormalization -> relu, except the block's last], per block
  MaxPool 2 -> BatchNormalization -> relu -> Dropout(0.2); Flatten (512) -> Dense 10 -> softmax.
  Float: it needs a precision.
- ``mnist``: examples/example_mnist.py (and example_mnist_prune.py's model, 28x28x1): QConv2D 32 2x2
  stride 2 -> quantized_relu(4,0) -> QConv2D 64 3x3 stride 2 -> quantized_relu(4,0) -> QConv2D 64
  2x2 stride 2 -> quantized_relu(4,0) -> Flatten (576) -> QDense 10 -> softmax; every kernel and
  bias quantized_bits(4,0,1).
- ``mnist_po2``: examples/example_mnist_po2.py: the same geometry with quantized_relu_po2(4) on the
  input, po2(4,1) kernels and biases, quantized_relu_po2(4,4) after the first two convs,
  quantized_relu(4,1) after the third, QDense 10 quantized_bits(4,0,1).
- ``readme_cnn``: the README's example on a 32x32x3 input: QConv2D 18 3x3 (stochastic_ternary
  kernel, ternary bias) -> quantized_relu(3) -> QSeparableConv2D 32 3x3 (depthwise
  quantized_bits(4,0,1), pointwise quantized_bits(3,0,1), bias quantized_bits(3)) ->
  quantized_relu(3) -> Flatten (28*28*32 = 25088) -> QDense 10 (quantized_bits(3)) ->
  QActivation quantized_bits(20,5) -> softmax.  (The README also passes ``depthwise_activation``
  to QSeparableConv2D, which that layer does not accept: Keras raises on it, so no saved model
  has it.)
- ``tutorial``: QKerasTutorial.ipynb ``CreateQModel`` (MNIST 28x28x1): QConv2D 18 3x3
  (stochastic_ternary, bias quantized_po2(4)) -> quantized_relu(2) -> QConv2D 32 3x3 ->
  quantized_relu(2) -> Flatten (24*24*32 = 18432) -> QDense 10 (quantized_bits(3,0,1), bias
  quantized_bits(3)) -> softmax.
- ``qdense784``: examples/example_qdense.py: 784 -> QActivation quantized_relu(4) -> QDense 100
  (ternary() kernel, bias quantized_bits(4,0,1)) -> quantized_relu(2) -> QDense 10
  (quantized_bits(4,0,1)) -> softmax.
- ``qenergy784``: the qtools energy example's binary network (tests/qtools_model_test.py
  test_qenergy): 784 -> QDense 300 (binary() kernel and bias) -> quantized_relu(4,0) -> QDense 100
  (quantized_bits(4,0,1)) -> quantized_relu(4) -> QDense 10 (quantized_bits(4,0,1)) -> softmax
  (QAdaptiveActivation there is a training-time layer; its inference form is quantized_relu(4)).
- ``hybrid784``: qkeras/qtools/examples/example_generate_json.py ``hybrid_model``: 784 -> float
  Dense 300 -> relu -> QDense 100 (quantized_po2(4)) -> quantized_relu(4,0) -> QDense 10
  (quantized_po2(4)) -> softmax (needs a precision for the float Dense).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from qkeras_writer import Layer, conv, dense, q, qact, write_model


# quantizer configs as QKeras serializes them (get_config keys)
def qbits(bits, integer=0, symmetric=0, keep_negative=True, alpha=None) -> dict:
    return q("quantized_bits", bits=bits, integer=integer, symmetric=symmetric, alpha=alpha,
             keep_negative=keep_negative, use_stochastic_rounding=False, qnoise_factor=1.0)


def qrelu(bits, integer=0) -> dict:
    return q("quantized_relu", bits=bits, integer=integer, use_sigmoid=0, negative_slope=0.0,
             use_stochastic_rounding=False, relu_upper_bound=None, qnoise_factor=1.0)


def po2(bits, max_value=None) -> dict:
    return q("quantized_po2", bits=bits, max_value=max_value, use_stochastic_rounding=False,
             quadratic_approximation=False, qnoise_factor=1.0, log2_rounding="rnd")


def relu_po2(bits, max_value=None) -> dict:
    return q("quantized_relu_po2", bits=bits, max_value=max_value, negative_slope=0,
             use_stochastic_rounding=False, quadratic_approximation=False, qnoise_factor=1.0,
             log2_rounding="rnd")


def ternary(alpha=None, threshold=None) -> dict:
    return q("ternary", alpha=alpha, threshold=threshold, use_stochastic_rounding=False, number_of_unrolls=5)


def stochastic_ternary() -> dict:
    return q("stochastic_ternary", alpha=None, threshold=None, temperature=8.0, use_real_sigmoid=True,
             number_of_unrolls=5)


def binary(alpha=None) -> dict:
    return q("binary", use_01=False, alpha=alpha, use_stochastic_rounding=False)


def ulaw(bits, integer=0, symmetric=0, u=255.0) -> dict:
    return q("quantized_ulaw", bits=bits, integer=integer, symmetric=symmetric, u=u)


def _he(rng, shape, fan_in):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def _pool(name, src):
    return Layer(name, "MaxPooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid",
                                        "data_format": "channels_last"}, [src])


def _flat(name, src):
    return Layer(name, "Flatten", {"data_format": "channels_last"}, [src])


def _softmax(name, src):
    return Layer(name, "Activation", {"activation": "softmax"}, [src])


def _c(n: int, scale: int) -> int:
    return max(1, n // scale)


def _qdense(rng, name: str, src: str, n_in: int, n_out: int, kq, bq) -> Layer:
    """A QDense of the examples' random weights: He-normal kernel (n_in, n_out), then a normal
    bias (sigma 0.3), drawn in that order from ``rng``."""
    return dense(name, src, _he(rng, (n_in, n_out), n_in), rng.normal(0, 0.3, n_out), kq, bq)


def _head(rng, src: str, n_in: int, kq, bq) -> list[Layer]:
    """The examples' classifier head: Flatten, a 10-way ``_qdense`` of ``n_in`` inputs, softmax."""
    return [_flat("flatten", src),
            _qdense(rng, "dense", "flatten", n_in, 10, kq, bq),
            _softmax("softmax", "dense")]


def write_cifar10_po2(d: str | Path, scale: int = 1, seed: int = 42, hw: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    c0, c1, c2 = _c(128, scale), _c(256, scale), _c(128, scale)
    layers = [qact("acti", "input", relu_po2(4, 4))]
    src, cin, s = "acti", 3, hw
    for k, (cout, kq, bq, act) in enumerate([(c0, po2(4, 1), po2(4, 4), ternary()),
                                             (c1, po2(4, 1), po2(4, 4), qrelu(6, 2)),
                                             (c2, qbits(4, 0, 1), qbits(4, 0, 1), qrelu(4, 2))]):
        layers.append(conv(f"conv2d_{k}_m", src, 2, _he(rng, (3, 3, cin, cout), 9 * cin),
                           rng.normal(0, 0.5, cout), kq, bq))
        layers[-1].config["bias_range"] = 4 if k < 2 else None
        layers += [qact(f"act{k}_m", f"conv2d_{k}_m", act), _pool(f"mp_{k}", f"act{k}_m")]
        src, cin, s = f"mp_{k}", cout, (s - 2) // 2
    layers += _head(rng, src, s * s * cin, ulaw(4, 0, 1), qbits(4, 0, 1))
    return write_model(d, "cifar10_po2", (hw, hw, 3), layers, input_name="input")


def _qbn(name, src, c, rng) -> Layer:
    return Layer(name, "QBatchNormalization",
                 {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True,
                  "beta_quantizer": po2(4, 4), "gamma_quantizer": relu_po2(4, 8), "mean_quantizer": po2(5),
                  "variance_quantizer": relu_po2(6), "inverse_quantizer": None, "beta_range": 4,
                  "gamma_range": 8},
                 [src], {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.5, c),
                         "moving_mean": rng.normal(0, 1.0, c), "moving_variance": rng.uniform(0.5, 4.0, c)})


def write_mnist_bn(d: str | Path, scale: int = 1, seed: int = 3, hw: int = 28) -> Path:
    rng = np.random.default_rng(seed)
    layers, src, cin, s = [], "input", 1, hw
    for k, cout in enumerate([_c(128, scale), _c(256, scale), _c(128, scale)]):
        layers += [conv(f"conv2d_{k}_m", src, 2, _he(rng, (3, 3, cin, cout), 9 * cin), None, ternary(threshold=0.1)),
                   _qbn(f"bn{k}", f"conv2d_{k}_m", cout, rng),
                   qact(f"act{k}_m", f"bn{k}", qrelu(3, 1)), _pool(f"mp_{k}", f"act{k}_m")]
        src, cin, s = f"mp_{k}", cout, (s - 2) // 2
    layers += _head(rng, src, s * s * cin, ulaw(4, 0, 1), qbits(4, 0, 1))
    return write_model(d, "mnist_bn", (hw, hw, 1), layers, input_name="input")


def _bn(name, src, c, rng) -> Layer:
    return Layer(name, "BatchNormalization", {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True,
                                              "scale": True}, [src],
                 {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.3, c),
                  "moving_mean": rng.normal(0, 0.5, c), "moving_variance": rng.uniform(0.5, 2.0, c)})


def write_autoq_cifar10(d: str | Path, scale: int = 1, seed: int = 4, hw: int = 32) -> Path:
    rng = np.random.default_rng(seed)

    def he_uniform(shape, fan_in):
        lim = np.sqrt(6.0 / fan_in)
        return rng.uniform(-lim, lim, size=shape)

    def relu(name, src):
        return Layer(name, "Activation", {"activation": "relu"}, [src])

    layers, src, cin, s = [], "input", 3, hw
    for i, block in enumerate([[16], [32] * 3, [64] * 3, [128] * 3]):
        block = [_c(f, scale) for f in block]
        for j, f in enumerate(block):
            sfx = "_".join([str(i)] + ([str(j)] if len(block) > 1 else []))
            dw = Layer(f"conv2d_dw_33_{sfx}", "DepthwiseConv2D",
                       {"kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "depth_multiplier": 1,
                        "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear",
                        "use_bias": False}, [src], {"depthwise_kernel": he_uniform((3, 3, cin, 1), 9)})
            pw = Layer(f"conv2d_11_{sfx}", "Conv2D",
                       {"filters": f, "kernel_size": [1, 1], "strides": [1, 1], "padding": "same",
                        "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear",
                        "use_bias": False}, [f"conv2d_dw_act_33_{sfx}"], {"kernel": he_uniform((1, 1, cin, f), cin)})
            layers += [dw, _bn(f"conv2d_dw_bn_33_{sfx}", dw.name, cin, rng),
                       relu(f"conv2d_dw_act_33_{sfx}", f"conv2d_dw_bn_33_{sfx}"), pw]
            src, cin = pw.name, f
            if j < len(block) - 1:
                layers += [_bn(f"bn_11_{sfx}", src, f, rng), relu(f"act_11_{sfx}", f"bn_11_{sfx}")]
                src = f"act_11_{sfx}"
        layers += [_pool(f"mp_{sfx}", src), _bn(f"mp_bn_{sfx}", f"mp_{sfx}", cin, rng),
                   relu(f"mp_act_{sfx}", f"mp_bn_{sfx}"),
                   Layer(f"drop_{sfx}", "Dropout", {"rate": 0.2}, [f"mp_act_{sfx}"])]
        src, s = f"drop_{sfx}", s // 2
    layers += [_flat("flatten", src),
               Layer("dense", "Dense", {"units": 10, "activation": "linear", "use_bias": True}, ["flatten"],
                     {"kernel": he_uniform((s * s * cin, 10), s * s * cin), "bias": np.zeros(10)}),
               _softmax("softmax", "dense")]
    return write_model(d, "autoq_cifar10", (hw, hw, 3), layers, input_name="input")


def _write_mnist(d, name, acts, kq, bq, in_act, scale, seed, hw):
    rng = np.random.default_rng(seed)
    layers, src, cin, s = ([qact("acti", "input", in_act)], "acti") if in_act else ([], "input"), None, 1, hw
    layers, src = layers
    for k, (cout, ks) in enumerate([(_c(32, scale), 2), (_c(64, scale), 3), (_c(64, scale), 2)]):
        layers += [conv(f"conv2d_{k}_m", src, 2, _he(rng, (ks, ks, cin, cout), ks * ks * cin), rng.normal(0, 0.3, cout),
                        kq, bq, strides=2),
                   qact(f"act{k}_m", f"conv2d_{k}_m", acts[k])]
        src, cin, s = f"act{k}_m", cout, (s - ks) // 2 + 1
    layers += _head(rng, src, s * s * cin, qbits(4, 0, 1), qbits(4, 0, 1))
    return write_model(d, name, (hw, hw, 1), layers, input_name="input")


def write_mnist(d: str | Path, scale: int = 1, seed: int = 42, hw: int = 28) -> Path:
    return _write_mnist(d, "mnist", [qrelu(4, 0)] * 3, qbits(4, 0, 1), qbits(4, 0, 1), None, scale, seed, hw)


def write_mnist_po2(d: str | Path, scale: int = 1, seed: int = 42, hw: int = 28) -> Path:
    return _write_mnist(d, "mnist_po2", [relu_po2(4, 4), relu_po2(4, 4), qrelu(4, 1)], po2(4, 1), po2(4, 1),
                        relu_po2(4), scale, seed, hw)


def write_readme_cnn(d: str | Path, scale: int = 1, seed: int = 1, hw: int = 32, nb_classes: int = 10) -> Path:
    rng = np.random.default_rng(seed)
    c0, c1 = _c(18, scale), _c(32, scale)
    s = hw - 4
    sep = Layer("conv2d_sep", "QSeparableConv2D",
                {"filters": c1, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
                 "data_format": "channels_last", "dilation_rate": [1, 1], "depth_multiplier": 1,
                 "activation": "linear", "use_bias": True,
                 "depthwise_quantizer": qbits(4, 0, 1), "pointwise_quantizer": qbits(3, 0, 1),
                 "bias_quantizer": qbits(3), "depthwise_range": None, "pointwise_range": None,
                 "bias_range": None},
                ["act_1"], {"depthwise_kernel": _he(rng, (3, 3, c0, 1), 9),
                            "pointwise_kernel": _he(rng, (1, 1, c0, c1), c0),
                            "bias": rng.normal(0, 0.3, c1)})
    layers = [conv("first_conv2d", "input", 2, _he(rng, (3, 3, 3, c0), 27), rng.normal(0, 0.3, c0),
                   stochastic_ternary(), ternary()),
              qact("act_1", "first_conv2d", "quantized_relu(3)"),
              sep,
              qact("act_2", "conv2d_sep", "quantized_relu(3)"),
              _flat("flatten", "act_2"),
              _qdense(rng, "dense", "flatten", s * s * c1, nb_classes, qbits(3), qbits(3)),
              qact("act_out", "dense", "quantized_bits(20, 5)"),
              _softmax("softmax", "act_out")]
    return write_model(d, "readme_cnn", (hw, hw, 3), layers, input_name="input")


def write_tutorial(d: str | Path, scale: int = 1, seed: int = 2, hw: int = 28) -> Path:
    rng = np.random.default_rng(seed)
    c0, c1 = _c(18, scale), _c(32, scale)
    s = hw - 4
    layers = [conv("conv2d_1", "input", 2, _he(rng, (3, 3, 1, c0), 9), rng.normal(0, 0.3, c0),
                   "stochastic_ternary", "quantized_po2(4)"),
              qact("act_1", "conv2d_1", "quantized_relu(2)"),
              conv("conv2d_2", "act_1", 2, _he(rng, (3, 3, c0, c1), 9 * c0), rng.normal(0, 0.3, c1),
                   "stochastic_ternary", "quantized_po2(4)"),
              qact("act_2", "conv2d_2", "quantized_relu(2)"),
              _flat("flatten", "act_2"),
              _qdense(rng, "dense", "flatten", s * s * c1, 10, "quantized_bits(3,0,1)", "quantized_bits(3)"),
              _softmax("softmax", "dense")]
    return write_model(d, "tutorial", (hw, hw, 1), layers, input_name="input")


def write_qdense784(d: str | Path, scale: int = 1, seed: int = 42, n_in: int = 784) -> Path:
    rng = np.random.default_rng(seed)
    h = _c(100, scale)
    layers = [qact("act_i", "input", "quantized_relu(4)"),
              _qdense(rng, "dense0", "act_i", n_in, h, ternary(), qbits(4, 0, 1)),
              qact("act0", "dense0", "quantized_relu(2)"),
              _qdense(rng, "dense2", "act0", h, 10, qbits(4, 0, 1), qbits(4, 0, 1)),
              _softmax("softmax", "dense2")]
    return write_model(d, "qdense784", (n_in,), layers, input_name="input")


def write_qenergy784(d: str | Path, scale: int = 1, seed: int = 7, n_in: int = 784) -> Path:
    rng = np.random.default_rng(seed)
    h0, h1 = _c(300, scale), _c(100, scale)
    layers = [_qdense(rng, "d0", "input", n_in, h0, binary(), binary()),
              qact("d0_qr4", "d0", "quantized_relu(4,0)"),
              _qdense(rng, "d1", "d0_qr4", h0, h1, qbits(4, 0, 1), qbits(4, 0, 1)),
              qact("d1_qr4", "d1", "quantized_relu(4)"),
              _qdense(rng, "d2", "d1_qr4", h1, 10, qbits(4, 0, 1), qbits(4, 0, 1)),
              _softmax("softmax", "d2")]
    return write_model(d, "qenergy784", (n_in,), layers, input_name="input")


def write_hybrid784(d: str | Path, scale: int = 1, seed: int = 9, n_in: int = 784) -> Path:
    rng = np.random.default_rng(seed)
    h0, h1 = _c(300, scale), _c(100, scale)
    d0 = Layer("d0", "Dense", {"units": h0, "activation": "linear", "use_bias": True}, ["input"],
               {"kernel": _he(rng, (n_in, h0), n_in).astype(np.float32),
                "bias": rng.normal(0, 0.1, h0).astype(np.float32)})
    layers = [d0, Layer("d0_act", "Activation", {"activation": "relu"}, ["d0"]),
              _qdense(rng, "d1", "d0_act", h0, h1, po2(4), po2(4)),
              qact("d1_qr4", "d1", "quantized_relu(4,0)"),
              _qdense(rng, "d2", "d1_qr4", h1, 10, po2(4), po2(4)),
              _softmax("softmax", "d2")]
    return write_model(d, "hybrid784", (n_in,), layers, input_name="input")


#: name -> (writer, input shape, description)
DOC_MODELS = {
    "cifar10_po2": (write_cifar10_po2, (32, 32, 3), "examples/example_cifar10_po2.py"),
    "mnist_bn": (write_mnist_bn, (28, 28, 1), "examples/example_mnist_bn.py"),
    "autoq_cifar10": (write_autoq_cifar10, (32, 32, 3), "notebook/AutoQKeras.ipynb cifar10 (float)"),
    "mnist": (write_mnist, (28, 28, 1), "examples/example_mnist.py"),
    "mnist_po2": (write_mnist_po2, (28, 28, 1), "examples/example_mnist_po2.py"),
    "readme_cnn": (write_readme_cnn, (32, 32, 3), "README.md example on 32x32x3"),
    "tutorial": (write_tutorial, (28, 28, 1), "notebook/QKerasTutorial.ipynb CreateQModel"),
    "qdense784": (write_qdense784, (784,), "examples/example_qdense.py"),
    "qenergy784": (write_qenergy784, (784,), "qtools test_qenergy binary MLP"),
    "hybrid784": (write_hybrid784, (784,), "qtools/examples hybrid_model"),
}
