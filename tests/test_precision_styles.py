"""Per-layer implementation styles from the precision configuration (``style`` key)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlp_models import INPUT_TYPE, random_inputs, write_mlp
from qir.lowering import DEFAULT_PIPELINE

from qir.dialect import AdderGraphOp, CmvmOp, DenseOp, XnorOp
from qir.errors import QirError
from qir.fixed import Fixed
from qir.flow import import_model, run_passes
from qir.interp import evaluate
from qir.ir import get_model, layer_of
from qir.precision import PrecisionConfig

DATA = Path(__file__).parent / "data"
Q3 = DATA / "qkeras_3layer" / "qkeras_3layer.json"
BIN = Path(sys.executable).parent


def _config(tmp_path: Path, data: dict) -> PrecisionConfig:
    p = tmp_path / "prec.json"
    p.write_text(json.dumps(data))
    return PrecisionConfig.load(p)


def _styles(module) -> dict[str, str]:
    out = {}
    for op in get_model(module).walk():
        if isinstance(op, CmvmOp | AdderGraphOp):
            out[layer_of(op)] = op.style.data
        elif isinstance(op, XnorOp):
            out[layer_of(op)] = "xnor"
    return out


def test_layer_styles_from_config_keep_semantics(tmp_path):
    cfg = _config(tmp_path, {"layers": {"fc2": {"style": "mac"}, "fc3": {"style": "cmvm"}}})
    net = import_model(Q3, input_type=Fixed.parse("fixed<16,6>"), softmax="none", precision=cfg)
    dense = {layer_of(o): o for o in get_model(net).walk() if isinstance(o, DenseOp)}
    assert dense["fc2"].attributes["style"].data == "mac" and "style" not in dense["fc1"].attributes
    low = net.clone()
    run_passes(low, DEFAULT_PIPELINE)
    styles = _styles(low)
    assert styles["fc2"] == "mac" and styles["fc3"] == "cmvm" and styles["fc1"] == "cmvm"
    x = Fixed.parse("fixed<16,6>").from_real(np.load(DATA / "qkeras_3layer" / "vectors.npz")["x"][:300], "x")
    assert np.array_equal(evaluate(get_model(low), [x]).outputs[0], evaluate(get_model(net), [x]).outputs[0])


def test_default_style_and_pass_option_precedence(tmp_path):
    cfg = _config(tmp_path, {"default": {"style": "mac"}})
    net = import_model(Q3, input_type=Fixed.parse("fixed<16,6>"), softmax="none", precision=cfg)
    low = net.clone()
    run_passes(low, 'qir-infer-widths,qir-lower-dense{style=auto layers="output:cmvm"},qir-lower-cmvm,qir-pipeline')
    styles = _styles(low)
    assert styles == {"fc1": "mac", "fc2": "mac", "fc3": "mac", "output": "cmvm"}


def test_xnor_style_on_a_bnn_from_config(tmp_path):
    js = write_mlp(tmp_path / "m", "bnn")
    auto = import_model(js, input_type=Fixed.parse(INPUT_TYPE), precision=Fixed(16, 6))
    run_passes(auto, DEFAULT_PIPELINE)
    assert _styles(auto)["fc3"] == "xnor"
    cfg = _config(tmp_path, {"default": {"weight": "fixed<16,6>", "bias": "fixed<16,6>", "result": "fixed<16,6>"},
                             "layers": {"fc3": {"style": "ternary"}}})
    net = import_model(js, input_type=Fixed.parse(INPUT_TYPE), precision=cfg)
    low = net.clone()
    run_passes(low, DEFAULT_PIPELINE)
    assert _styles(low)["fc3"] == "ternary"
    x = Fixed.parse(INPUT_TYPE).from_real(random_inputs(300), "x")
    assert np.array_equal(evaluate(get_model(low), [x]).outputs[0], evaluate(get_model(net), [x]).outputs[0])


@pytest.mark.parametrize("data, needle", [
    ({"layers": {"fc9": {"style": "mac"}}}, "no dense or conv layer of that name (dense/conv layers: fc1, fc2, fc3, output)"),
    ({"layers": {"fc1": {"style": "dsp"}}}, "style 'dsp' is not one of auto, mac"),
])
def test_bad_style_entries(tmp_path, data, needle):
    with pytest.raises(QirError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        cfg = _config(tmp_path, data)
        import_model(Q3, input_type=Fixed.parse("fixed<16,6>"), softmax="none", precision=cfg)
    (tmp_path / "p.json").write_text(json.dumps(data))
    r = subprocess.run([str(BIN / "qir"), "compile", Q3, "-o", tmp_path / "out", "--input-type", "fixed<16,6>",
                        "--softmax", "none", "--precision-config", tmp_path / "p.json"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and needle.split(" (")[0] in r.stderr
    assert not (tmp_path / "out").exists()


def test_explicit_xnor_on_a_non_binary_layer_is_one_error(tmp_path):
    cfg = _config(tmp_path, {"layers": {"fc1": {"style": "xnor"}}})
    net = import_model(Q3, input_type=Fixed.parse("fixed<16,6>"), softmax="none", precision=cfg)
    with pytest.raises(QirError, match="layer 'fc1' cannot use style xnor"):
        run_passes(net, DEFAULT_PIPELINE)


def test_conv_layer_style_from_config(tmp_path):
    conv1d = DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json"
    types = {"weight": "fixed<18,8>", "bias": "fixed<18,8>", "result": "fixed<18,8>"}
    cfg = _config(tmp_path, {"default": types, "layers": {"conv2_relu": {"style": "mac"}}})
    net = import_model(conv1d, input_type=Fixed.parse("fixed<16,6>"), softmax="none", precision=cfg)
    low = net.clone()
    run_passes(low, DEFAULT_PIPELINE)
    styles = _styles(low)
    assert styles["conv2_relu"] == "mac" and styles["conv1_relu"] == "cmvm" and styles["conv3_relu"] == "cmvm"
    x = Fixed.parse("fixed<16,6>").from_real(np.load(DATA / "keras_conv1d_small" / "vectors.npz")["x"][:20], "x")
    assert np.array_equal(evaluate(get_model(low), [x]).outputs[0], evaluate(get_model(net), [x]).outputs[0])
    bad = _config(tmp_path, {"default": types, "layers": {"conv2_relu": {"style": "xnor"}}})
    with pytest.raises(QirError, match="style xnor applies to dense layers only"):
        import_model(conv1d, input_type=Fixed.parse("fixed<16,6>"), softmax="none", precision=bad)
