"""The notebook workflow on a live QKeras-v3 model object (Keras 3, jax backend): converted in
memory, predict on float data equal to the model's own predict, compare 100% exact on every
quantized layer, compile_model(live_model).  Needs the ``heavy`` extra; skipped without it."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
Q = pytest.importorskip("qkeras")

import qir  # noqa: E402
from qir.errors import QirError  # noqa: E402
from qir.fixed import Fixed  # noqa: E402

pytestmark = [pytest.mark.heavy, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _model():
    rng = np.random.default_rng(7)
    inp = keras.Input((12,))
    x = Q.QActivation("quantized_bits(8,3,alpha=1)", name="qin")(inp)
    x = Q.QDense(16, kernel_quantizer=Q.quantized_bits(4, 0, alpha=1), bias_quantizer=Q.quantized_bits(6, 2, alpha=1),
                 name="d1")(x)
    x = Q.QActivation(Q.quantized_relu(6, 2), name="a1")(x)
    x = Q.QDense(8, kernel_quantizer=Q.quantized_bits(5, 1, alpha=1), bias_quantizer=Q.quantized_bits(6, 2, alpha=1),
                 activation=Q.quantized_relu(6, 3), name="d2")(x)
    out = Q.QDense(4, kernel_quantizer=Q.quantized_bits(4, 0, alpha=1), bias_quantizer=Q.quantized_bits(4, 0, alpha=1),
                   name="out")(x)
    model = keras.Model(inp, out, name="notebook_q")
    for lay in model.layers:
        ws = lay.get_weights()
        if ws:
            lay.set_weights([(rng.normal(size=w.shape) * 0.5).astype(w.dtype) for w in ws])
    return model


def test_live_qkeras_v3_model_notebook_workflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written: the directory stays empty
    model = _model()
    design = qir.convert(model)
    assert design.input_type == Fixed(8, 4)  # from the model's own input quantizer
    x = np.random.default_rng(1).normal(size=(400, 12)).astype(np.float32) * 4  # float data, some beyond +-8
    y = design.predict(x)
    ref = model.predict(x, verbose=0)
    assert design.last_quantization.rounded > 0 and design.last_quantization.saturated > 0
    assert np.array_equal(y, ref)  # the model's own input quantizer and qir's rounding agree
    c = design.compare(model, x)
    assert [r.layer for r in c.rows] == ["qin", "d1", "a1", "d2", "out"]
    quantized = ("qin", "a1", "d2")  # layers that end in a quantizer
    for name in quantized:
        assert c[name].exact_fraction == 1.0 and c[name].max_abs_error == 0.0, str(c)
    assert c.exact, str(c)  # the accumulations are exact in float32 too on this small model
    assert list(tmp_path.iterdir()) == []
    # the live object through compile_model (was a raw TypeError)
    from qir.flow import compile_model

    rep = compile_model(model, tmp_path / "out")
    assert rep["model"] == "<Functional notebook_q>"
    assert (tmp_path / "out" / "rtl" / f"{rep['top']}.v").is_file()


def test_live_model_config_template_and_misspelling():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu", name="fc"),
                              keras.layers.Dense(3, name="head")], name="float_seq")
    tmpl = qir.config_template(model, input_type="fixed<10,4>")
    assert tmpl["layers"] == {"fc": {"weight": "fixed<16,6>", "bias": "fixed<16,6>", "result": "fixed<16,6>",
                                     "reuse": None},
                              "head": {"weight": "fixed<16,6>", "bias": "fixed<16,6>", "result": "fixed<16,6>",
                                       "reuse": None}}
    tmpl["layers"]["head"]["result"] = "fixed<20,8>"
    d = qir.convert(model, tmpl, input_type="fixed<10,4>")
    assert d.layer_types()["head"] == Fixed(20, 8)
    x = np.random.default_rng(2).normal(size=(64, 6))
    c = d.compare(model, x)
    assert c["head"].max_abs_error < 0.02
    tmpl["layers"]["haed"] = tmpl["layers"].pop("head")
    with pytest.raises(QirError, match="'haed': the model has no layer of that name; did you mean 'head'"):
        qir.convert(model, tmpl, input_type="fixed<10,4>")
