"""Regenerate this fixture (needs the heavy extra: keras 3.15.1, jax, qkeras-v3 1.2.1):

    KERAS_BACKEND=jax .venv/bin/python tests/data/qkeras_v3_small/generate.py

A small QKeras-v3 functional model (QConv2DBatchnorm, QDepthwiseConv2D, QSeparableConv2D, Add,
MaxPooling2D, Flatten, QDense, quantized_relu / quantized_bits / ternary / binary quantizers),
saved as model.keras and model.h5, and vectors.npz: ``x`` (inputs on fixed<8,4>) and ``layer_<name>``
(every layer's output from the model's own predict())."""
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import qkeras as Q  # noqa: E402

L = keras.layers
HERE = Path(__file__).parent

inp = keras.Input((8, 8, 2), name="inp")
x = Q.QActivation("quantized_bits(8,3,alpha=1)", name="qin")(inp)
x = Q.QConv2DBatchnorm(4, (3, 3), padding="same", kernel_quantizer=Q.quantized_bits(6, 2),
                       bias_quantizer=Q.quantized_bits(10, 4), name="cbn")(x)
x = Q.QActivation("quantized_relu(6,2)", name="a1")(x)
y = Q.QDepthwiseConv2D((3, 3), padding="same", depthwise_quantizer=Q.ternary(),
                       bias_quantizer=Q.quantized_bits(8, 3), name="dw")(x)
y = Q.QActivation("quantized_bits(8,3,alpha=1)", name="a2")(y)
z = Q.QSeparableConv2D(4, (2, 2), padding="same", depthwise_quantizer=Q.quantized_bits(4, 0),
                       pointwise_quantizer=Q.binary(), bias_quantizer=Q.quantized_bits(8, 3), name="sep")(x)
z = Q.QActivation("quantized_bits(8,3,alpha=1)", name="a3")(z)
s = L.Add(name="add")([y, z])
s = L.MaxPooling2D((2, 2), name="mp")(s)
f = L.Flatten(name="fl")(s)
out = Q.QDense(5, kernel_quantizer=Q.quantized_bits(4, 0, alpha=1), bias_quantizer=Q.quantized_bits(6, 2),
               name="out")(f)
model = keras.Model(inp, out, name="qkeras_v3_small")
rng = np.random.default_rng(7)
for lay in model.layers:
    ws = lay.get_weights()
    if ws:
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
                new.append((rng.normal(size=w.shape) * 0.5).astype(w.dtype))
        lay.set_weights(new)
model.save(HERE / "model.keras")
model.save(HERE / "model.h5")
x = rng.integers(-128, 128, (100, 8, 8, 2)) / 16.0
layers = [lay for lay in model.layers if not isinstance(lay, L.InputLayer)]
outs = keras.Model(model.inputs, [lay.output for lay in layers]).predict(x.astype(np.float32), verbose=0)
np.savez_compressed(HERE / "vectors.npz", x=x, **{f"layer_{lay.name}": np.asarray(o, np.float64)
                                                   for lay, o in zip(layers, outs)})
