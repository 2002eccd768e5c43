"""The Keras/QKeras frontend: quantizer semantics (docs/quantizer_semantics.md §5.1), the spec grammar, agreement with
real QKeras on the test models, and one-line errors for bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from qir.frontends import keras
from qir.frontends.keras import import_keras, layer_handler
from qir.frontends.keras_quantizers import (
    Quantize,
    Relu,
    exact_fixed,
    parse_spec,
    resolve_activation,
    resolve_quantizer,
)

from qir.dialect import DenseOp, InputOp, QuantizeOp, elem, elements_to_numpy
from qir.errors import QirError
from qir.fixed import Fixed, requantize
from qir.interp import evaluate_real
from qir.ir import get_model, layer_of, parse_module, print_module

DATA = Path(__file__).parent / "data"
JET = DATA / "qkeras_3layer"
MNIST = DATA / "qkeras_mnist_dense"


# ------------------------------------------------------------------------------ helpers
def weights_of(spec: str, xs) -> np.ndarray:
    return resolve_quantizer(spec).quantize_weights(np.asarray(xs, dtype=np.float32))


def activation_of(spec: str, xs) -> np.ndarray:
    """Run an activation's qir steps (relu / quantize semantics) on exact fixed-point inputs."""
    mant, t = exact_fixed(np.asarray(xs, dtype=np.float32))
    for step in resolve_activation(spec).steps():
        if isinstance(step, Relu):
            mant = np.maximum(mant, 0)
        else:
            assert isinstance(step, Quantize)
            mant, t = requantize(mant, t, step.type, step.rounding, step.overflow), step.type
    return t.to_real(mant)


def pairs(text: str) -> tuple[list[float], list[float]]:
    xs, ys = zip(*(p.split("→") for p in text.split(", ")))
    return [float(x) for x in xs], [float(y) for y in ys]


def agreement(ev, vectors, name: str) -> tuple[float, float]:
    """(max abs difference, fraction of exactly equal elements) of a traced layer."""
    t, mant = ev.layer_outputs()[name]
    ours, ref = t.to_real(mant), vectors[f"layer_{name}"]
    return float(np.abs(ours - ref).max()), float(np.mean(ours == ref))


def write_model(tmp_path: Path, name: str, layers: list[dict], weights: dict) -> Path:
    """A Sequential model .json plus a weights .h5 in Keras save_weights layout."""
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": layers},
              "keras_version": "2.4.0", "backend": "tensorflow"}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    with h5py.File(tmp_path / f"{name}_weights.h5", "w") as f:
        f.attrs["layer_names"] = np.array([lay["config"]["name"].encode() for lay in layers])
        for lay in layers:
            lname = lay["config"]["name"]
            g = f.create_group(lname)
            var = weights.get(lname, {})
            g.attrs["weight_names"] = np.array([f"{lname}/{k}:0".encode() for k in var]) if var else np.array([])
            for k, v in var.items():
                g.create_dataset(f"{lname}/{k}:0", data=np.asarray(v, dtype=np.float32))
    return path


def input_layer(n: int) -> dict:
    return {"class_name": "InputLayer", "config": {"batch_input_shape": [None, n], "name": "inp"}}


def dense_layer(name: str, units: int, cls: str = "Dense", activation="linear", **extra) -> dict:
    return {"class_name": cls, "config": {"name": name, "units": units, "activation": activation,
                                          "use_bias": True, **extra}}


def dense_values(module, layer: str) -> tuple[np.ndarray, np.ndarray]:
    op = next(o for o in get_model(module).block.ops if isinstance(o, DenseOp) and layer_of(o) == layer)
    w = op.weight_type.spec.to_real(elements_to_numpy(op.weights))
    return w, op.bias_type.spec.to_real(elements_to_numpy(op.bias))


@pytest.fixture(scope="module")
def jet():
    return np.load(JET / "vectors.npz")


@pytest.fixture(scope="module")
def mnist():
    return np.load(MNIST / "vectors.npz")


