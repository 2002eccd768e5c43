"""The Python API (qir.convert / Design), qir config, qir profile, --quantize-inputs and
qir compile on .mlir files.  Keras-free: the live Keras model tests are in test_api_heavy.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import qir
from qir.cli import main as qir_main
from qir.errors import QirError
from qir.fixed import Fixed
from qir.input_quant import quantize_inputs

DATA = Path(__file__).parent / "data"
K3 = DATA / "keras_3layer" / "KERAS_3layer.json"
K3_OPTS = ["--input-type", "fixed<16,6>", "--softmax", "none"]
#: multipliers instead of adder graphs: the 16-bit float KERAS_3layer compiles in seconds (the
#: default adder-graph pipeline takes minutes on a loaded machine)
MAC = "qir-infer-widths,qir-lower-dense{style=mac},qir-pipeline"
RNG = np.random.default_rng(15)


def run_cli(*args) -> tuple[int, str, str]:
    r = subprocess.run([sys.executable, "-m", "qir.cli", *map(str, args)], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


# ------------------------------------------------------------------------------ import qir stays light
def test_import_qir_is_lazy():
    code = ("import sys, qir; assert qir.convert.__module__ == 'qir.api'; "
            "bad = [m for m in ('amaranth', 'keras', 'tensorflow', 'xdsl', 'onnx', 'matplotlib') if m in sys.modules]; "
            "print(bad)")
    # the attribute access above imports qir.api (numpy, qir.precision) but no heavy package
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    r = subprocess.run([sys.executable, "-c", "import sys, qir; print(sorted(m for m in sys.modules if m.startswith('qir')))"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "['qir']"


# ------------------------------------------------------------------------------ input quantization
def test_quantize_inputs_rounds_half_even_and_saturates():
    t = Fixed(4, 2)  # step 0.25, range [-2, 1.75]
    x = np.array([0.125, 0.375, -0.125, -0.375, 0.1, 1.8, 5.0, -2.2, -2.0, 1.75])
    m, st = quantize_inputs(x, t)
    assert m.tolist() == [0, 2, 0, -2, 0, 7, 7, -8, -8, 7]  # ties to even: 0.5 -> 0, 1.5 -> 2
    assert (st.count, st.rounded, st.saturated) == (10, 7, 2)  # 5.0 and -2.2
    u = Fixed(3, 1, signed=False)
    m, st = quantize_inputs(np.array([-0.3, 0.2, 1.0]), u)
    assert m.tolist() == [0, 1, 4] and st.saturated == 1
    with pytest.raises(QirError, match="NaN"):
        quantize_inputs(np.array([np.nan]), t)


# ------------------------------------------------------------------------------ the Design on a file
@pytest.fixture(scope="module")
def k3():
    return qir.convert(K3, precision="fixed<16,6>", input_type="fixed<16,6>", softmax="none")


def test_convert_file_predict_trace_float_data(k3):
    v = np.load(DATA / "keras_3layer" / "vectors.npz")
    x = v["x"][:50]
    assert np.array_equal(k3.predict(x, quantize=False), k3.predict(x))  # on-grid data is unchanged
    noisy = x + RNG.uniform(-2 ** -12, 2 ** -12, x.shape)  # less than half a step off the grid
    y_noisy = k3.predict(noisy)
    assert k3.last_quantization.rounded == x.size and k3.last_quantization.saturated == 0
    assert np.array_equal(y_noisy, k3.predict(x))
    with pytest.raises(QirError, match="not on the grid"):
        k3.predict(noisy, quantize=False)
    tr = k3.trace(x)
    assert list(tr) == k3.layers == ["input_1", "fc1_relu", "fc2_relu", "fc3_relu", "output_softmax"]
    assert np.array_equal(tr["output_softmax"], k3.predict(x))
    with pytest.raises(QirError, match=r"expects shape \(N, 16\)"):
        k3.predict(x[:, :8])


def test_compare_against_reference_arrays(k3):
    v = np.load(DATA / "keras_3layer" / "vectors.npz")
    x = v["x"][:200]
    ref = {n: v[f"layer_{n}"][:200] for n in ("fc1_relu", "fc2_relu", "fc3_relu", "output_softmax")}
    c = k3.compare(ref, x)
    assert [r.layer for r in c.rows] == list(ref)
    assert 0 < c["fc1_relu"].max_abs_error < 0.05  # fixed<16,6> against float Keras
    perfect = k3.compare(k3.trace(x), x)
    assert perfect.exact and all(r.exact_fraction == 1.0 for r in perfect.rows)
    assert "100.00%" in str(perfect)
    with pytest.raises(QirError, match="no layer"):
        k3.compare({"nope": x}, x)


@pytest.fixture(scope="module")
def k3_built(tmp_path_factory, k3):
    out = tmp_path_factory.mktemp("k3") / "out"
    return out, k3.compile(out, pipeline=MAC)


def test_compile_live_object_paths(tmp_path, k3, k3_built):
    """compile_model accepts an imported module (and, in test_api_heavy, a live keras.Model)
    instead of failing with a raw TypeError; a non-model object is one clear error."""
    from qir.flow import compile_model

    out, rep = k3_built
    assert (out / "rtl" / f"{rep['top']}.v").is_file()
    assert rep["model"].startswith("<ModuleOp")
    with pytest.raises(QirError, match="cannot convert a builtins.int"):
        compile_model(42, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert k3.report()["estimate"]["multipliers"] > 0


def test_config_errors_name_file_and_entry(tmp_path):
    cfg = {"default": {"weight": "fixed<16,6>", "bias": "fixed<16,6>", "result": "fixed<16,6>"},
           "layers": {"fc1_relu": {"result": "fixed<12,4>"}}}
    d = qir.convert(K3, cfg, input_type="fixed<16,6>", softmax="none")
    assert d.layer_types()["fc1_relu"] == Fixed(12, 4)
    bad = json.loads(json.dumps(cfg))
    bad["layers"]["fc1_rleu"] = bad["layers"].pop("fc1_relu")
    with pytest.raises(QirError, match=r"<config>: layers: 'fc1_rleu': .*did you mean 'fc1_relu'"):
        qir.convert(K3, bad, input_type="fixed<16,6>", softmax="none")
    for entry, msg in (({"weigth": "fixed<8,1>"}, r"layers: 'fc1_relu': unknown key 'weigth'"),
                       ({"weight": "fixed<8>"}, r"layers: 'fc1_relu': weight: cannot parse"),
                       ({"weight": 8}, r"layers: 'fc1_relu': weight: 8 is not a type"),
                       ({"style": "fast"}, r"layers: 'fc1_relu': style 'fast'")):
        f = tmp_path / "c.json"
        f.write_text(json.dumps({"layers": {"fc1_relu": entry}}))
        with pytest.raises(QirError, match=f"^{f}: " + msg):
            qir.PrecisionConfig.load(f)
    f.write_text(json.dumps({"default": {}, "layer": {}}))
    with pytest.raises(QirError, match="unknown key.*'layer'"):
        qir.PrecisionConfig.load(f)


# ------------------------------------------------------------------------------ qir config round trip
def test_cli_config_round_trip_and_misspelled_layer(tmp_path):
    cfg = tmp_path / "k3.json"
    assert qir_main(["config", str(K3), "-o", str(cfg), *K3_OPTS]) == 0
    tmpl = json.loads(cfg.read_text())
    assert list(tmpl["layers"]) == ["fc1_relu", "fc2_relu", "fc3_relu", "output_softmax"]
    assert tmpl["layers"]["fc2_relu"] == {"weight": "fixed<16,6>", "bias": "fixed<16,6>", "result": "fixed<16,6>",
                                          "reuse": None}
    assert qir_main(["compile", str(K3), "-o", str(tmp_path / "a"), "--pipeline", MAC, *K3_OPTS,
                     "--precision-config", str(cfg)]) == 0
    assert qir_main(["import", str(K3), "-o", str(tmp_path / "b.mlir"), *K3_OPTS, "--precision", "fixed<16,6>"]) == 0
    assert (tmp_path / "a" / "net.mlir").read_text() == (tmp_path / "b.mlir").read_text()
    # an edit takes effect
    tmpl["layers"]["fc2_relu"]["result"] = "fixed<10,5>"
    cfg.write_text(json.dumps(tmpl))
    assert qir_main(["import", str(K3), "-o", str(tmp_path / "c.mlir"), *K3_OPTS, "--precision-config", str(cfg)]) == 0
    assert "tensor<32x!qir.fixed<10,5>>" in (tmp_path / "c.mlir").read_text()
    # a misspelled layer: one error line naming the file and the entry, exit 1, no output directory
    tmpl["layers"]["fc2_rleu"] = tmpl["layers"].pop("fc2_relu")
    cfg.write_text(json.dumps(tmpl))
    rc, out, err = run_cli("compile", K3, "-o", tmp_path / "d", *K3_OPTS, "--precision-config", cfg)
    assert rc == 1 and not (tmp_path / "d").exists()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"qir: error: {cfg}: layers: 'fc2_rleu': the model has no layer of that name; "
                          "did you mean 'fc2_relu'?")


def test_cli_config_yaml_and_quantized_model(tmp_path):
    cfg = tmp_path / "q3.yaml"
    q3 = DATA / "qkeras_3layer" / "qkeras_3layer.json"
    rc, out, err = run_cli("config", q3, "-o", cfg, *K3_OPTS)
    assert rc == 0, err
    import yaml

    tmpl = yaml.safe_load(cfg.read_text())
    assert tmpl == {"default": {}, "layers": {n: {"reuse": None} if n.startswith(("fc", "out")) else {}
                                              for n in ("fc1", "relu1", "fc2", "relu2", "fc3", "relu3", "output")}}
    assert "relu1                    ufixed<6,0>" in out  # the quantizers' types are printed
    assert qir_main(["compile", str(q3), "-o", str(tmp_path / "q"), "--pipeline", MAC, *K3_OPTS,
                     "--precision-config", str(cfg)]) == 0


# ------------------------------------------------------------------------------ profiling
def _png_ok(p: Path) -> bool:
    data = p.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 5000


def test_cli_profile_writes_plots_and_table(tmp_path):
    x = np.load(DATA / "keras_3layer" / "vectors.npz")["x"][:300] * 4  # scaled up: some overflow
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "prof"
    rc, stdout, err = run_cli("profile", K3, "--inputs", tmp_path / "x.npy", "-o", out, *K3_OPTS,
                              "--precision", "fixed<16,6>", "--format", "png,svg")
    assert rc == 0, err
    layers = ["input_1", "fc1_relu", "fc2_relu", "fc3_relu", "output_softmax"]
    for name in layers:
        assert _png_ok(out / f"{name}.png"), name
        svg = (out / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
        assert len(svg) > 10000
        import xml.etree.ElementTree as ET

        ET.fromstring(svg.encode())  # well-formed
    rows = json.loads((out / "profile.json").read_text())["layers"]
    acts = {r["layer"]: r for r in rows if r["kind"] == "activation"}
    assert list(acts) == layers
    # the overflow counts are the reference's own: values of the exact pre-cast sum out of range
    d = qir.convert(K3, precision="fixed<16,6>", input_type="fixed<16,6>", softmax="none")
    from qir.dialect import QuantizeOp
    from qir.interp import evaluate

    ev = evaluate(d.model, [d.quantize(x)])
    q = [op for op in d.model.block.ops if isinstance(op, QuantizeOp)][0]
    from qir.dialect import elem

    before = elem(q.input.type).to_real(ev.values[q.input])
    expect = int(np.count_nonzero((before < -32) | (before > 32 - 2 ** -10)))
    assert acts["fc1_relu"]["overflow"] == expect > 0
    assert {r["kind"] for r in rows if r["layer"] == "fc1_relu"} == {"activation", "weight", "bias"}
    csv_text = (out / "profile.csv").read_text().splitlines()
    assert csv_text[0].startswith("layer,kind,type,count,min,max") and len(csv_text) == len(rows) + 1
    assert "total activation overflows" in (out / "profile.txt").read_text()
    assert "fc1_relu" in stdout


def test_profile_without_matplotlib(tmp_path, k3, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    x = np.load(DATA / "keras_3layer" / "vectors.npz")["x"][:20]
    prof = k3.profile(x, tmp_path / "p")
    assert prof.plots == [] and "matplotlib is not installed" in str(prof)
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["profile.csv", "profile.json", "profile.txt"]


# ------------------------------------------------------------------------------ --quantize-inputs, .mlir
def test_cli_eval_quantize_inputs(tmp_path):
    net = tmp_path / "net.mlir"
    assert qir_main(["import", str(K3), "-o", str(net), *K3_OPTS, "--precision", "fixed<16,6>"]) == 0
    x = RNG.normal(size=(30, 16)) * 20
    x[0, 0] = 1e6  # saturates
    np.save(tmp_path / "x.npy", x)
    rc, _, err = run_cli("eval", net, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert rc == 1 and "--quantize-inputs" in err
    rc, _, err = run_cli("eval", net, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--quantize-inputs")
    assert rc == 0, err
    assert "480 values to fixed<16,6>" in err and "saturated" in err
    t = Fixed(16, 6)
    grid = t.to_real(quantize_inputs(x, t)[0])
    d = qir.convert(net)
    assert np.array_equal(np.load(tmp_path / "y.npy"), d.predict(grid, quantize=False))
    rc, out, _ = run_cli("sim", "--help")
    assert "ties to even" in " ".join(out.split())


@pytest.mark.sim
def test_cli_sim_quantize_inputs_and_compile_lowered_mlir(tmp_path):
    """qir compile on a qir-opt output (lowered with mac), then qir sim --quantize-inputs."""
    net = tmp_path / "net.mlir"
    assert qir_main(["import", str(K3), "-o", str(net), *K3_OPTS, "--precision", "fixed<16,6>"]) == 0
    lowered = tmp_path / "mac.mlir"
    r = subprocess.run([str(Path(sys.executable).parent / "qir-opt"), str(net), "-p",
                        "qir-infer-widths,qir-lower-dense{style=mac},qir-pipeline", "-o", str(lowered)],
                       capture_output=True, text=True)
    if r.returncode != 0:  # qir-opt without -o: stdout
        r = subprocess.run([str(Path(sys.executable).parent / "qir-opt"), str(net), "-p",
                            "qir-infer-widths,qir-lower-dense{style=mac},qir-pipeline"], capture_output=True,
                           text=True)
        lowered.write_text(r.stdout)
    assert qir_main(["compile", str(lowered), "-o", str(tmp_path / "out")]) == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["pipeline"] == "" and rep["model"] == "mac.mlir"
    x = RNG.normal(size=(12, 16)) * 3
    np.save(tmp_path / "x.npy", x)
    rc, out, err = run_cli("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--simulator", "icarus",
                           "--quantize-inputs", "-o", tmp_path / "y.npy")
    assert rc == 0, err
    assert "0 mismatches" in out
    d = qir.convert(net)
    assert np.array_equal(np.load(tmp_path / "y.npy"), d.predict(x))


def test_cli_compile_layer_level_mlir(tmp_path, k3_built):
    out, _ = k3_built
    assert qir_main(["compile", str(out / "net.mlir"), "-o", str(tmp_path / "b"), "--pipeline", MAC]) == 0
    assert (out / "rtl" / "KERAS_3layer.v").read_bytes() == (tmp_path / "b" / "rtl" / "KERAS_3layer.v").read_bytes()
    rc, _, err = run_cli("compile", out / "net.mlir", "-o", tmp_path / "c", "--input-type", "fixed<8,3>")
    assert rc == 1 and "--input-type applies to model files" in err and not (tmp_path / "c").exists()


# ------------------------------------------------------------------------------ ONNX ModelProto in memory
def _qdq_proto() -> onnx.ModelProto:
    """x -> QDQ int8 (scale 2^-4) -> MatMul W1 (int8, 2^-5) + bias -> Relu -> QDQ uint8 (2^-3) ->
    Gemm W2 (2^-4) -> y."""
    rng = np.random.default_rng(3)
    nodes, inits = [], []

    def c(name, arr, dtype=None):
        arr = np.asarray(arr)
        arr = arr.astype(helper.tensor_dtype_to_np_dtype(dtype)) if dtype else arr.astype(np.float32)
        inits.append(numpy_helper.from_array(arr, name))

    def qdq(name, x, e, dtype):
        c(f"{name}_s", np.float32(2.0 ** e)), c(f"{name}_z", 0, dtype)
        nodes.extend([helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_z"], [f"{name}_q"], name=f"q_{name}"),
                      helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [name],
                                       name=f"dq_{name}")])

    qdq("xq", "x", -4, T.INT8)
    c("w1_i", rng.integers(-127, 128, (10, 8)), T.INT8), c("w1_s", np.float32(2 ** -5)), c("w1_z", 0, T.INT8)
    c("b1_i", rng.integers(-300, 300, 8), T.INT32), c("b1_s", np.float32(2 ** -9))
    c("w2_i", rng.integers(-127, 128, (3, 8)), T.INT8), c("w2_s", np.float32(2 ** -4)), c("w2_z", 0, T.INT8)
    nodes += [helper.make_node("DequantizeLinear", ["w1_i", "w1_s", "w1_z"], ["w1"], name="dq_w1"),
              helper.make_node("DequantizeLinear", ["b1_i", "b1_s"], ["b1"], name="dq_b1"),
              helper.make_node("MatMul", ["xq", "w1"], ["mm1"], name="fc1"),
              helper.make_node("Add", ["mm1", "b1"], ["fc1_out"], name="fc1_bias"),
              helper.make_node("Relu", ["fc1_out"], ["relu1"], name="relu1")]
    qdq("a1", "relu1", -3, T.UINT8)
    nodes += [helper.make_node("DequantizeLinear", ["w2_i", "w2_s", "w2_z"], ["w2"], name="dq_w2"),
              helper.make_node("Gemm", ["a1", "w2"], ["y"], name="fc2", transB=1)]
    g = helper.make_graph(nodes, "qdq_mem", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 10])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["N", 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    onnx.checker.check_model(m)
    return m


def test_onnx_model_proto_in_memory(tmp_path):
    import onnxruntime as ort

    proto = _qdq_proto()
    d = qir.convert(proto)
    assert d.input_type == Fixed(8, 4)
    x = RNG.normal(size=(256, 10)) * 3  # float data, off the grid and partly out of range
    y = d.predict(x)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {"x": x.astype(np.float32)})  # ONNX's own QuantizeLinear on the raw data
    assert d.last_quantization.saturated > 0
    assert np.array_equal(y, ref)
    c = d.compare(proto, x)
    assert c.exact, str(c)
    assert len(c.rows) >= 3 and c.rows[-1].exact_fraction == 1.0
    assert not list(tmp_path.iterdir())  # nothing written
    # external data cannot be resolved in memory: one clear error
    ext = onnx.ModelProto()
    ext.CopyFrom(proto)
    onnx.external_data_helper.convert_model_to_external_data(ext, size_threshold=0, location="w.bin")
    with pytest.raises(QirError, match="external data"):
        qir.convert(ext)
