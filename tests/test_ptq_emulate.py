"""ptq='emulate': Keras 3 int8 Dense with dynamic per-row activation quantization, emulated with
qir.reduce maxabs, scale tables (qir.lut), qir.mul and a round-half-even / [-127, 127] quantize.

The fixture is the Dense example of docs/quantizer_semantics.md §5.3 after
model.quantize("int8") (tests/data/keras_ptq_int8/generate.py), with the model's own predict()."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from qir.frontends.keras import import_keras

from qir.dialect import DenseOp, LutOp, MulOp, QuantizeOp, ReduceOp, elem, elements_to_numpy
from qir.errors import QirError
from qir.fixed import Fixed
from qir.interp import evaluate_real
from qir.ir import get_model

HERE = Path(__file__).parent / "data" / "keras_ptq_int8"
MODEL = HERE / "dense_int8.keras"
IN_T = Fixed(16, 3)
W = np.array([[.5, -1, .02], [.25, .3, -.01], [-.127, .7, 0]], np.float32)
B = np.array([.1, -.2, 0], np.float32)


def _import(precision: Fixed | None = None):
    return import_keras(MODEL, input_type=IN_T, precision=precision or Fixed(24, 6), ptq="emulate")


def keras_xq(x):
    """Keras 3.15.1's per-row int8 activation codes (AbsMaxQuantizer, notes §4), in float32:
    returns (xq, sx)."""
    x = np.asarray(x, np.float32)
    sx = np.float32(127) / (np.abs(x).max(axis=-1, keepdims=True) + np.float32(1e-7))
    return np.clip(np.round(x * sx), -127, 127).astype(np.float32), sx


def keras_int8_dense(x, w=W, b=B):
    """Keras 3.15.1's int8 Dense formula (docs/quantizer_semantics.md §4), in float32: returns (y, xq)."""
    ks = np.float32(127) / (np.abs(w).max(axis=0) + np.float32(1e-7))
    q = np.clip(np.round(w * ks), -127, 127).astype(np.float32)
    xq, sx = keras_xq(x)
    return (xq @ q) / (ks * sx) + b, xq


def _xq_of_layer(module, ev, layer):
    ops = [op for op in get_model(module).block.ops if isinstance(op, QuantizeOp)
           and elem(op.output.type) == Fixed(8, 8) and op.attributes["layer"].data == layer]
    return ev.values[ops[0].output]


def _xq_of(module, ev):
    ops = [op for op in get_model(module).block.ops if isinstance(op, QuantizeOp)
           and elem(op.output.type) == Fixed(8, 8)]
    assert len(ops) == 1
    return ev.values[ops[0].output]


def test_default_rejects_and_names_emulate():
    with pytest.raises(QirError, match="ptq='emulate'"):
        import_keras(MODEL, input_type=IN_T, precision=Fixed(24, 6))


def test_structure_and_notes_weights():
    model = get_model(_import())
    ops = list(model.block.ops)
    (red,) = [op for op in ops if isinstance(op, ReduceOp)]
    assert red.kind.data == "maxabs" and elem(red.output.type) == Fixed(16, 3, False)
    (dense,) = [op for op in ops if isinstance(op, DenseOp)]
    # docs/quantizer_semantics.md §5.3: q = [[127, -127, 127], [63, 38, -63], [-32, 89, 0]]
    assert elements_to_numpy(dense.weights).tolist() == [[127, -127, 127], [63, 38, -63], [-32, 89, 0]]
    assert elem(dense.input.type) == Fixed(8, 8)
    (xq,) = [op for op in ops if isinstance(op, QuantizeOp) and elem(op.output.type) == Fixed(8, 8)]
    assert xq.rounding.data == "rnd_conv" and xq.overflow.data == "sat_sym"
    luts = [op for op in ops if isinstance(op, LutOp)]
    assert len(luts) == 2 and all(lut.input is red.output for lut in luts)
    sx = elements_to_numpy(luts[0].table)
    t = elem(luts[0].output.type)
    a = Fixed(16, 3, False).to_real(np.arange(1, 1 << 16))  # every nonzero row max
    want = np.float32(127) / (a.astype(np.float32) + np.float32(1e-7))
    assert sx[0] == 0 and np.array_equal(t.to_real(sx[1:]), want.astype(np.float64))  # Keras's float32 scales, exactly
    assert sum(isinstance(op, MulOp) for op in ops) == 2


def test_numpy_formula_matches_keras_predict():
    d = np.load(HERE / "vectors.npz")
    y, _ = keras_int8_dense(d["x"])
    assert np.allclose(y, d["y"], rtol=0, atol=1e-6)


def test_emulation_matches_keras():
    d = np.load(HERE / "vectors.npz")
    module = _import()
    (y,), ev = evaluate_real(module, [d["x"]])
    err = np.abs(y - d["y"])
    # result fixed<24,6> (18 fractional bits, rounded once) and 1/ks on a 24-bit weight type:
    # measured max error 4.1e-6
    assert err.max() <= 2 ** -17, err.max()
    _, xq = keras_int8_dense(d["x"])
    agree = (_xq_of(module, ev) == xq).all(axis=1).mean()
    assert agree == 1.0, agree  # measured: all 2003 rows; only float32 near-ties could differ
    # docs/quantizer_semantics.md §5.3, row x = [2, 0, 0]: y = [1.1000003, -2.2000003, 0.0400002]
    assert np.allclose(y[1], [1.1000003, -2.2000003, 0.0400002], atol=2 ** -17)
    assert np.abs(y[2] - B).max() <= 2 ** -18  # all-zero row: xq = 0, y = the bias rounded to fixed<24,6>