# ------------------------------------------------------------------------------ quantizers (§5.1)
BITS_TABLE = {
    "quantized_bits(4,0)": ".0→0, .0625→0, .1875→.25, .3125→.25, .4375→.5, -.0625→0, -.1875→-.25, "
                           "-.3125→-.25, .3→.25, -.3→-.25, .9→.875, 1→.875, 5→.875, -.9375→-1, -1→-1, -2→-1",
    "quantized_bits(4,0,1)": ".9→.875, -.9375→-.875, -1→-.875, -5→-.875, .1875→.25",
    "quantized_bits(8,3)": "3.14159→3.125, -3.14159→-3.125, .03125→0, .09375→.125, -.03125→0, -.09375→-.125, "
                           "7.96875→7.9375, 100→7.9375, -8→-8, -100→-8",
    "quantized_bits(6,2,keep_negative=False)": "-1→0, .03125→0, .09375→.125, 1.03→1, 3.9375→3.9375, 4→3.9375, 10→3.9375",
    "quantized_bits(4,4)": "1→0, 3→4, 5→4, 100→14, -100→-16, -15→-16",
    "quantized_bits(4,-2)": ".01→0, .02→.03125, .2→.1875, -.2→-.1875, -1→-.25",
    "quantized_bits(2,0)": "-1→-1, -.5→-.5, -.25→0, 0→0, .25→0, .3→.5, .5→.5, 1→.5",
}
WEIGHT_ONLY_TABLE = {
    "quantized_bits(1,0)": "-2→-1, -.1→-1, 0→1, .1→1, 3→1",
    "quantized_bits(4,0,alpha=2.0)": ".3→.5, .9→1.75, -2→-2",
    "quantized_po2(4)": "0→.0625, .01→.0625, .3→.25, .35→.25, .36→.5, -.7→-.5, 1→1, 1.5→2, 3→4, -3→-4, "
                        "100→8, -100→-8",
    "quantized_po2(4,max_value=1)": "0→.00390625, .01→.0078125, 1.5→1, -3→-1",
    "quantized_po2(4,max_value=3)": "2.5→2, 3→4, 10→4",
    "quantized_po2(6)": f"0→{2**-16}, 1e-8→{2**-16}, {2**-20}→{2**-16}, .7→.5, 2.9→4, -5→-4, 1e9→32768, "
                        "-1e9→-32768",
}
RELU_TABLE = {
    "quantized_relu(4,0)": "-1→0, 0→0, .03125→0, .09375→.125, .15625→.125, .3→.3125, .5→.5, .96875→.9375, "
                           ".99→.9375, 5→.9375",
    "quantized_relu(6)": ".5→.5, .0078125→0, .0234375→.03125, .99→.984375, 6→.984375",
    "quantized_relu(6,2)": "-3→0, .03125→0, .09375→.125, 1.03→1, 3.9375→3.9375, 4→3.9375, 6→3.9375",
}


@pytest.mark.parametrize("spec", BITS_TABLE)
def test_quantized_bits_table(spec):
    xs, ys = pairs(BITS_TABLE[spec])
    assert weights_of(spec, xs).tolist() == ys
    assert activation_of(spec, xs).tolist() == ys


@pytest.mark.parametrize("spec", WEIGHT_ONLY_TABLE)
def test_weight_quantizer_table(spec):
    xs, ys = pairs(WEIGHT_ONLY_TABLE[spec])
    assert weights_of(spec, xs).tolist() == ys


@pytest.mark.parametrize("spec", RELU_TABLE)
def test_quantized_relu_table(spec):
    xs, ys = pairs(RELU_TABLE[spec])
    assert activation_of(spec, xs).tolist() == ys


def test_activation_types():
    assert resolve_activation("quantized_relu(6,2)").steps() == [
        Relu(), Quantize(Fixed(6, 2, False), "rnd_conv", "sat")]
    assert resolve_activation("quantized_bits(8,3)").steps() == [Quantize(Fixed(8, 4), "rnd_conv", "sat")]
    assert resolve_activation("quantized_bits(4,0,1)").steps() == [Quantize(Fixed(4, 1), "rnd_conv", "sat_sym")]
    assert resolve_activation("quantized_bits(6,2,keep_negative=False)").steps() == [
        Quantize(Fixed(6, 2, False), "rnd_conv", "sat")]


