"""--io stream: stream-level IR, interpreter equivalence, RTL at full rate and with stalls."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qir.lowering import STREAM_PIPELINE

from qir.fixed import Fixed
from qir.flow import run_passes
from qir.interp import evaluate
from qir.ir import get_model, parse_module

DATA = Path(__file__).parent / "data"
C2D = DATA / "keras_conv2d_model"

# A quantized CNN written as qir: a 2-D conv with stride 2 and same padding (pads 0,0,1,1),
# relu, a 3x3 conv with dilation 2 and groups 2, a 2x2 max pool, a 1-D-vector head.
CNN = """
qir.model @cnn {
  %0 = qir.input "x" : tensor<7x6x2x!qir.fixed<6,3>>
  %1 = qir.conv %0 weights(dense<[[[[1, -2, 3, 0], [2, 1, -1, 3]], [[0, 1, -3, 2], [-1, 2, 1, 1]]],
      [[[3, 0, 1, -2], [1, -1, 2, 0]], [[-2, 3, 0, 1], [1, 1, -1, -3]]]]> : tensor<2x2x2x4xi32> : !qir.fixed<4,2>)
      bias(dense<[1, -1, 0, 2]> : tensor<4xi32> : !qir.fixed<4,2>)
      strides [2, 2] dilations [1, 1] pads [0, 0, 1, 1] groups 1 {layer = "c1"} : tensor<7x6x2x!qir.fixed<6,3>> -> tensor<4x3x4x!qir.fixed<40,20>>
  %2 = qir.relu %1 {layer = "c1"} : tensor<4x3x4x!qir.fixed<40,20>>
  %3 = qir.quantize %2 rounding "rnd" overflow "sat" {layer = "q1"} : tensor<4x3x4x!qir.fixed<40,20>> -> tensor<4x3x4x!qir.ufixed<5,3>>
  %4 = qir.conv %3 weights(dense<[[[[1, -1], [2, 0]], [[0, 1], [-1, 1]], [[1, 1], [1, -1]]],
      [[[2, 1], [0, -1]], [[-1, 0], [1, 2]], [[0, 0], [1, 1]]],
      [[[1, 0], [0, 1]], [[-2, 1], [1, 0]], [[1, -1], [-1, 1]]]]> : tensor<3x3x2x2xi32> : !qir.fixed<3,2>)
      strides [1, 1] dilations [2, 1] pads [2, 1, 2, 1] groups 2 {layer = "c2"} : tensor<4x3x4x!qir.ufixed<5,3>> -> tensor<4x3x2x!qir.fixed<40,20>>
  %5 = qir.pool %4 kind "max" window [2, 2] strides [2, 2] pads [0, 0, 0, 1] {layer = "p"} : tensor<4x3x2x!qir.fixed<40,20>> -> tensor<2x2x2x!qir.fixed<40,20>>
  %6 = qir.reshape %5 {layer = "f"} : tensor<2x2x2x!qir.fixed<40,20>> -> tensor<8x!qir.fixed<40,20>>
  %7 = qir.dense %6 weights(dense<[[1, 2, -1], [0, 1, 1], [-2, 1, 0], [1, 1, 1], [3, -1, 0], [0, 0, 2], [1, -3, 1], [2, 2, -2]]> : tensor<8x3xi32> : !qir.fixed<4,2>) {layer = "d"} : tensor<8x!qir.fixed<40,20>> -> tensor<3x!qir.fixed<60,30>>
  qir.output %7 : tensor<3x!qir.fixed<60,30>>
}
"""

# Conv1D (length 9, 2 channels -> 3, kernel 3, same padding) then average pool 3, stride 3.
CNN1D = """
qir.model @cnn1d {
  %0 = qir.input "x" : tensor<9x2x!qir.fixed<8,4>>
  %1 = qir.conv %0 weights(dense<[[[1, -2, 3], [2, 1, -1]], [[0, 1, -3], [-1, 2, 1]], [[3, 0, 1], [1, -1, 2]]]> : tensor<3x2x3xi32> : !qir.fixed<4,2>)
      strides [1] dilations [1] pads [1, 1] groups 1 {layer = "c"} : tensor<9x2x!qir.fixed<8,4>> -> tensor<9x3x!qir.fixed<40,20>>
  %2 = qir.relu %1 {layer = "c"} : tensor<9x3x!qir.fixed<40,20>>
  %3 = qir.pool %2 kind "avg" window [2] strides [2] pads [0, 0] count "window" multiplier(dense<[1]> : tensor<1xi32> : !qir.ufixed<1,0>) {layer = "p"} : tensor<9x3x!qir.fixed<40,20>> -> tensor<4x3x!qir.fixed<42,21>>
  qir.output %3 : tensor<4x3x!qir.fixed<42,21>>
}
"""

# A binary (+-1 weights) conv with asymmetric same padding: the kernel becomes a ternary adder
# graph (zero padding makes the window three-valued, so not xnor).
BCONV = """
qir.model @bconv {
  %0 = qir.input "x" : tensor<6x6x2x!qir.fixed<2,2>>
  %1 = qir.conv %0 weights(dense<[[[[1, -1, 1], [-1, 1, 1]], [[1, 1, -1], [-1, -1, 1]]], [[[1, -1, -1], [1, 1, 1]], [[-1, 1, 1], [1, -1, -1]]]]> : tensor<2x2x2x3xi32> : !qir.fixed<2,2>) strides [1, 1] dilations [1, 1] pads [0, 0, 1, 1] groups 1 {layer = "bc"} : tensor<6x6x2x!qir.fixed<2,2>> -> tensor<6x6x3x!qir.fixed<40,20>>
  qir.output %1 : tensor<6x6x3x!qir.fixed<40,20>>
}
"""


def _net(text: str):
    """The IR with exact (inferred) types, as a frontend writes it."""
    net = parse_module(text)
    return run_passes(net, "qir-infer-widths")


def _lower(text: str):
    net = _net(text)
    low = net.clone()
    run_passes(low, STREAM_PIPELINE)
    return net, low


def _rand_inputs(model, n, seed=0):
    from qir.interp import input_types

    (_, t, shape), = input_types(model)
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min_int, t.max_int + 1, size=(n, *shape))
    x[0] = t.max_int
    x[1] = t.min_int
    return x


@pytest.mark.parametrize("text", [CNN, CNN1D, BCONV], ids=["cnn2d", "cnn1d", "binary"])
def test_stream_lowering_keeps_semantics(text):
    net, low = _lower(text)
    top = [o.name for o in get_model(low).block.ops]
    assert set(top) <= {"qir.input", "qir.window", "qir.map", "qir.collect", "qir.output"}
    x = _rand_inputs(get_model(net), 64)
    a = evaluate(get_model(net), [x]).outputs[0]
    b = evaluate(get_model(low), [x]).outputs[0]
    assert np.array_equal(a, b)


def test_stream_rejects_three_streams():
    text = RESIDUAL.replace("%3 = qir.add %0, %2 {", "%3 = qir.add %0, %2, %0 {").replace(
        "tensor<5x6x2x!qir.fixed<6,3>>, tensor<5x6x2x!qir.fixed<6,3>> -> tensor<5x6x2x!qir.fixed<7,4>>",
        "tensor<5x6x2x!qir.fixed<6,3>>, tensor<5x6x2x!qir.fixed<6,3>>, tensor<5x6x2x!qir.fixed<6,3>> -> "
        "tensor<5x6x2x!qir.fixed<8,5>>").replace("qir.output %3 : tensor<5x6x2x!qir.fixed<7,4>>",
                                                   "qir.output %3 : tensor<5x6x2x!qir.fixed<8,5>>")
    from qir.errors import QirError

    with pytest.raises(QirError, match="joins 3 streams"):
        _lower(text)


def test_stream_branches_of_one_value_stay_one_map():
    """add(x, relu(x)) and two dense heads of one vector re-joined: one map body each (no join)."""
    text = """
