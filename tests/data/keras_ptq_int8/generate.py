"""Writes dense_int8.keras and vectors.npz: the Keras 3 int8 Dense example of
docs/quantizer_semantics.md §5.3 (W, b below, model.quantize("int8"), dynamic per-row
activation quantization), with inputs on the fixed<16,3> grid and the model's own predict().
Run with Keras 3.15.1 (jax backend): python tests/data/keras_ptq_int8/generate.py"""
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
import numpy as np

HERE = Path(__file__).parent
W = np.array([[.5, -1, .02], [.25, .3, -.01], [-.127, .7, 0]], np.float32)
B = np.array([.1, -.2, 0], np.float32)

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="d")], name="dense_int8")
model.get_layer("d").set_weights([W, B])
model.quantize("int8")
model.save(HERE / "dense_int8.keras")
rng = np.random.default_rng(0)
x = np.concatenate([np.array([[1, .5, -.25], [2, 0, 0], [0, 0, 0]]),
                    rng.integers(-2 ** 15, 2 ** 15, (2000, 3)) / 2 ** 13])  # fixed<16,3> grid
y = model.predict(x.astype(np.float32), verbose=0)
np.savez_compressed(HERE / "vectors.npz", x=x, y=np.asarray(y, dtype=np.float64))