def test_auto_po2_kernel():
    w = [[.1, -.5, 2], [.3, .25, -1.5], [-.7, .05, .1]]
    expect = [[.125, -.4375, 1.75], [.25, .25, -1.5], [-.75, .0625, 0]]
    assert weights_of("quantized_bits(4,0,alpha='auto_po2')", w).tolist() == expect
    assert weights_of("quantized_bits(4,2,alpha='auto_po2')", w).tolist() == expect  # integer has no effect
    # the hidden rewrite: on a kernel, alpha=None becomes auto_po2 (symmetric)
    assert resolve_quantizer("quantized_bits(4,0)").for_kernel().quantize_weights(
        np.asarray(w, np.float32)).tolist() == expect


def test_auto_po2_rank1_per_element():
    assert weights_of("quantized_bits(4,0,alpha='auto_po2')", [.1, -.5, 2, .3]).tolist() == [.09375, -.5, 1.75, .25]


@pytest.mark.parametrize("spec, needle", [
    ("quantized_relu(4,2,negative_slope=0.3)", "power of two"),
    ("quantized_relu(4,0,1)", "use_sigmoid"),
    ("quantized_bits(4,0,alpha='auto')", "data"),
    ("binary(alpha='auto_po2')", "data"),
    ("quantized_bits(4,0,qnoise_factor=0.5)", "qnoise_factor"),
    ("quantized_tanh(4,use_real_tanh=True)", "use_real_tanh"),
    ("quantized_sigmoid(4,0,1)", "use_real_sigmoid"),
    ("quantized_sigmoid(4,0.5)", "whole number of codes"),
    ("quantized_sigmoid(4,16)", "whole number of codes from 0 to 15"),
    ("quantized_tanh(4,0,-1)", "whole number of codes"),
    ("bernoulli()", "samples randomly"),
    ("quantized_ulaw(8)", "not on a fixed-point grid"),
    ("hard_swish", "not supported"),
])
def test_unsupported_activation_raises(spec, needle):
    with pytest.raises(QirError, match=needle):
        resolve_activation(spec).steps()


def test_numeric_alpha_weights_are_float32_products():
    a = np.float32(0.3)
    got = weights_of("quantized_bits(4,0,alpha=0.3)", [0.5, -0.9, 2.0])
    assert got.tolist() == [float(a * np.float32(v)) for v in (0.5, -0.875, 0.875)]
    per_channel = resolve_quantizer({"class_name": "quantized_bits",
                                     "config": {"bits": 4, "integer": 0, "alpha": [0.5, 2.0]}})
    w = per_channel.quantize_weights(np.array([[0.3, 0.3], [-1, 1]], np.float32))
    assert w.tolist() == [[0.125, 0.5], [-0.5, 1.75]]


def test_exact_fixed_narrowest():
    mant, t = exact_fixed([0.5, -0.25, 0.75])
    assert t == Fixed(3, 1) and mant.tolist() == [2, -1, 3]
    mant, t = exact_fixed([4.0, 8.0])
    assert t == Fixed(2, 4, False) and mant.tolist() == [1, 2]
    assert exact_fixed([0.0, 0.0])[1] == Fixed(1, 1, False)


# ------------------------------------------------------------------------------ grammar
def test_parse_spec_values():
    s = parse_spec("quantized_bits(4, 0, alpha='auto_po2', keep_negative=False, scale_axis=None)")
    assert (s.name, s.args, s.called) == ("quantized_bits", (4, 0), True)
    assert s.kwargs == {"alpha": "auto_po2", "keep_negative": False, "scale_axis": None}
    assert parse_spec('q(1.5e-2, [1 2 .5], x="s")').args == (0.015, (1, 2, 0.5))
    assert parse_spec("quantized_relu") == parse_spec("quantized_relu").__class__("quantized_relu", (), {}, False)
    assert parse_spec("quantized_relu()").called


