"""Small QKeras-format MLPs with binary or ternary weights, written as JSON + weights .h5.

The tests and ``bench/run.py`` build them the same way (fixed seed), so both see the same model:
16 inputs -> 32 -> 16 -> 5, QDense kernels ``binary(alpha=1)`` (weights +-1) or
``ternary(alpha=1)`` (weights -1/0/+1), biases ``quantized_bits(6,2,alpha=1)``, activations
``quantized_relu(4,2)``; the inputs are fixed<8,3> (``--input-type 'fixed<8,3>'``).
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

INPUT_TYPE = "fixed<8,3>"
SIZES = (16, 32, 16, 5)


def _quantizer(name: str, **config) -> dict:
    return {"class_name": name, "config": config}


def _dense(name: str, units: int, kernel_q: dict, first: bool) -> dict:
    cfg = {
        "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": "linear",
        "use_bias": True, "kernel_quantizer": kernel_q,
        "bias_quantizer": _quantizer("quantized_bits", bits=6, integer=2, symmetric=0, alpha=1, keep_negative=True,
                                     use_stochastic_rounding=False, qnoise_factor=1.0),
        "kernel_range": None, "bias_range": None,
    }
    if first:
        cfg["batch_input_shape"] = [None, SIZES[0]]
    return {"class_name": "QDense", "config": cfg}


def _act(name: str) -> dict:
    return {"class_name": "QActivation",
            "config": {"name": name, "trainable": True, "dtype": "float32",
                       "activation": _quantizer("quantized_relu", bits=4, integer=2, use_sigmoid=0,
                                                negative_slope=0.0, use_stochastic_rounding=False,
                                                relu_upper_bound=None, qnoise_factor=1.0)}}


def write_mlp(directory: str | Path, kind: str, seed: int = 5) -> Path:
    """Write ``<kind>_mlp.json`` and ``<kind>_mlp_weights.h5`` into ``directory``; returns the JSON."""
    if kind not in ("binary", "ternary"):
        raise ValueError("kind must be 'binary' or 'ternary'")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    kq = (_quantizer("binary", use_01=False, alpha=1, use_stochastic_rounding=False) if kind == "binary" else
          _quantizer("ternary", alpha=1, threshold=None, use_stochastic_rounding=False, number_of_unrolls=5))
    layers = [{"class_name": "InputLayer",
               "config": {"batch_input_shape": [None, SIZES[0]], "dtype": "float32", "sparse": False,
                          "ragged": False, "name": "x"}}]
    names = []
    weights = {}
    for k, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        name = f"fc{k}"
        layers.append(_dense(name, n_out, kq, first=k == 1))
        names.append(name)
        if kind == "binary":
            w = rng.choice([-0.7, 0.6], size=(n_in, n_out))
        else:
            w = rng.choice([-0.8, 0.0, 0.0, 0.9], size=(n_in, n_out))
        b = rng.integers(-16, 16, size=n_out) / 16.0
        weights[name] = (w.astype(np.float32), b.astype(np.float32))
        if k < len(SIZES) - 1:
            layers.append(_act(f"relu{k}"))
            names.append(f"relu{k}")
    model = {"class_name": "Sequential", "config": {"name": f"{kind}_mlp", "layers": layers},
             "keras_version": "2.4.0", "backend": "tensorflow"}
    js = d / f"{kind}_mlp.json"
    js.write_text(json.dumps(model, indent=1))
    with h5py.File(d / f"{kind}_mlp_weights.h5", "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.4.0"
        for name in names:
            g = f.create_group(name)
            if name in weights:
                w, b = weights[name]
                sub = g.create_group(name)
                sub.create_dataset("kernel:0", data=w)
                sub.create_dataset("bias:0", data=b)
                g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
    return js


def random_inputs(n: int, seed: int = 0) -> np.ndarray:
    """Real-valued inputs on the fixed<8,3> grid: corners first, then uniform random codes."""
    rng = np.random.default_rng(seed)
    lo, hi = -128, 127
    corners = [np.full(SIZES[0], lo), np.full(SIZES[0], hi), np.zeros(SIZES[0], dtype=int),
               np.where(np.arange(SIZES[0]) % 2, lo, hi), np.where(np.arange(SIZES[0]) % 2, hi, lo)]
    codes = np.vstack([np.asarray(corners), rng.integers(lo, hi + 1, size=(max(n - len(corners), 0), SIZES[0]))])
    return codes[:n] * 2.0 ** -5
