"""--io stream on a binarized CNN: the value-set analysis sees through ``qir.map`` beat inputs,
windows, max pooling and Flatten (``qir.collect``), so the binary conv kernel and the dense head
become ``qir.xnor`` (the conv's batchnorm + sign folded into thresholds) as in parallel mode;
the RTL is bit-exact against the interpreter at full rate and with random stalls."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from qir.lowering import STREAM_PIPELINE

from qir.dialect import AdderGraphOp, XnorOp
from qir.interp import evaluate
from qir.ir import get_model, layer_of, parse_module, print_module

sys.path.insert(0, str(Path(__file__).parent))


def _bn(rng, c: int, spread: float) -> dict:
    """Batchnorm statistics near a pre-activation of spread ``spread``; one negative gamma."""
    gamma = rng.uniform(0.5, 1.5, c)
    gamma[1] = -gamma[1]
    return {"gamma": gamma, "beta": rng.normal(0, 0.3, c), "moving_mean": rng.normal(0, 0.5, c) * spread,
            "moving_variance": (spread * rng.uniform(0.7, 1.3, c)) ** 2}


def write_bcnn(tmp_path: Path) -> Path:
    """QKeras BNN-style CNN on 8x8x1 (JSON + h5): a 4-bit QConv2D (valid) -> batchnorm ->
    ``binary`` activation -> a binary-kernel QConv2D (valid) -> batchnorm -> ``binary`` ->
    2x2 max pool -> Flatten -> binary-kernel QDense 3."""
    from test_frontend_keras_layers import node, write_functional

    rng = np.random.default_rng(3)
    q4, bq = "quantized_bits(4,0,alpha=1)", "binary(alpha=1)"
    conv = dict(filters=4, kernel_size=[3, 3], strides=[1, 1], padding="valid", dilation_rate=[1, 1],
                activation="linear", use_bias=False)
    bn = dict(axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True)
    layers = [
        node("QActivation", "qin", ["inp"], activation="quantized_bits(6,2,alpha=1)"),
        node("QConv2D", "c1", ["qin"], kernel_quantizer=q4, **conv),
        node("BatchNormalization", "bn1", ["c1"], **bn),
        node("QActivation", "a1", ["bn1"], activation="binary(alpha=1)"),
        node("QConv2D", "c2", ["a1"], kernel_quantizer=bq, **conv),
        node("BatchNormalization", "bn2", ["c2"], **bn),
        node("QActivation", "a2", ["bn2"], activation="binary(alpha=1)"),
        node("MaxPooling2D", "mp", ["a2"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("Flatten", "fl", ["mp"]),
        node("QDense", "d", ["fl"], units=3, activation="linear", use_bias=True, kernel_quantizer=bq,
             bias_quantizer=q4),
    ]
    w = {"c1": {"kernel": rng.integers(-8, 8, (3, 3, 1, 4)) / 8}, "bn1": _bn(rng, 4, 2.0),
         "c2": {"kernel": rng.choice([-1.0, 1.0], (3, 3, 4, 4))}, "bn2": _bn(rng, 4, 6.0),
         "d": {"kernel": rng.choice([-1.0, 1.0], (16, 3)), "bias": rng.integers(-8, 8, 3) / 8}}
    return write_functional(tmp_path, "bcnn", layers, w, ["d"], [8, 8, 1])


PRECISION = "fixed<16,6>"


def _net(tmp_path: Path):
    from qir.fixed import Fixed
    from qir.flow import import_model

    return import_model(write_bcnn(tmp_path), precision=Fixed.parse(PRECISION))


def _inputs(n: int, seed: int = 0) -> np.ndarray:
    """Mantissas of the fixed<6,3> input: the corners, then random codes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-32, 32, size=(n, 8, 8, 1))
    x[0], x[1] = 31, -32
    return x


def test_bcnn_stream_uses_xnor_and_thresholds(tmp_path):
    from qir.flow import run_passes

    net = _net(tmp_path)
    low = parse_module(print_module(net))
    run_passes(low, STREAM_PIPELINE)
    ops = [o for o in get_model(low).walk()]
    xn = {layer_of(o): o for o in ops if isinstance(o, XnorOp)}
    # c2's kernel and its bn2 + sign chain: one thresholded xnor; the dense head after max pool +
    # Flatten: a popcount xnor; only c1 (4-bit weights on the 6-bit input) is an adder graph
    assert set(xn) == {"a2", "d"}, sorted(xn)
    assert xn["a2"].thresholds is not None and xn["d"].thresholds is None
    assert [layer_of(o) for o in ops if isinstance(o, AdderGraphOp)] == ["c1"]
    x = _inputs(200)
    ref = evaluate(get_model(net), [x]).outputs[0]
    assert np.array_equal(evaluate(get_model(low), [x]).outputs[0], ref)
    assert len(np.unique(ref, axis=0)) > 20  # the outputs really vary


@pytest.mark.sim
@pytest.mark.parametrize("simulator, n", [("icarus", 12), pytest.param("verilator", 300, marks=pytest.mark.slow)])
def test_bcnn_stream_rtl(simulator, n, tmp_path):
    from qir.sim.stream_bench import check_stream

    from qir.fixed import Fixed
    from qir.flow import compile_model

    rep = compile_model(write_bcnn(tmp_path), tmp_path / "d", io="stream", precision=Fixed.parse(PRECISION))
    assert "qir.xnor" in (tmp_path / "d" / "lowered.mlir").read_text()
    net = _net(tmp_path)
    x = _inputs(n, seed=4)
    ref = evaluate(get_model(net), [x]).outputs[0]
    runs = check_stream(tmp_path / "d", x, ref, simulator, seeds=(None, 7))
    assert runs[0]["ii"] == rep["ii_cycles"] == 64