@pytest.mark.parametrize("text", [
    "quantized_relu(6,", "quantized_relu(6,,2)", "quantized_relu(bits=6, 2)", "quantized_relu(6) + 1",
    "__import__('os').system('x')", "quantized_relu(6; 2)", "", "quantized_relu(bits=1, bits=2)",
])
def test_parse_spec_rejects(text):
    with pytest.raises(QirError):
        resolve_activation(text).steps()


def test_positional_orders():
    q = resolve_quantizer("quantized_bits(6,2,1,False,2.0)")
    assert (q.bits, q.integer, q.symmetric, q.keep_negative, q.alpha) == (6, 2, 1, False, 2.0)
    r = resolve_quantizer("quantized_relu(3,1,0,0.0)")
    assert (r.bits, r.integer, r.use_sigmoid, r.negative_slope) == (3, 1, 0, 0.0)
    p = resolve_quantizer("quantized_po2(4,1)")
    assert (p.bits, p.max_value, p.exponent_range()) == (4, 1, (-8, 7))
    with pytest.raises(QirError, match="no parameter"):
        resolve_quantizer("quantized_relu(3, slope=1)")


# ------------------------------------------------------------------------------ real models
def test_jet_tagger_matches_qkeras(jet):
    module = import_keras(JET / "qkeras_3layer.json", input_type=Fixed(16, 6), softmax="none")
    (logits,), ev = evaluate_real(module, [jet["x"]])
    assert logits.shape == (2000, 5)
    assert np.abs(logits - jet["layer_output"]).max() <= 1e-5
    for name in ("fc1", "fc2", "fc3", "output"):
        assert agreement(ev, jet, name)[0] <= 1e-5, name
    for name in ("relu1", "relu2", "relu3"):
        assert agreement(ev, jet, name)[1] >= 0.999, name


def test_mnist_matches_qkeras(mnist):
    # the vectors hold 1.0 (outside ufixed<8,0>); quantized_relu(2) maps 1.0 and 255/256 both to 0.75,
    # so saturating the input to the type is exact for this model
    x = np.minimum(mnist["x"], 255 / 256)
    module = import_keras(MNIST / "qkeras_mnist_dense.json", input_type=Fixed(8, 0, signed=False),
                          softmax="none")
    (logits,), ev = evaluate_real(module, [x])
    assert np.abs(logits - mnist["layer_q_dense_3"]).max() <= 1e-5
    assert agreement(ev, mnist, "q_dense_2")[0] <= 1e-5
    for name in ("q_activation_2", "q_activation_3"):
        assert agreement(ev, mnist, name)[1] >= 0.999, name
    # a wider input type holds the raw vectors
    wide = import_keras(MNIST / "qkeras_mnist_dense.json", input_type=Fixed(9, 1, signed=False),
                        softmax="none")
    assert np.abs(evaluate_real(wide, [mnist["x"]])[0][0] - mnist["layer_q_dense_3"]).max() <= 1e-5


def test_mnist_input_type_from_first_quantizer(mnist):
    module = import_keras(MNIST / "qkeras_mnist_dense.json", softmax="none")
    model = get_model(module)
    (inp,) = model.inputs()
    assert elem(inp.result.type) == Fixed(2, 0, signed=False)
    quant = list(model.block.ops)[2]  # relu, then the (no-op) quantize of q_activation_2
    assert isinstance(quant, QuantizeOp) and elem(quant.output.type) == Fixed(2, 0, signed=False)
    (logits,), _ = evaluate_real(module, [mnist["layer_q_activation_2"]])
    assert np.abs(logits - mnist["layer_q_dense_3"]).max() <= 1e-5


def test_structure_and_round_trip():
    module = import_keras(JET / "qkeras_3layer.json", input_type=Fixed(16, 6), softmax="none")
    model = get_model(module)
    assert model.sym_name.data == "qkeras_3layer"
    ops = list(model.block.ops)
    assert isinstance(ops[0], InputOp) and ops[0].port.data == "x" and layer_of(ops[0]) == "fc1_input"
    assert all(layer_of(op) for op in ops[:-1])
    assert [layer_of(op) for op in ops[1:-1]] == [
        "fc1", "relu1", "relu1", "fc2", "relu2", "relu2", "fc3", "relu3", "relu3", "output"]
    text = print_module(module)
    assert print_module(parse_module(text)) == text