def test_pipeline_and_cli_accept_emulate(tmp_path):
    from qir import cli
    from qir.flow import import_model

    module = import_model(MODEL, input_type=IN_T, precision=Fixed(24, 6), ptq="emulate")
    assert any(isinstance(op, ReduceOp) for op in get_model(module).block.ops)
    with pytest.raises(QirError, match="'reject', 'weight-only' or 'emulate'"):
        import_model(MODEL, input_type=IN_T, precision=Fixed(24, 6), ptq="float")
    parser = argparse.ArgumentParser()
    cli._add_import_options(parser)
    args = parser.parse_args([str(MODEL), "--ptq", "emulate", "--softmax", "table"])
    assert args.ptq == "emulate" and args.softmax == "table"


@pytest.mark.heavy
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_layer_int8_against_keras_predict(tmp_path):
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from qir.precision import LayerPrecision, PrecisionConfig

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(12, activation="relu", name="d1"),
                              keras.layers.Dense(4, name="d2")], name="ptq_int8_2")
    rng = np.random.default_rng(6)
    for lay in model.layers:
        w, b = lay.get_weights()
        lay.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32), rng.normal(0, 0.1, b.shape).astype(np.float32)])
    model.quantize("int8")
    path = tmp_path / "q8.keras"
    model.save(path)
    t = Fixed(10, 2)
    x = t.to_real(rng.integers(t.min_int, t.max_int + 1, (1000, 16)))
    # d1's result is rounded to fixed<16,6> (10 fractional bits), the row max of d2's input then fits
    # the 16-bit scale table
    cfg = PrecisionConfig(LayerPrecision(weight=Fixed(24, 6), bias=Fixed(24, 6), result=Fixed(16, 6)),
                          {"d2": {"result": Fixed(24, 8)}})
    module = import_keras(path, input_type=t, precision=cfg, ptq="emulate")
    (y,), ev = evaluate_real(module, [x])
    ref = model.predict(x.astype(np.float32), verbose=0)
    probe = keras.Model(model.inputs, [model.get_layer("d1").output])
    d1_ref = np.asarray(probe.predict(x.astype(np.float32), verbose=0), dtype=np.float64)
    t1, d1 = ev.layer_outputs()["d1"]
    xq_keras, _ = keras_xq(x)  # the int8 codes of d1's input as Keras computes them
    xq1 = _xq_of_layer(module, ev, "d1")
    bad = xq1 != xq_keras
    # measured: 4 of 16000 codes differ, each where x * 127 / max|x| is exactly 63.5 (x = max/2):
    # float32 rounds x * sx onto the tie (then half to even: 64), the exact product stays below (63)
    assert bad.mean() < 1e-3
    exact = (x * 127 / np.abs(x).max(axis=-1, keepdims=True))[bad]
    assert np.all(exact % 1 == 0.5) and np.all(np.abs(xq1[bad] - xq_keras[bad]) == 1)
    ok = ~bad.any(axis=1)
    # rows whose codes agree: the literal emulation of d1, then relu and the rounding to 2^-10
    assert np.abs(t1.to_real(d1) - d1_ref)[ok].max() <= 2 ** -11 + 1e-5
    err = np.abs(y - ref)
    # second layer: d1's result rounded to 2^-10 (and the ties above) can move d2's int8 input codes
    # by one step (max|x| / 127); measured max error 0.047 (|y| up to 9.3), 95% of outputs within 2^-10
    assert err.max() < 0.1, err.max()
    assert (err <= 2 ** -10).mean() > 0.9
    weight_only = import_keras(path, input_type=t, precision=cfg, ptq="weight-only")
    (yw,), _ = evaluate_real(weight_only, [x])
    assert err.mean() < np.abs(yw - ref).mean()  # emulation is closer to Keras than weight-only


@pytest.mark.sim
def test_emulation_rtl_bit_exact_icarus(tmp_path):
    """The emulated int8 Dense (maxabs reduce, two 4096-entry scale tables, products, int8 dense,
    rescale) through compile_model is bit-exact against the interpreter in Icarus."""
    from qir.sim import run as simrun
    from qir.sim import tools

    from qir.flow import compile_model
    from qir.interp import evaluate
    from qir.ir import parse_module

    try:
        tools.find_icarus()
    except QirError as e:
        pytest.skip(str(e))
    out = tmp_path / "ptq"
    t = Fixed(12, 3)
    compile_model(MODEL, out, input_type=t, precision=Fixed(24, 6), ptq="emulate")
    net = get_model(parse_module((out / "net.mlir").read_text()))
    assert any(isinstance(op, ReduceOp) and op.kind.data == "maxabs" for op in net.block.ops)
    rng = np.random.default_rng(0)
    x = rng.integers(t.min_int, t.max_int + 1, (300, 3))
    x[0], x[1], x[2], x[3] = 0, t.min_int, t.max_int, [1024, -512, 2047]  # zero row, extremes, x = max/2
    want = evaluate(net, [x]).outputs[0]
    got, latency = simrun.simulate(out, [x], "icarus")
    assert np.array_equal(got[0].reshape(want.shape), want)
    assert latency >= 1
