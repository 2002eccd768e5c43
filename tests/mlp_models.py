"""Small QKeras-format MLPs with binary or ternary weights, written as JSON + weights .h5.

The tests and ``bench/run.py`` build them the same way (fixed seed), so both see the same model:
16 inputs -> 32 -> 16 -> 5, QDense kernels ``binary(alpha=1)`` (weights +-1) or
``ternary(alpha=1)`` (weights -1/0/+1), biases ``quantized_bits(6,2,alpha=1)``, activations
``quantized_relu(4,2)``; the inputs are fixed<8,3> (``--input-type 'fixed<8,3>'``).

``bnn`` / ``bnn01`` are binarized networks (Courbariaux/Hubara style): 16 inputs -> QDense 32
(``binary`` kernel, default alpha: +-a per output column, a a power of two) -> BatchNormalization
-> QActivation ``binary`` (+-1; ``bnn01``: ``binary(use_01=True)``, {0, 1}) -> QDense 16 (binary)
-> BatchNormalization -> QActivation binary -> QDense 5 (binary kernel ``alpha=1``).  The
batch normalizations are float (realistic gamma/beta/mean/variance, one negative gamma per
layer), so they need a precision (``--precision 'fixed<16,6>'``, ``BNN_PRECISION``).
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

INPUT_TYPE = "fixed<8,3>"
SIZES = (16, 32, 16, 5)
BNN_PRECISION = "fixed<16,6>"
KINDS = ("binary", "ternary", "bnn", "bnn01")


def _quantizer(name: str, **config) -> dict:
    return {"class_name": name, "config": config}


def _dense(name: str, units: int, kernel_q: dict, first: bool, n_in: int = SIZES[0]) -> dict:
    cfg = {
        "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": "linear",
        "use_bias": True, "kernel_quantizer": kernel_q,
        "bias_quantizer": _quantizer("quantized_bits", bits=6, integer=2, symmetric=0, alpha=1, keep_negative=True,
                                     use_stochastic_rounding=False, qnoise_factor=1.0),
        "kernel_range": None, "bias_range": None,
    }
    if first:
        cfg["batch_input_shape"] = [None, n_in]
    return {"class_name": "QDense", "config": cfg}


def _act(name: str, q: dict | None = None) -> dict:
    q = q or _quantizer("quantized_relu", bits=4, integer=2, use_sigmoid=0, negative_slope=0.0,
                        use_stochastic_rounding=False, relu_upper_bound=None, qnoise_factor=1.0)
    return {"class_name": "QActivation", "config": {"name": name, "trainable": True, "dtype": "float32",
                                                    "activation": q}}


def _bn(name: str) -> dict:
    return {"class_name": "BatchNormalization",
            "config": {"name": name, "trainable": True, "dtype": "float32", "axis": -1, "momentum": 0.99,
                       "epsilon": 0.001, "center": True, "scale": True}}


def write_mlp(directory: str | Path, kind: str, seed: int = 5, sizes: tuple[int, ...] = SIZES) -> Path:
    """Write ``<kind>_mlp.json`` and ``<kind>_mlp_weights.h5`` into ``directory``; returns the JSON.
    ``sizes`` (bnn kinds): other layer sizes, e.g. the full-size 784-256-256-10 binary MLP of
    issue #12 (``BNN784``), written as ``<kind>_<sizes>_mlp``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if kind.startswith("bnn"):
        return _write_bnn(Path(directory), kind, seed, tuple(sizes))
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
    return _save(d, f"{kind}_mlp", layers, names, {k: {"kernel": w, "bias": b} for k, (w, b) in weights.items()})