qir.model @j {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<6,3>>
  %1 = qir.relu %0 : tensor<4x4x1x!qir.fixed<6,3>>
  %2 = qir.add %0, %1 : tensor<4x4x1x!qir.fixed<6,3>>, tensor<4x4x1x!qir.fixed<6,3>> -> tensor<4x4x1x!qir.fixed<7,4>>
  qir.output %2 : tensor<4x4x1x!qir.fixed<7,4>>
}
"""
    net, low = _lower(text)
    assert [o.name for o in get_model(low).block.ops] == ["qir.input", "qir.map", "qir.output"]
    x = _rand_inputs(get_model(net), 16)
    assert np.array_equal(evaluate(get_model(net), [x]).outputs[0], evaluate(get_model(low), [x]).outputs[0])


def _compile_ir(text: str, out: Path, monkeypatch) -> dict:
    import qir.flow as pl

    net = _net(text)
    monkeypatch.setattr(pl, "import_model", lambda *a, **k: net)
    return pl.compile_model("model.json", out, io="stream")


@pytest.mark.sim
@pytest.mark.parametrize("text", [CNN, CNN1D, BCONV], ids=["cnn2d", "cnn1d", "binary"])
def test_stream_rtl_icarus_with_stalls(text, tmp_path, monkeypatch):
    from qir.sim.stream_bench import check_stream

    rep = _compile_ir(text, tmp_path / "d", monkeypatch)
    assert rep["io"] == "stream" and rep["ii_cycles"] > 0
    net = get_model(_net(text))
    x = _rand_inputs(net, 12)
    ref = evaluate(net, [x]).outputs[0]
    runs = check_stream(tmp_path / "d", x, ref, "icarus", seeds=(None, 1, 7))
    assert runs[0]["latency"] == rep["latency_cycles"] and runs[0]["ii"] == rep["ii_cycles"]
    assert runs[1]["cycles"] > runs[0]["cycles"]  # the stalls really stalled


@pytest.fixture(scope="module")
def conv2d_stream(tmp_path_factory):
    out = tmp_path_factory.mktemp("c2d") / "d"
    subprocess.run([sys.executable, "-m", "qir.cli", "compile", str(C2D / "KERAS_conv2d_model.json"), "-o", str(out),
                    "--precision", "fixed<18,8>", "--softmax", "none", "--input-type", "fixed<16,6>",
                    "--io", "stream"], check=True)
    return out


def test_conv2d_stream_report(conv2d_stream):
    rep = json.loads((conv2d_stream / "report.json").read_text())
    assert rep["io"] == "stream"
    ports = {p["name"]: p for p in rep["ports"]}
    assert {"in_ready", "out_ready"} <= set(ports)
    assert ports["in_data"]["width"] == 16 and ports["in_data"]["beats"] == 64
    assert ports["out_data"]["beats"] == 1 and ports["out_data"]["width"] == 180
    assert rep["memory_bits"] == 2 * 10 * 16  # two line-buffer rows of the padded width 10
    assert rep["ii_cycles"] == 100 and rep["fifo_depths"] == []


@pytest.mark.sim
def test_conv2d_stream_icarus(conv2d_stream, tmp_path):
    x = np.load(C2D / "vectors.npz")["x"][:20]
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([sys.executable, "-m", "qir.cli", "sim", str(conv2d_stream), "--inputs", str(tmp_path / "x.npy"),
                        "--simulator", "icarus"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "0 mismatches" in r.stdout


@pytest.mark.sim
@pytest.mark.slow
def test_conv2d_stream_verilator_all_vectors(conv2d_stream, tmp_path):
    x = np.load(C2D / "vectors.npz")["x"]
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([sys.executable, "-m", "qir.cli", "sim", str(conv2d_stream), "--inputs", str(tmp_path / "x.npy"),
                        "--simulator", "verilator"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.sim
@pytest.mark.slow
def test_conv2d_stream_lint_and_deterministic(conv2d_stream, tmp_path):
    from qir.sim.tools import find_verilator

    rep = json.loads((conv2d_stream / "report.json").read_text())
    v = conv2d_stream / rep["rtl"][0]
    r = subprocess.run([str(find_verilator().exe), "--lint-only", "-Wall", str(v), "--top-module", rep["top"]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out2 = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "qir.cli", "compile", str(C2D / "KERAS_conv2d_model.json"), "-o", str(out2),
                    "--precision", "fixed<18,8>", "--softmax", "none", "--input-type", "fixed<16,6>",
                    "--io", "stream"], check=True)
    assert (out2 / rep["rtl"][0]).read_bytes() == v.read_bytes()


def _qkeras_cnn(tmp_path: Path, kind: str) -> Path:
    """A QKeras CNN as JSON + h5: QConv2D (4-bit, same, relu) -> MaxPooling2D -> QConv2D with a
    ``kind`` kernel (binary / ternary / 4-bit) and stride 2 -> Flatten -> QDense head."""
    from test_frontend_keras_layers import node, write_functional

    rng = np.random.default_rng(11)
    q4 = "quantized_bits(4,0,alpha=1)"
    kq = {"binary": "binary(alpha=1)", "ternary": "ternary(alpha=1)", "q4": q4}[kind]
    layers = [
        node("QActivation", "qin", ["inp"], activation="quantized_bits(8,3,alpha=1)"),
        node("QConv2D", "c1", ["qin"], filters=4, kernel_size=[3, 3], strides=[1, 1], padding="same",
             dilation_rate=[1, 1], activation="quantized_relu(6,2)", use_bias=True, kernel_quantizer=q4,
             bias_quantizer=q4),
        node("MaxPooling2D", "mp", ["c1"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("QConv2D", "c2", ["mp"], filters=3, kernel_size=[3, 3], strides=[2, 2], padding="same",
             dilation_rate=[1, 1], activation="quantized_relu(6,2)", use_bias=False, kernel_quantizer=kq),
        node("Flatten", "fl", ["c2"]),
        node("QDense", "d", ["fl"], units=5, activation="linear", use_bias=True, kernel_quantizer=q4,
             bias_quantizer=q4),
    ]
    w = {"c1": {"kernel": rng.integers(-8, 8, (3, 3, 2, 4)) / 8, "bias": rng.integers(-8, 8, 4) / 8},
         "c2": {"kernel": rng.choice([-1.0, 0.0, 1.0], (3, 3, 4, 3)) if kind != "q4" else
                rng.integers(-8, 8, (3, 3, 4, 3)) / 8},
         "d": {"kernel": rng.integers(-8, 8, (12, 5)) / 8, "bias": rng.integers(-8, 8, 5) / 8}}
    if kind == "binary":
        w["c2"]["kernel"] = rng.choice([-1.0, 1.0], (3, 3, 4, 3))
    return write_functional(tmp_path, f"qcnn_{kind}", layers, w, ["d"], [8, 8, 2])


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["q4", "binary", "ternary"])
def test_qkeras_cnn_stream_icarus(kind, tmp_path):
    """QConv2D + max pool + (binary/ternary) strided QConv2D + QDense: bit-exact with stalls."""
    sys.path.insert(0, str(Path(__file__).parent))
    from qir.frontends.keras import import_keras
    from qir.sim.stream_bench import check_stream

    from qir.flow import compile_model

    path = _qkeras_cnn(tmp_path, kind)
    rep = compile_model(path, tmp_path / "d", io="stream")
    net = get_model(import_keras(path))
    x = _rand_inputs(net, 12, seed=3)
    ref = evaluate(net, [x]).outputs[0]
    runs = check_stream(tmp_path / "d", x, ref, "icarus", seeds=(None, 5))
    assert runs[0]["ii"] == rep["ii_cycles"] == 100  # the first window walks the 10x10 padded map


@pytest.mark.sim
def test_depthwise_avgpool_stream_icarus(tmp_path):
    """QDepthwiseConv2D (depth_multiplier 2, same padding, dilation 2) + AveragePooling2D (valid)
    + BatchNormalization-free Flatten/QDense, streamed; bit-exact with stalls."""
    sys.path.insert(0, str(Path(__file__).parent))
    from qir.frontends.keras import import_keras
    from qir.sim.stream_bench import check_stream
    from test_frontend_keras_layers import node, write_functional

    from qir.flow import compile_model

    rng = np.random.default_rng(2)
    q = "quantized_bits(4,0,alpha=1)"
    layers = [
        node("QActivation", "qin", ["inp"], activation="quantized_bits(6,2,alpha=1)"),
        node("QDepthwiseConv2D", "dw", ["qin"], kernel_size=[3, 3], strides=[1, 1], padding="same",
             dilation_rate=[2, 2], depth_multiplier=2, activation="quantized_relu(6,2)", use_bias=False,
             depthwise_quantizer=q),
        node("AveragePooling2D", "ap", ["dw"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("Flatten", "fl", ["ap"]),
        node("QDense", "d", ["fl"], units=3, activation="linear", use_bias=False, kernel_quantizer=q),
    ]
    w = {"dw": {"depthwise_kernel": rng.integers(-8, 8, (3, 3, 2, 2)) / 8},
         "d": {"kernel": rng.integers(-8, 8, (36, 3)) / 8}}
    path = write_functional(tmp_path, "dwnet", layers, w, ["d"], [6, 6, 2])
    rep = compile_model(path, tmp_path / "d", io="stream")
    net = get_model(import_keras(path))
    x = _rand_inputs(net, 10, seed=4)
    ref = evaluate(net, [x]).outputs[0]
    check_stream(tmp_path / "d", x, ref, "icarus", seeds=(None, 9))
    assert rep["memory_bits"] > 0


@pytest.mark.sim
def test_stream_rtl_deterministic_and_lint_clean(tmp_path, monkeypatch):
    from qir.sim.tools import find_verilator

    a = _compile_ir(CNN, tmp_path / "a", monkeypatch)
    _compile_ir(CNN, tmp_path / "sub" / "b", monkeypatch)
    va, vb = tmp_path / "a" / a["rtl"][0], tmp_path / "sub" / "b" / a["rtl"][0]
    assert va.read_bytes() == vb.read_bytes()
    r = subprocess.run([str(find_verilator().exe), "--lint-only", "-Wall", str(va), "--top-module", a["top"]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "linebuf" in va.read_text()  # the line buffer is one memory array (BRAM/LUTRAM in Yosys)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("folder, model", [("jettagger_conv2d_small", "jetTagger_Conv2D_Small.json"),
                                           ("keras_conv1d_small", "KERAS_conv1d_small.json")])
def test_shared_cnns_stream(folder, model, tmp_path):
    """jetTagger_Conv2D_Small (BatchNorm, strided same convs) and KERAS_conv1d_small with --io
    stream: qir sim (full rate: II and latency; seeded gaps/stalls) in Icarus on 20 vectors and
    in Verilator on all vectors of tests/data."""
    out = tmp_path / "d"
    subprocess.run([sys.executable, "-m", "qir.cli", "compile", str(DATA / folder / model), "-o", str(out),
                    "--precision", "fixed<18,8>", "--softmax", "none", "--input-type", "fixed<16,6>",
                    "--io", "stream"], check=True)
    x = np.load(DATA / folder / "vectors.npz")["x"]
    for sim, xs in (("icarus", x[:20]), ("verilator", x)):
        np.save(tmp_path / "x.npy", xs)
        r = subprocess.run([sys.executable, "-m", "qir.cli", "sim", str(out), "--inputs", str(tmp_path / "x.npy"),
                            "--simulator", sim], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "0 mismatches" in r.stdout


@pytest.mark.sim
def test_stream_cocotb_bench_icarus(tmp_path, monkeypatch):
    """The generated cocotb bench: full rate (beats + latency) and random gaps/stalls, Icarus."""
    rep = _compile_ir(CNN1D, tmp_path / "d", monkeypatch)
    tb = tmp_path / "d" / "tb"
    assert (tb / f"test_{rep['top']}.py").is_file()
    r = subprocess.run([sys.executable, str(tb / "run_cocotb.py"), "--simulator", "icarus"],
                       capture_output=True, text=True, cwd=tb)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 cocotb tests" in r.stdout


def _random_stream(seed: int, tmp_path: Path) -> str:
    """One random QKeras model of tests/random_models.py compiled with --io stream and checked
    against the interpreter in Icarus at full rate and with stalls; returns "ok" or "refused"."""
    sys.path.insert(0, str(Path(__file__).parent))
    import random_models as rm
    from qir.sim.stream_bench import check_stream

    from qir.errors import QirError
    from qir.flow import compile_model, import_model

    case = rm.generate(seed)
    js = rm.write_model(tmp_path, f"rand{seed}", case.input_shape, case.layers)
    t = Fixed.parse(case.input_type)
    opts = {"input_type": t, "softmax": "none"}
    if case.precision:
        from qir.precision import PrecisionConfig

        pc = tmp_path / "precision.json"
        pc.write_text(json.dumps({"layers": case.precision}, indent=1))
        opts["precision"] = PrecisionConfig.load(pc)
    styles = dict(case.dense_styles)

    def spec():
        layers = ";".join(f"{k}:{v}" for k, v in sorted(styles.items()))
        lay = f' layers="{layers}"' if layers else ""
        return (f"qir-infer-widths,qir-stream-conv,qir-stream-form,qir-lower-dense{{style=auto{lay}}},"
                f"qir-fold-threshold,qir-lower-cmvm,qir-pipeline{{{case.pipeline_opt}}}")

    net = import_model(js, **opts)
    try:
        while True:
            try:
                compile_model(js, tmp_path / "out", pipeline=spec(), io="stream", **opts)
                break
            except QirError as e:
                # an explicit xnor needs a provably two-valued input (the value-set analysis looks
                # through maps, windows and collects; a padded window adds its fill): as in
                # random_models.check, a clean refusal is checked again with style auto
                bad = [n for n, st in styles.items() if st == "xnor" and f"layer '{n}' cannot use style xnor" in str(e)]
                if not bad or "not provably two-valued" not in str(e):
                    raise
                styles[bad[0]] = "auto"
    except QirError as e:
        # add/concat of two streams (Add/Concatenate branches) are supported: never refused
        if "not supported" in str(e) and not any(lay.class_name in ("Add", "Concatenate") for lay in case.layers):
            return "refused"
        raise
    xm = rm.vectors(case, 10, seed)
    ref = evaluate(net, [xm]).outputs[0]
    check_stream(tmp_path / "out", xm, ref, "icarus", seeds=(None, seed + 1))
    return "ok"


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(0, 6))
def test_random_models_stream_icarus(seed, tmp_path):
    assert _random_stream(seed, tmp_path) == "ok"


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 40))
def test_random_models_stream_icarus_slow(seed, tmp_path):
    _random_stream(seed, tmp_path)


def test_stream_qir_report(tmp_path, monkeypatch):
    """qir report on a stream design: report.json validates (in_ready/out_ready, beat-wide data
    ports) and the estimate lists windows, the collect and memory bits."""
    from qir.report import format_report, report

    _compile_ir(CNN, tmp_path / "d", monkeypatch)
    r = report(tmp_path / "d")
    assert r["estimate"]["memory_bits"] > 0
    text = format_report(r)
    assert "memory bits (line buffers, FIFOs)" in text and "window" in text and "collect" in text


# A 2x2/2 max pool on 5x5: the last row and column feed no output, so the last image's final
# input beats are taken after its last output beat (the bench must still deliver them).
POOL_TAIL = """
qir.model @pooltail {
  %0 = qir.input "x" : tensor<5x5x1x!qir.fixed<6,3>>
  %1 = qir.pool %0 kind "max" window [2, 2] strides [2, 2] pads [0, 0, 0, 0] {layer = "p"} : tensor<5x5x1x!qir.fixed<6,3>> -> tensor<2x2x1x!qir.fixed<6,3>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<6,3>>
}
"""


@pytest.mark.sim
def test_stream_trailing_input_beats(tmp_path, monkeypatch):
    from qir.sim.stream_bench import check_stream

    rep = _compile_ir(POOL_TAIL, tmp_path / "d", monkeypatch)
    net = get_model(_net(POOL_TAIL))
    x = _rand_inputs(net, 5)
    runs = check_stream(tmp_path / "d", x, evaluate(net, [x]).outputs[0], "icarus", seeds=(None, 2))
    assert runs[0]["ii"] == rep["ii_cycles"] == 25


# ----------------------------------------------------------------- joins (add/concat of two streams)
def _qkeras_branches(tmp_path: Path, merge: str) -> Path:
    """A QKeras functional CNN on 6x7x2: QConv2D c0 (3x3 same) feeds two branches, a 1x1 QConv2D
    (Add) or a 5x5 one (Concatenate) and a 3x3 QConv2D (the late branch), merged by ``merge``,
    then a 2x2 max pool, Flatten and a QDense head."""
    from test_frontend_keras_layers import node, write_functional

    rng = np.random.default_rng(5)
    q4 = "quantized_bits(4,0,alpha=1)"
    conv = dict(strides=[1, 1], padding="same", dilation_rate=[1, 1], activation="quantized_relu(5,2)",
                use_bias=True, kernel_quantizer=q4, bias_quantizer=q4)
    ka = 1 if merge == "Add" else 5
    layers = [
        node("QActivation", "qin", ["inp"], activation="quantized_bits(6,2,alpha=1)"),
        node("QConv2D", "c0", ["qin"], filters=3, kernel_size=[3, 3], **conv),
        node("QConv2D", "ca", ["c0"], filters=3, kernel_size=[ka, ka], **conv),
        node("QConv2D", "cb", ["c0"], filters=3 if merge == "Add" else 2, kernel_size=[3, 3], **conv),
        node(merge, "mg", ["ca", "cb"], **({"axis": -1} if merge == "Concatenate" else {})),
        node("MaxPooling2D", "mp", ["mg"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("Flatten", "fl", ["mp"]),
        node("QDense", "d", ["fl"], units=4, activation="linear", use_bias=True, kernel_quantizer=q4,
             bias_quantizer=q4),
    ]
    cb = 3 if merge == "Add" else 2
    nfl = 3 * 3 * (3 + (cb if merge == "Concatenate" else 0))
    w = {"c0": {"kernel": rng.integers(-8, 8, (3, 3, 2, 3)) / 8, "bias": rng.integers(-8, 8, 3) / 8},
         "ca": {"kernel": rng.integers(-8, 8, (ka, ka, 3, 3)) / 8, "bias": rng.integers(-8, 8, 3) / 8},
         "cb": {"kernel": rng.integers(-8, 8, (3, 3, 3, cb)) / 8, "bias": rng.integers(-8, 8, cb) / 8},
         "d": {"kernel": rng.integers(-8, 8, (nfl, 4)) / 8, "bias": rng.integers(-8, 8, 4) / 8}}
    return write_functional(tmp_path, f"branch_{merge.lower()}", layers, w, ["d"], [6, 7, 2])


# residual: x + conv3x3(x); the identity branch reaches the join first
RESIDUAL = """
qir.model @res {
  %0 = qir.input "x" : tensor<5x6x2x!qir.fixed<6,3>>
  %1 = qir.conv %0 weights(dense<[[[[1, -2], [2, 1]], [[0, 1], [-1, 2]], [[3, 0], [1, -1]]], [[[1, 0], [0, 1]], [[-2, 1], [1, 0]], [[1, -1], [-1, 1]]], [[[2, 1], [0, -1]], [[-1, 0], [1, 2]], [[0, 0], [1, 1]]]]> : tensor<3x3x2x2xi32> : !qir.fixed<4,2>)
      strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c"} : tensor<5x6x2x!qir.fixed<6,3>> -> tensor<5x6x2x!qir.fixed<40,20>>
  %2 = qir.quantize %1 rounding "rnd" overflow "sat" {layer = "q"} : tensor<5x6x2x!qir.fixed<40,20>> -> tensor<5x6x2x!qir.fixed<6,3>>
  %3 = qir.add %0, %2 {layer = "add"} : tensor<5x6x2x!qir.fixed<6,3>>, tensor<5x6x2x!qir.fixed<6,3>> -> tensor<5x6x2x!qir.fixed<7,4>>
  qir.output %3 : tensor<5x6x2x!qir.fixed<7,4>>
}
"""


def test_residual_join_lowering_and_fifo_depth():
    """add of a stream and its 3x3-window branch: a qir.join, the same numbers; the identity
    branch gets a FIFO of min_depth W + 1 = 7 pixels (the conv's first output needs W + 2 input
    beats, the fork keeps the last); with min_depth no valid/ready pattern deadlocks the cycle
    model, one beat less deadlocks it even at full rate.  The built depth adds the slack that
    gives the II of an unbounded FIFO."""
    from qir.rtl.stream_top import generate_stream

    from qir.stream.cycles import simulate_dag

    net, low = _lower(RESIDUAL)
    assert "qir.join" in [o.name for o in get_model(low).block.ops]
    x = _rand_inputs(get_model(net), 32)
    assert np.array_equal(evaluate(get_model(net), [x]).outputs[0], evaluate(get_model(low), [x]).outputs[0])
    d = generate_stream(get_model(low))
    (f,) = d.stream["fifo_depths"]
    assert (f["input"], f["min_depth"]) == ("lhs", 7) and f["depth"] >= 7
    nodes, n_out, bi, bo = d.timing_nodes
    big = [(k, 100 if k == "fifo" else i, ins) for k, i, ins in nodes]
    assert simulate_dag(big, n_out, bi, bo, steady=True)[1] == d.stream["ii_cycles"]
    nodes, n_out, bi, bo = generate_stream(get_model(low), fifo_delta=0).timing_nodes
    for seed in range(4):
        rng = np.random.default_rng(seed)
        gaps, stalls = rng.random(4000) < 0.4, rng.random(4000) < 0.5
        simulate_dag(nodes, n_out, bi, bo, valid=lambda c, g=gaps: not g[c % 4000],
                     ready=lambda c, s=stalls: not s[c % 4000])
    nodes, n_out, bi, bo = generate_stream(get_model(low), fifo_delta=-1).timing_nodes
    assert [i for k, i, _ in nodes if k == "fifo"] == [6]
    with pytest.raises(RuntimeError, match="deadlock"):
        simulate_dag(nodes, n_out, bi, bo)


@pytest.mark.sim
def test_residual_join_icarus_with_stalls(tmp_path, monkeypatch):
    from qir.sim.stream_bench import check_stream

    rep = _compile_ir(RESIDUAL, tmp_path / "d", monkeypatch)
    assert [f["min_depth"] for f in rep["fifo_depths"]] == [7]
    net = get_model(_net(RESIDUAL))
    x = _rand_inputs(net, 12)
    ref = evaluate(net, [x]).outputs[0]
    runs = check_stream(tmp_path / "d", x, ref, "icarus", seeds=(None, 1, 7))
    assert runs[0]["latency"] == rep["latency_cycles"] and runs[0]["ii"] == rep["ii_cycles"]
    assert runs[1]["cycles"] > runs[0]["cycles"]


@pytest.mark.sim
@pytest.mark.parametrize("merge", ["Add", "Concatenate"])
def test_qkeras_branches_stream_icarus(merge, tmp_path):
    """Two QConv2D branches (1x1 or 5x5 vs 3x3 windows) merged by Add / Concatenate: a fork, a
    FIFO of the computed depth on the branch that is early, bit-exact at full rate and with
    stalls, measured II and latency = report.json, lint-clean."""
    sys.path.insert(0, str(Path(__file__).parent))
    from qir.frontends.keras import import_keras
    from qir.sim.stream_bench import check_stream
    from qir.sim.tools import find_verilator

    from qir.flow import compile_model

    path = _qkeras_branches(tmp_path, merge)
    rep = compile_model(path, tmp_path / "d", io="stream")
    assert len(rep["fifo_depths"]) == 1
    net = get_model(import_keras(path))
    x = _rand_inputs(net, 10, seed=4)
    ref = evaluate(net, [x]).outputs[0]
    runs = check_stream(tmp_path / "d", x, ref, "icarus", seeds=(None, 3))
    assert runs[0]["latency"] == rep["latency_cycles"] and runs[0]["ii"] == rep["ii_cycles"]
    v = tmp_path / "d" / "rtl" / f"{rep['top']}.v"
    r = subprocess.run([str(find_verilator().exe), "--lint-only", "-Wall", str(v), "--top-module", rep["top"]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from qir.report import format_report, report

    r = report(tmp_path / "d")
    text = format_report(r)
    assert "fork" in text and "fifo, " in text and r["estimate"]["memory_bits"] > 0
    # the cycle model: min_depth survives random valid/ready patterns; for Add (a 1x1 window branch:
    # one guaranteed register) one beat less deadlocks.  With a pipelined map between the fork and
    # the join (the 5x5 branch) min_depth counts one register per stage, so it may be above the
    # least depth some patterns need (safe, not necessarily tight).
    from qir.rtl.stream_top import generate_stream

    from qir.stream.cycles import simulate_dag

    low = import_keras(path)
    run_passes(low, STREAM_PIPELINE)
    nodes, n_out, bi, bo = generate_stream(get_model(low), fifo_delta=0, convert=False).timing_nodes
    for seed in range(3):
        rng = np.random.default_rng(seed)
        gaps, stalls = rng.random(3000) < 0.3, rng.random(3000) < 0.6
        simulate_dag(nodes, n_out, bi, bo, valid=lambda c, g=gaps: not g[c % 3000],
                     ready=lambda c, s=stalls: not s[c % 3000])
    if merge == "Add":
        nodes, n_out, bi, bo = generate_stream(get_model(low), fifo_delta=-1, convert=False).timing_nodes
        with pytest.raises(RuntimeError, match="deadlock"):
            simulate_dag(nodes, n_out, bi, bo)


@pytest.mark.sim
def test_residual_min_depth_rtl_icarus(tmp_path, monkeypatch):
    """The RTL with FIFOs of exactly min_depth is bit-exact under random gaps and stalls; with one
    beat less it deadlocks in Icarus (input beats stop, no output within the bench's timeout)."""
    from qir.rtl.stream_top import generate_stream
    from qir.sim.stream_bench import check_stream, simulate_stream

    from qir.errors import QirError

    net = get_model(_net(RESIDUAL))
    low = _lower(RESIDUAL)[1]
    x = _rand_inputs(net, 8)
    ref = evaluate(net, [x]).outputs[0]
    for delta in (0, -1):
        d = tmp_path / f"d{delta}"
        rep = _compile_ir(RESIDUAL, d, monkeypatch)
        design = generate_stream(get_model(low), top=rep["top"], fifo_delta=delta)
        assert [f["depth"] for f in design.stream["fifo_depths"]] == [7 + delta]
        (d / "rtl" / f"{rep['top']}.v").write_text(design.files[f"{rep['top']}.v"])
        if delta == 0:
            check_stream(d, x, ref, "icarus", seeds=(1, 7, 11))
        else:
            with pytest.raises(QirError, match="output beats came out"):
                simulate_stream(d, x, "icarus", None)


@pytest.mark.sim
def test_stream_sim_of_a_relative_output_dir(tmp_path, monkeypatch):
    """Regression: `qir sim d` with a relative folder ran the stream bench's Icarus/Verilator builds
    and runs inside temporary folders, where the relative source and run paths did not resolve
    (Icarus: "Unable to find the root module"; Verilator: "Can't write file")."""
    from qir.sim.stream_bench import check_stream

    _compile_ir(CNN1D, tmp_path / "d", monkeypatch)
    monkeypatch.chdir(tmp_path)
    net = get_model(_net(CNN1D))
    x = _rand_inputs(net, 4)
    runs = check_stream(Path("d"), x, evaluate(net, [x]).outputs[0], "icarus", seeds=(None,))
    assert runs[0]["cycles"] > 0
