"""Small stream CNNs for ``qir.stream_mvu`` (issue #12): conv -> relu -> Flatten -> dense; and the
steps tests/test_stream_mvu.py and tests/test_stream_xnor.py share (lowering with a reuse, two
compiles + lint)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from qkeras_writer import Layer, conv, dense, qact, write_model
from sim_checks import lint_clean


def write_small_cnn(directory: str | Path, seed: int = 0, kind: str = "mac", shape=(6, 6, 2), filters: int = 3,
                    n_out: int = 5, act_after_flatten: bool = False) -> Path:
    """``shape`` input ``quantized_bits(6,2,alpha=1)`` (fixed<6,3>) -> QConv2D(filters, 3x3, same) relu(3,1) ->
    Flatten -> QDense(n_out) with ``kind`` weights: ``mac`` (4-bit), ``po2`` (0, +-2^k),
    ``ternary`` (0, +-1/2); both with a bias.  ``act_after_flatten``: a QActivation
    ``quantized_relu(2,1)`` between the Flatten and the dense."""
    rng = np.random.default_rng(seed)
    wq = "quantized_bits(4,0,alpha=1)"
    c = conv("c1", "qin", 2, rng.integers(-8, 8, size=(3, 3, shape[2], filters)) / 8, rng.integers(-8, 8, filters) / 8,
             wq, wq, padding="same")
    n_in = shape[0] * shape[1] * filters
    if kind == "mac":
        k, kq = rng.integers(-8, 8, size=(n_in, n_out)) / 8, wq
    elif kind == "po2":
        k = rng.choice([0, 1, -1, 2, -2, 0.5, -0.5, 0.25, -4], size=(n_in, n_out))
        kq = "quantized_po2(4,4)"
    else:
        k, kq = rng.choice([0.0, 0.5, -0.5], size=(n_in, n_out)), "ternary(alpha=0.5)"
    layers = [qact("qin", "x", "quantized_bits(6,2,alpha=1)"), c, qact("r1", "c1", "quantized_relu(3,1)"),
              Layer("flat", "Flatten", {"data_format": "channels_last"}, ["r1"])]
    if act_after_flatten:
        layers.append(qact("a2", "flat", "quantized_relu(2,1)"))
    layers.append(dense("fc1", layers[-1].name, k, rng.integers(-8, 8, n_out) / 8, kq, wq))
    return write_model(directory, f"scnn_{kind}_{seed}{'_act' if act_after_flatten else ''}", shape, layers)


def random_inputs(n: int, shape=(6, 6, 2), seed: int = 1) -> np.ndarray:
    """Inputs on the ``quantized_bits(6,2)`` grid, the corners (min, max) first."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-32, 32, size=(n, *shape)) / 8
    x[0], x[1] = -4.0, 31 / 8
    return x


def mantissas(x: np.ndarray) -> np.ndarray:
    """The input mantissas of ``random_inputs`` (fixed<6,3>: 3 fractional bits)."""
    return np.round(x * 8).astype(np.int64)


def lowered(js, R: int):
    """(imported, lowered): the model ``js`` and a copy with ``reuse = R`` on every dense, run
    through ``STREAM_PIPELINE``."""
    from qir.lowering import STREAM_PIPELINE
    from xdsl.dialects.builtin import IntegerAttr, i64

    from qir.dialect import DenseOp
    from qir.flow import import_model, parse_pipeline, run_passes

    net = import_model(js)
    low = net.clone()
    for op in low.walk():
        if isinstance(op, DenseOp):
            op.attributes["reuse"] = IntegerAttr(R, i64)
    run_passes(low, parse_pipeline(STREAM_PIPELINE))
    return net, low


def compile_twice_and_lint(js, tmp_path: Path, top: str, reuse: int) -> Path:
    """``js`` compiled ``--io stream`` with ``reuse`` into tmp_path/out and again into a deeper
    folder: byte-identical Verilog, lint-clean; returns tmp_path/out."""
    from qir.flow import compile_model

    outs = []
    for k in range(2):
        out = tmp_path / f"o{k}" / "deep" if k else tmp_path / "out"
        compile_model(js, out, io="stream", reuse=reuse, top=top)
        outs.append((out / "rtl" / f"{top}.v").read_bytes())
    assert outs[0] == outs[1]
    lint_clean(tmp_path / "out" / "rtl" / f"{top}.v", top)
    return tmp_path / "out"


