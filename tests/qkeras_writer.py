"""Write QKeras-format models (functional JSON + weights .h5) from a list of layer specs.

No TensorFlow or qkeras is needed: the files have the layout ``model.to_json()`` and
``model.save_weights()`` produce (Keras 2 functional config, ``layer_names``/``weight_names``
attributes), so they go through the real frontend.  Used by the regression tests for issue #14
and by the random-model generator (``tests/random_models.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np


def q(name: str, **config) -> dict:
    """A quantizer as QKeras serializes it inside a layer config."""
    return {"class_name": name, "config": config}


@dataclass
class Layer:
    """One layer: Keras class name, its config (without name), the layers feeding it, weights."""

    name: str
    class_name: str
    config: dict
    inputs: list[str]
    weights: dict[str, np.ndarray] = field(default_factory=dict)


def write_model(directory: str | Path, model_name: str, input_shape: tuple[int, ...], layers: list[Layer],
                input_name: str = "x") -> Path:
    """Write ``<model_name>.json`` and ``<model_name>_weights.h5``; returns the JSON path.  The
    model's output is the last layer."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    raw = [{"class_name": "InputLayer", "name": input_name,
            "config": {"batch_input_shape": [None, *input_shape], "dtype": "float32", "sparse": False,
                       "ragged": False, "name": input_name},
            "inbound_nodes": []}]
    for lay in layers:
        cfg = {"name": lay.name, "trainable": True, "dtype": "float32", **lay.config}
        raw.append({"class_name": lay.class_name, "name": lay.name, "config": cfg,
                    "inbound_nodes": [[[src, 0, 0, {}] for src in lay.inputs]]})
    model = {"class_name": "Functional",
             "config": {"name": model_name, "layers": raw, "input_layers": [[input_name, 0, 0]],
                        "output_layers": [[layers[-1].name, 0, 0]]},
             "keras_version": "2.4.0", "backend": "tensorflow"}
    js = d / f"{model_name}.json"
    js.write_text(json.dumps(model, indent=1))
    with h5py.File(d / f"{model_name}_weights.h5", "w") as f:
        names = [input_name] + [lay.name for lay in layers]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.4.0"
        for lay in [None, *layers]:
            name = input_name if lay is None else lay.name
            g = f.create_group(name)
            ws = {} if lay is None else lay.weights
            if ws:
                sub = g.create_group(name)
                for var, data in ws.items():
                    sub.create_dataset(f"{var}:0", data=np.asarray(data, dtype=np.float32))
                g.attrs["weight_names"] = np.array([f"{name}/{var}:0".encode() for var in ws])
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
    return js


def dense(name: str, src: str, kernel, bias=None, kernel_q: dict | None = None, bias_q: dict | None = None,
          activation="linear") -> Layer:
    kernel = np.asarray(kernel, dtype=np.float32)
    cfg = {"units": int(kernel.shape[1]), "activation": activation, "use_bias": bias is not None,
           "kernel_quantizer": kernel_q, "bias_quantizer": bias_q, "kernel_range": None, "bias_range": None}
    w = {"kernel": kernel}
    if bias is not None:
        w["bias"] = np.asarray(bias, dtype=np.float32)
    return Layer(name, "QDense", cfg, [src], w)


def conv(name: str, src: str, rank: int, kernel, bias=None, kernel_q: dict | None = None,
         bias_q: dict | None = None, activation="linear", strides=1, padding="valid") -> Layer:
    kernel = np.asarray(kernel, dtype=np.float32)
    cfg = {"filters": int(kernel.shape[-1]), "kernel_size": list(kernel.shape[:rank]),
           "strides": [strides] * rank, "padding": padding, "data_format": "channels_last",
           "dilation_rate": [1] * rank, "activation": activation, "use_bias": bias is not None,
           "kernel_quantizer": kernel_q, "bias_quantizer": bias_q, "kernel_range": None, "bias_range": None}
    w = {"kernel": kernel}
    if bias is not None:
        w["bias"] = np.asarray(bias, dtype=np.float32)
    return Layer(name, f"QConv{rank}D", cfg, [src], w)


def qact(name: str, src: str, quantizer: dict | str) -> Layer:
    return Layer(name, "QActivation", {"activation": quantizer}, [src])


#: issue #12's full-size CNN (the QKeras documentation's 32x32x3 CNN shape with a 16384 -> 128 dense)
CNN32_SHAPE = (32, 32, 3)


def write_cnn32(directory: str | Path, seed: int = 12, relu_bits: int = 4) -> Path:
    """A 32x32x3 QKeras CNN (seeded random 4-bit weights): input ``quantized_bits(8,0,alpha=1)``
    -> QConv2D(16, 3x3, same) ``quantized_relu(relu_bits,0)`` -> Flatten (32*32*16 = 16384) ->
    QDense(128) ``quantized_relu(relu_bits,0)`` -> QDense(10).  Written as ``cnn32_r<relu_bits>.json``
    + weights.  (With 4-bit activations the flattened beat is 65,536 bits: one Amaranth signal,
    beyond its 2^16 - 1 bit limit; see bench/README.md, issue #12.)"""
    rng = np.random.default_rng(seed)
    wq = "quantized_bits(4,0,alpha=1)"
    relu = f"quantized_relu({relu_bits},0)"
    step = 1 / 8

    def w(*shape):
        return rng.integers(-8, 8, size=shape) * step

    layers = [qact("qin", "x", "quantized_bits(8,0,alpha=1)"),
              conv("c1", "qin", 2, w(3, 3, 3, 16), w(16), wq, wq, padding="same"),
              qact("r1", "c1", relu),
              Layer("flat", "Flatten", {"data_format": "channels_last"}, ["r1"]),
              dense("fc1", "flat", w(16384, 128), w(128), wq, wq),
              qact("r2", "fc1", relu),
              dense("fc2", "r2", w(128, 10), w(10), wq, wq)]
    return write_model(directory, f"cnn32_r{relu_bits}", CNN32_SHAPE, layers)