def test_po2_weights_in_ir():
    module = import_keras(MNIST / "qkeras_mnist_dense.json", softmax="none")
    w, b = dense_values(module, "q_dense_2")
    nz = np.abs(w[w != 0])
    assert nz.size == w.size  # quantized_po2 never produces zero
    assert np.all(np.log2(nz) == np.round(np.log2(nz))) and nz.max() <= 1 and nz.min() >= 2 ** -8
    assert set(b.tolist()) <= {-0.5, 0.0, 0.5}  # bias quantized_bits(2,0,1), alpha None = 1


def test_softmax_keep_is_rejected():
    with pytest.raises(QirError, match="softmax none") as e:
        import_keras(JET / "qkeras_3layer.json", input_type=Fixed(16, 6))
    assert "qkeras_3layer.json" in str(e.value) and "layer 'softmax'" in str(e.value)


def test_missing_input_type():
    with pytest.raises(QirError, match="--input-type"):
        import_keras(JET / "qkeras_3layer.json", softmax="none")


def test_importer_prints_nothing(capsys):
    import_keras(JET / "qkeras_3layer.json", input_type=Fixed(16, 6), softmax="none")
    assert capsys.readouterr() == ("", "")


def test_full_model_h5(tmp_path, jet):
    path = tmp_path / "jet_full.h5"
    with h5py.File(JET / "qkeras_3layer_weights.h5", "r") as src, h5py.File(path, "w") as dst:
        dst.attrs["model_config"] = (JET / "qkeras_3layer.json").read_text()
        group = dst.create_group("model_weights")
        for key, value in src.attrs.items():
            group.attrs[key] = value
        for key in src:
            src.copy(src[key], group, name=key)
    module = import_keras(path, input_type=Fixed(16, 6), softmax="none")
    assert get_model(module).sym_name.data == "jet_full"
    (logits,), _ = evaluate_real(module, [jet["x"][:200]])
    assert np.abs(logits - jet["layer_output"][:200]).max() <= 1e-5


# ------------------------------------------------------------------------------ small models
W3 = np.array([[.1, -.5, 2], [.3, .25, -1.5], [-.7, .05, .1]], dtype=np.float32)
B3 = np.array([.1, -.5, .3], dtype=np.float32)


def test_float_dense_needs_precision(tmp_path):
    path = write_model(tmp_path, "fl", [input_layer(3), dense_layer("d", 3, activation="relu")],
                       {"d": {"kernel": W3, "bias": B3}})
    with pytest.raises(QirError, match="--precision") as e:
        import_keras(path, input_type=Fixed(8, 4))
    assert "layer 'd' (Dense)" in str(e.value)
    module = import_keras(path, input_type=Fixed(8, 4), precision=Fixed(8, 3))
    x = np.array([[1, .5, -.25], [-2, .0625, 3]])
    (y,), _ = evaluate_real(module, [x])
    wq = np.clip(np.rint(W3.astype(np.float64) * 32), -128, 127) / 32
    bq = np.clip(np.rint(B3.astype(np.float64) * 32), -128, 127) / 32
    # the layer result is cast to the result type (round to nearest even, saturate), then relu
    assert np.array_equal(y, np.maximum(np.clip(np.rint((x @ wq + bq) * 32), -128, 127) / 32, 0))


def test_qdense_hidden_alpha_rewrite(tmp_path):
    layer = dense_layer("qd", 3, cls="QDense", kernel_quantizer="quantized_bits(4,0)",
                        bias_quantizer="quantized_bits(4,0)", activation="quantized_relu(4,2)")
    path = write_model(tmp_path, "qd", [input_layer(3), layer], {"qd": {"kernel": W3, "bias": B3}})
    w, b = dense_values(import_keras(path, input_type=Fixed(8, 4)), "qd")
    assert w.tolist() == [[.125, -.4375, 1.75], [.25, .25, -1.5], [-.75, .0625, 0]]
    assert b.tolist() == [.125, -.5, .25]  # the bias keeps alpha None = 1