def _save(d: Path, model_name: str, layers: list, names: list, weights: dict) -> Path:
    model = {"class_name": "Sequential", "config": {"name": model_name, "layers": layers},
             "keras_version": "2.4.0", "backend": "tensorflow"}
    js = d / f"{model_name}.json"
    js.write_text(json.dumps(model, indent=1))
    with h5py.File(d / f"{model_name}_weights.h5", "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.4.0"
        for name in names:
            g = f.create_group(name)
            if name in weights:
                sub = g.create_group(name)
                for var, data in weights[name].items():
                    sub.create_dataset(f"{var}:0", data=np.asarray(data, dtype=np.float32))
                g.attrs["weight_names"] = np.array([f"{name}/{var}:0".encode() for var in weights[name]])
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
    return js


#: issue #12's full-size binary MLP: 784 inputs (MNIST, fixed<8,3>) -> 256 -> 256 -> 10
BNN784 = (784, 256, 256, 10)


def _write_bnn(d: Path, kind: str, seed: int, sizes: tuple[int, ...] = SIZES) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    use_01 = kind == "bnn01"
    act_q = _quantizer("binary", use_01=use_01, alpha=None, use_stochastic_rounding=False)
    layers = [{"class_name": "InputLayer",
               "config": {"batch_input_shape": [None, sizes[0]], "dtype": "float32", "sparse": False,
                          "ragged": False, "name": "x"}}]
    names, weights = [], {}
    n_layers = len(sizes) - 1
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        last = k == n_layers
        kq = _quantizer("binary", use_01=False, alpha=1 if last else None, use_stochastic_rounding=False)
        name = f"fc{k}"
        layers.append(_dense(name, n_out, kq, first=k == 1, n_in=sizes[0]))
        names.append(name)
        w = rng.normal(0.0, 0.5, size=(n_in, n_out)) * rng.choice([0.25, 0.5, 1.0], size=n_out)
        weights[name] = {"kernel": w, "bias": rng.integers(-16, 16, size=n_out) / 16.0}
        if last:
            break
        # batch statistics near the pre-activation's: n_in terms of magnitude ~mean|w| times the
        # input's spread (uniform fixed<8,3> inputs: ~2.3; +-1 activations: 1)
        std = np.abs(w).mean(axis=0) * np.sqrt(n_in) * (2.3 if k == 1 else 1.0)
        gamma = rng.uniform(0.5, 1.5, n_out)
        gamma[1] = -gamma[1]  # a negative gamma flips the sign comparison (swapped threshold)
        weights[f"bn{k}"] = {"gamma": gamma, "beta": rng.normal(0.0, 0.3, n_out),
                             "moving_mean": weights[name]["bias"] + rng.normal(0.0, 0.5, n_out) * std,
                             "moving_variance": (std * rng.uniform(0.7, 1.3, n_out)) ** 2}
        layers += [_bn(f"bn{k}"), _act(f"act{k}", act_q)]
        names += [f"bn{k}", f"act{k}"]
    stem = f"{kind}_mlp" if sizes == SIZES else f"{kind}_{'_'.join(map(str, sizes))}_mlp"
    return _save(d, stem, layers, names, weights)


def random_inputs(n: int, seed: int = 0, n_in: int = SIZES[0]) -> np.ndarray:
    """Real-valued inputs on the fixed<8,3> grid: corners first, then uniform random codes."""
    rng = np.random.default_rng(seed)
    lo, hi = -128, 127
    corners = [np.full(n_in, lo), np.full(n_in, hi), np.zeros(n_in, dtype=int),
               np.where(np.arange(n_in) % 2, lo, hi), np.where(np.arange(n_in) % 2, hi, lo)]
    codes = np.vstack([np.asarray(corners), rng.integers(lo, hi + 1, size=(max(n - len(corners), 0), n_in))])
    return codes[:n] * 2.0 ** -5


def write_dense_mlp(directory: str | Path, sizes: tuple[int, ...], bits: int = 6, relu_bits: int = 6,
                    seed: int = 1) -> Path:
    """Write a QKeras MLP ``mlp_<sizes>.json`` (+ weights .h5) of any layer sizes: QDense kernels
    ``quantized_bits(bits, 0, alpha=1)`` with uniformly random codes, biases
    ``quantized_bits(bits, 0)``, ``quantized_relu(relu_bits)`` between layers; input type is the
    caller's (``--input-type``).  The compile-scaling benchmark's models (fixed seed)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wq = _quantizer("quantized_bits", bits=bits, integer=0, symmetric=0, alpha=1, keep_negative=True,
                    use_stochastic_rounding=False, qnoise_factor=1.0)
    relu = _quantizer("quantized_relu", bits=relu_bits, integer=0, use_sigmoid=0, negative_slope=0.0,
                      use_stochastic_rounding=False, relu_upper_bound=None, qnoise_factor=1.0)
    layers = [{"class_name": "InputLayer",
               "config": {"batch_input_shape": [None, sizes[0]], "dtype": "float32", "sparse": False,
                          "ragged": False, "name": "x"}}]
    names, weights = [], {}
    step = 2.0 ** (1 - bits)
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        name = f"fc{k}"
        layer = _dense(name, n_out, wq, first=k == 1)
        layer["config"]["bias_quantizer"] = wq
        if k == 1:
            layer["config"]["batch_input_shape"] = [None, sizes[0]]
        layers.append(layer)
        names.append(name)
        lim = 1 << (bits - 1)
        w = rng.integers(-lim, lim, size=(n_in, n_out)) * step
        b = rng.integers(-lim, lim, size=n_out) * step
        weights[name] = {"kernel": w, "bias": b}
        if k < len(sizes) - 1:
            layers.append(_act(f"relu{k}", relu))
            names.append(f"relu{k}")
    return _save(d, "mlp_" + "_".join(map(str, sizes)), layers, names, weights)