def write_binary_cnn(directory: str | Path, seed: int = 0, shape=(6, 6, 1), filters: int = 3, n_out: int = 5,
                     use_01: bool = False, sign_after: bool = True, kernel: np.ndarray | None = None,
                     pool: bool = False) -> Path:
    """A binary CNN head for the xnor ``qir.stream_mvu``: ``shape`` input ``quantized_bits(6,2,alpha=1)``
    -> QConv2D(filters, 3x3, valid, 4-bit) -> QActivation ``binary`` ({-1,+1}, or {0,1} with ``use_01``)
    [-> 2x2 max pool] -> Flatten -> QDense(n_out) with ``binary(alpha=1)`` weights (``kernel`` or
    random) and a bias; with ``sign_after`` a ``binary`` activation (thresholds) and a QDense(3)."""
    rng = np.random.default_rng(seed)
    wq = "quantized_bits(4,0,alpha=1)"
    bq = "binary(alpha=1)"
    act = "binary(use_01=True)" if use_01 else "binary(alpha=1)"
    c = conv("c1", "qin", 2, rng.integers(-8, 8, size=(3, 3, shape[2], filters)) / 8, rng.integers(-8, 8, filters) / 8,
             wq, wq, padding="valid")
    sp = [shape[0] - 2, shape[1] - 2]
    layers = [qact("qin", "x", "quantized_bits(6,2,alpha=1)"), c, qact("a1", "c1", act)]
    if pool:
        layers.append(Layer("mp", "MaxPooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid",
                                                   "data_format": "channels_last"}, ["a1"]))
        sp = [v // 2 for v in sp]
    layers.append(Layer("flat", "Flatten", {"data_format": "channels_last"}, [layers[-1].name]))
    n_in = sp[0] * sp[1] * filters
    k = rng.choice([-1.0, 1.0], size=(n_in, n_out)) if kernel is None else np.asarray(kernel, dtype=np.float64)
    layers.append(dense("fc1", "flat", k, rng.integers(-8, 8, n_out) / 2, bq, "quantized_bits(6,4,alpha=1)"))
    if sign_after:
        layers += [qact("a2", "fc1", "binary(alpha=1)"),
                   dense("fc2", "a2", rng.integers(-8, 8, size=(n_out, 3)) / 8, rng.integers(-8, 8, 3) / 8, wq, wq)]
    name = f"bcnn_{seed}{'_01' if use_01 else ''}{'' if sign_after else '_pop'}{'_mp' if pool else ''}"
    return write_model(directory, name, shape, layers)


def write_binary_head(directory: str | Path, kernel: np.ndarray, bias, shape=(4, 4, 2), use_01: bool = False,
                      sign_after: bool = False) -> Path:
    """The corner model of the xnor ``qir.stream_mvu``: ``shape`` input ``quantized_bits(6,2,alpha=1)`` ->
    QActivation ``binary`` (per beat: x >= 0 is +1, else -1; {0, 1} with ``use_01``) -> Flatten ->
    QDense with ``binary(alpha=1)`` weights ``kernel`` and ``quantized_bits(9,8)`` ``bias`` (up to
    +-256: a constant sign) [-> QActivation ``binary``]."""
    act = "binary(use_01=True)" if use_01 else "binary(alpha=1)"
    layers = [qact("qin", "x", "quantized_bits(6,2,alpha=1)"), qact("a1", "qin", act),
              Layer("flat", "Flatten", {"data_format": "channels_last"}, ["a1"]),
              dense("fc1", "flat", kernel, bias, "binary(alpha=1)", "quantized_bits(9,8,alpha=1)")]
    if sign_after:
        layers.append(qact("a2", "fc1", "binary(alpha=1)"))
    return write_model(directory, f"bhead{'_01' if use_01 else ''}{'_sign' if sign_after else ''}", shape, layers)


def write_bcnn28(directory: str | Path, seed: int = 28, filters: int = 16, units: int = 256) -> Path:
    """A binary CNN for MNIST-sized inputs (issue #12, the xnor ``qir.stream_mvu``): 28x28x1 input
    ``quantized_bits(8,0,alpha=1)`` -> QConv2D(``filters``, 3x3, valid, ``binary`` kernel) ->
    BatchNormalization -> ``binary`` -> Flatten (26 x 26 x filters) -> QDense(``units``, ``binary``
    kernel) -> BatchNormalization -> ``binary`` -> QDense(10, 4-bit); seeded.  Float batchnorm:
    compile with a ``--precision``."""
    rng = np.random.default_rng(seed)
    bq = "binary(alpha=1)"

    def bn(name, src, c, spread):
        return Layer(name, "BatchNormalization", {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True,
                                                  "scale": True}, [src],
                     {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.3, c),
                      "moving_mean": rng.normal(0, 0.5, c) * spread,
                      "moving_variance": (spread * rng.uniform(0.7, 1.3, c)) ** 2})

    n_in = 26 * 26 * filters
    layers = [qact("qin", "x", "quantized_bits(8,0,alpha=1)"),
              conv("c1", "qin", 2, rng.choice([-1.0, 1.0], size=(3, 3, 1, filters)), None, bq, padding="valid"),
              bn("bn1", "c1", filters, 1.5), qact("a1", "bn1", "binary(alpha=1)"),
              Layer("flat", "Flatten", {"data_format": "channels_last"}, ["a1"]),
              dense("fc1", "flat", rng.choice([-1.0, 1.0], size=(n_in, units)), None, bq),
              bn("bn2", "fc1", units, float(np.sqrt(n_in))), qact("a2", "bn2", "binary(alpha=1)"),
              dense("fc2", "a2", rng.integers(-8, 8, size=(units, 10)) / 8, rng.integers(-8, 8, 10) / 8,
                    "quantized_bits(4,0,alpha=1)", "quantized_bits(4,0,alpha=1)")]
    return write_model(directory, f"bcnn28_{filters}_{units}", (28, 28, 1), layers)