def test_auto_alpha_names_layer_and_option(tmp_path):
    layer = dense_layer("qd", 3, cls="QDense", kernel_quantizer="quantized_bits(4,0,alpha='auto')",
                        bias_quantizer="quantized_bits(4,0)")
    path = write_model(tmp_path, "qa", [input_layer(3), layer], {"qd": {"kernel": W3, "bias": B3}})
    with pytest.raises(QirError, match="approximate=True") as e:
        import_keras(path, input_type=Fixed(8, 4))
    assert "qa.json: layer 'qd' (QDense)" in str(e.value) and ": kernel: " in str(e.value)
    w, _ = dense_values(import_keras(path, input_type=Fixed(8, 4), approximate=True), "qd")
    # docs/quantizer_semantics.md §1.1: column (-.5, .25, .05) -> (-.5, .2142857, .0714286) in float32
    assert np.allclose(w[:, 1], [-.5, .2142857, .0714286], atol=1e-6)
    assert w.dtype == np.float64 and np.all(w.astype(np.float32) == w)


def test_shape_mismatch(tmp_path):
    path = write_model(tmp_path, "sm", [input_layer(4), dense_layer("d", 3)], {"d": {"kernel": W3, "bias": B3}})
    with pytest.raises(QirError, match="expects 3 input") as e:
        import_keras(path, input_type=Fixed(8, 4), precision=Fixed(8, 3))
    assert "layer 'd'" in str(e.value)


def test_layer_registry_plugs_in(tmp_path):
    layers = [input_layer(3), {"class_name": "Identity2", "config": {"name": "idn"}}]
    path = write_model(tmp_path, "reg", layers, {})
    with pytest.raises(QirError, match="unsupported layer class 'Identity2'"):
        import_keras(path, input_type=Fixed(8, 4))
    layer_handler("Identity2")(lambda layer, ctx: [])
    try:
        module = import_keras(path, input_type=Fixed(8, 4))
        assert len(list(get_model(module).block.ops)) == 2  # input, output
    finally:
        del keras._HANDLERS["Identity2"]


# ------------------------------------------------------------------------------ errors
def copy_model(tmp_path: Path, src_dir: Path, stem: str, weights: bool = True) -> Path:
    shutil.copy(src_dir / f"{stem}.json", tmp_path / f"{stem}.json")
    if weights:
        shutil.copy(src_dir / f"{stem}_weights.h5", tmp_path / f"{stem}_weights.h5")
    return tmp_path / f"{stem}.json"


def edit_layer(path: Path, layer_name: str, **changes) -> None:
    config = json.loads(path.read_text())
    for layer in config["config"]["layers"]:
        if layer["config"]["name"] == layer_name:
            for key, value in changes.items():
                if key == "class_name":
                    layer[key] = value
                else:
                    layer["config"][key] = value
    path.write_text(json.dumps(config))


def test_truncated_weights(tmp_path):
    path = copy_model(tmp_path, JET, "qkeras_3layer", weights=False)
    data = (JET / "qkeras_3layer_weights.h5").read_bytes()
    (tmp_path / "qkeras_3layer_weights.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(QirError) as e:
        import_keras(path, input_type=Fixed(16, 6), softmax="none")
    msg = str(e.value)
    assert "qkeras_3layer_weights.h5" in msg and "layer 'fc1' (QDense)" in msg and "truncated" in msg


def test_missing_weights_file(tmp_path):
    path = copy_model(tmp_path, JET, "qkeras_3layer", weights=False)
    with pytest.raises(QirError, match="no such weights file") as e:
        import_keras(path)  # weights are checked before the missing input type
    assert "qkeras_3layer_weights.h5" in str(e.value) and "layer 'fc1' (QDense)" in str(e.value)


def test_unknown_layer_class(tmp_path):
    path = copy_model(tmp_path, JET, "qkeras_3layer")
    edit_layer(path, "relu2", class_name="QFancyLayer")
    with pytest.raises(QirError, match="unsupported layer class 'QFancyLayer'") as e:
        import_keras(path, softmax="none")
    assert "qkeras_3layer.json: layer 'relu2' (QFancyLayer)" in str(e.value)


@pytest.mark.parametrize("spec", ["quantized_relu(3,,1)", "quantized_relu(3", "quantized_foo(3)",
                                  "quantized_relu(bits=3, 1)", "quantized_relu(3, 1, slope=2)"])
def test_bad_quantizer_string(tmp_path, spec):
    path = copy_model(tmp_path, MNIST, "qkeras_mnist_dense")
    edit_layer(path, "q_activation_3", activation=spec)
    with pytest.raises(QirError) as e:
        import_keras(path, softmax="none")
    assert "qkeras_mnist_dense.json: layer 'q_activation_3' (QActivation)" in str(e.value)


def test_invalid_json_and_missing_model(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(QirError, match="invalid JSON"):
        import_keras(bad)
    with pytest.raises(QirError, match="no such file"):
        import_keras(tmp_path / "nothing.json")
    with pytest.raises(QirError, match="unsupported model file type"):
        import_keras(tmp_path / "model.onnx")


def test_weights_missing_layer(tmp_path):
    path = copy_model(tmp_path, JET, "qkeras_3layer")
    edit_layer(path, "fc2", name="fc2_renamed")
    with pytest.raises(QirError, match="no weights for this layer") as e:
        import_keras(path, input_type=Fixed(16, 6), softmax="none")
    assert "layer 'fc2_renamed' (QDense)" in str(e.value)


def test_malformed_config_is_one_error(tmp_path):
    path = copy_model(tmp_path, JET, "qkeras_3layer")
    edit_layer(path, "fc1", units="many")
    with pytest.raises(QirError, match="layer 'fc1'"):
        import_keras(path, input_type=Fixed(16, 6), softmax="none")
    with pytest.raises(QirError, match="softmax must be"):
        import_keras(JET / "qkeras_3layer.json", softmax="drop")


def test_fused_softmax_and_identity_layers(tmp_path):
    layers = [input_layer(3),
              dense_layer("qd", 3, cls="QDense", kernel_quantizer="quantized_bits(4,0,alpha=1)",
                          bias_quantizer="quantized_bits(4,0)", activation="softmax"),
              {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.5}},
              {"class_name": "Activation", "config": {"name": "lin", "activation": "linear"}}]
    path = write_model(tmp_path, "fs", layers, {"qd": {"kernel": W3, "bias": B3}})
    with pytest.raises(QirError, match="softmax none") as e:
        import_keras(path, input_type=Fixed(8, 4))
    assert "layer 'qd' (QDense)" in str(e.value)
    module = import_keras(path, input_type=Fixed(8, 4), softmax="none")
    ops = list(get_model(module).block.ops)
    assert [type(op) for op in ops] == [InputOp, DenseOp, type(ops[-1])] and layer_of(ops[1]) == "qd"
    x = np.array([[1, .5, -.25]])
    wq = np.clip(np.rint(W3.astype(np.float64) * 8), -8, 7) / 8
    bq = np.clip(np.rint(B3.astype(np.float64) * 8), -8, 7) / 8
    assert np.array_equal(evaluate_real(module, [x])[0][0], x @ wq + bq)


# ------------------------------------------------------------------------------ layers of unknown packages
V3 = DATA / "qkeras_v3_small"


def _rewrite_keras(src: Path, dst: Path, edit) -> Path:
    """Copy a .keras zip with its config.json passed through ``edit``."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    return dst


def _layers_of(cfg: dict) -> list[dict]:
    return cfg["config"]["layers"]


def _as_hgq(layer: dict) -> None:
    # what HGQ2 writes: its own QDense registered under its package, same class name as QKeras's
    layer["module"] = "hgq.layers.core.dense"
    layer["registered_name"] = "hgq>" + layer["class_name"].split(">")[-1]


def test_layer_of_unknown_package_is_refused_by_name_keras3(tmp_path):
    """Issue 14: an HGQ/HGQ2 layer (registered_name 'hgq>QDense') was read as the QKeras layer of the
    same class name with its quantizers dropped; it must be refused, naming the layer and package."""
    import_keras(V3 / "model.keras", softmax="none")  # the unmodified model imports

    def edit(cfg):
        _as_hgq(next(x for x in _layers_of(cfg) if x["class_name"] == "QDepthwiseConv2D"))

    bad = _rewrite_keras(V3 / "model.keras", tmp_path / "hgq.keras", edit)
    with pytest.raises(QirError, match=r"layer '[^']+' \(QDepthwiseConv2D\).*'hgq>QDepthwiseConv2D'.*package 'hgq'"):
        import_keras(bad, softmax="none")


@pytest.mark.parametrize("field, value", [
    ("module", "__main__"), ("module", "hgq.layers"), ("registered_name", "Custom>QDense"),
    ("class_name", "hgq>QDense"), ("module", ["keras"]),
])
def test_layer_of_unknown_package_is_refused_json(tmp_path, field, value):
    cfg = json.loads((JET / "qkeras_3layer.json").read_text())
    layer = next(x for x in _layers_of(cfg) if x["class_name"] == "QDense")
    layer[field] = value
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    shutil.copy(JET / "qkeras_3layer_weights.h5", tmp_path / "m_weights.h5")
    with pytest.raises(QirError, match=r"layer '[^']+' \(QDense\).*which qir does not implement"):
        import_keras(tmp_path / "m.json", weights=tmp_path / "m_weights.h5", input_type=Fixed(16, 6), softmax="none")


def test_known_packages_are_accepted(tmp_path):
    cfg = json.loads((JET / "qkeras_3layer.json").read_text())
    for layer in _layers_of(cfg):
        layer["module"] = "qkeras.qlayers" if layer["class_name"].startswith("Q") else "keras.layers"
        if layer["class_name"].startswith("Q"):
            layer["registered_name"] = "qkeras>" + layer["class_name"]
    (tmp_path / "qkeras_3layer.json").write_text(json.dumps(cfg))
    got = import_keras(tmp_path / "qkeras_3layer.json", weights=JET / "qkeras_3layer_weights.h5", input_type=Fixed(16, 6),
                       softmax="none")
    ref = import_keras(JET / "qkeras_3layer.json", input_type=Fixed(16, 6), softmax="none")
    assert print_module(got) == print_module(ref)


def test_layer_of_unknown_package_is_refused_h5(tmp_path):
    shutil.copy(V3 / "model.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        layer = next(x for x in _layers_of(cfg) if x["class_name"].endswith("QActivation"))
        layer["class_name"] = "hgq>QActivation"
        f.attrs["model_config"] = json.dumps(cfg)
    with pytest.raises(QirError, match=r"\(QActivation\).*package 'hgq'"):
        import_keras(tmp_path / "m.h5", softmax="none")


def test_quantizer_of_unknown_package_is_refused():
    with pytest.raises(QirError, match="quantizer 'hgq>quantized_bits' comes from package 'hgq'"):
        resolve_quantizer({"class_name": "hgq>quantized_bits", "config": {"bits": 4}})
    with pytest.raises(QirError, match="package 'hgq.quantizer'"):
        resolve_activation({"class_name": "quantized_relu", "module": "hgq.quantizer", "config": {"bits": 4}})
    # Keras 3 saves a plain function (QKeras's binary_tanh) with module 'builtins': resolved by its name
    assert resolve_activation({"class_name": "function", "module": "builtins", "registered_name": "function",
                               "config": "binary_tanh"}).steps()
    assert resolve_quantizer({"class_name": "quantized_bits", "module": "qkeras.quantizers",
                              "registered_name": "qkeras>quantized_bits", "config": {"bits": 4}}) is not None


def test_cli_refuses_unknown_package_in_one_line(tmp_path):
    import subprocess
    import sys

    bad = _rewrite_keras(V3 / "model.keras", tmp_path / "hgq.keras",
                         lambda cfg: _as_hgq(next(x for x in _layers_of(cfg) if x["class_name"] == "QActivation")))
    r = subprocess.run([str(Path(sys.executable).parent / "qir"), "compile", str(bad), "-o", str(tmp_path / "out"),
                        "--softmax", "none"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "package 'hgq'" in lines[0] and "hgq.keras" in lines[0], r.stderr
    assert not (tmp_path / "out").exists()
