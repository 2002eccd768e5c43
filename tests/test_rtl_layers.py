"""Layer-level ops (conv, pool, scale, leaky_relu, add, concat, reshape, transpose, pad, lut)
through the default lowering pipeline and RTL, bit for bit against the reference interpreter on
the *unlowered* IR, in Icarus (and Verilator for the slow tests), corner inputs included."""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qir.lowering import DEFAULT_PIPELINE
from qir.rtl import generate
from test_rtl import _verilator_bin, check_bit_exact

from qir.dialect import elem, shape_of
from qir.errors import QirError
from qir.flow import run_passes
from qir.interp import evaluate
from qir.ir import get_model, parse_module, verify

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
CONV1D = HERE / "data" / "keras_conv1d_small"
CONV1D_OPTS = ("--precision", "fixed<18,8>", "--input-type", "fixed<16,6>", "--softmax", "none")


def _vectors(model, rng, n_random=40):
    """Per input: every element at min, at max, alternating min/max, then random values."""
    out = []
    for op in model.inputs():
        t, shape = elem(op.result.type), shape_of(op.result.type)
        size = int(np.prod(shape))
        alt = np.where(np.arange(size) % 2, t.max_int, t.min_int)
        rows = [np.full(size, t.min_int), np.full(size, t.max_int), alt, t.max_int + t.min_int - alt,
                np.zeros(size, np.int64)]
        rows += list(rng.integers(t.min_int, t.max_int + 1, size=(n_random, size)))
        out.append(np.array(rows, dtype=np.int64).reshape((-1,) + shape))
    return out


def compile_ir(text: str, pipeline: str = DEFAULT_PIPELINE, infer: bool = True):
    """(reference model, lowered model, design) for layer-level IR ``text``; the reference is the
    layer-level IR with exact (inferred) result types, as the default pipeline's first pass gives."""
    ref_module = parse_module(text)
    if infer:
        run_passes(ref_module, "qir-infer-widths")
    ref = get_model(ref_module)
    lowered = parse_module(text)
    run_passes(lowered, pipeline)
    verify(lowered)
    model = get_model(lowered)
    return ref, model, generate(model)


#: compile_ir memoised (designs and models are only read by the tests that share them)
compiled = functools.lru_cache(maxsize=None)(compile_ir)


def _lint(design, tmp: Path):
    vbin = _verilator_bin()
    if vbin is None:
        pytest.skip("verilator not installed")
    for name, text in design.files.items():
        (tmp / name).write_text(text)
    r = subprocess.run([str(vbin / "verilator"), "--lint-only", "-Wall", "--top-module", design.top, *design.files],
                       cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------------- per op IR
CASES = {
    "reshape_transpose_pad": """
qir.model @layout {
  %0 = qir.input "x" : tensor<3x4x!qir.fixed<6,2>>
  %1 = qir.transpose %0 perm [1, 0] {layer = "t"} : tensor<3x4x!qir.fixed<6,2>> -> tensor<4x3x!qir.fixed<6,2>>
  %2 = qir.pad %1 pads [1, 0, 2, 1] {layer = "p"} : tensor<4x3x!qir.fixed<6,2>> -> tensor<7x4x!qir.fixed<6,2>>
  %3 = qir.reshape %2 {layer = "r"} : tensor<7x4x!qir.fixed<6,2>> -> tensor<28x!qir.fixed<6,2>>
  qir.output %3 : tensor<28x!qir.fixed<6,2>>
}""",
    "concat_mixed_types": """
qir.model @cat {
  %0 = qir.input "a" : tensor<2x3x!qir.fixed<6,2>>
  %1 = qir.input "b" : tensor<2x2x!qir.ufixed<5,4>>
  %2 = qir.input "c" : tensor<1x3x!qir.fixed<4,4>>
  %3 = qir.concat %0, %1 axis 1 {layer = "c1"} : tensor<2x3x!qir.fixed<6,2>>, tensor<2x2x!qir.ufixed<5,4>> -> tensor<2x5x!qir.fixed<10,5>>
  %4 = qir.transpose %2 perm [1, 0] {layer = "t"} : tensor<1x3x!qir.fixed<4,4>> -> tensor<3x1x!qir.fixed<4,4>>
  %5 = qir.reshape %3 {layer = "r"} : tensor<2x5x!qir.fixed<10,5>> -> tensor<10x1x!qir.fixed<10,5>>
  %6 = qir.concat %5, %4 axis 0 {layer = "c2"} : tensor<10x1x!qir.fixed<10,5>>, tensor<3x1x!qir.fixed<4,4>> -> tensor<13x1x!qir.fixed<10,5>>
  qir.output %6 : tensor<13x1x!qir.fixed<10,5>>
}""",
    "scale": """
qir.model @scale {
  %0 = qir.input "x" : tensor<2x3x!qir.fixed<8,3>>
  %1 = qir.scale %0 scale(dense<[5, -4, 0]> : tensor<3xi32> : !qir.fixed<6,2>) bias(dense<[3, -7, 1]> : tensor<3xi32> : !qir.fixed<6,-1>) {layer = "bn"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<2x3x!qir.fixed<24,10>>
  %2 = qir.scale %1 scale(dense<-3> : tensor<1xi32> : !qir.fixed<4,4>) {layer = "mul"} : tensor<2x3x!qir.fixed<24,10>> -> tensor<2x3x!qir.fixed<30,14>>
  %3 = qir.scale %0 bias(dense<[1, 2, -3]> : tensor<3xi32> : !qir.fixed<8,1>) {layer = "shift"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<2x3x!qir.fixed<16,4>>
  qir.output %2, %3 : tensor<2x3x!qir.fixed<30,14>>, tensor<2x3x!qir.fixed<16,4>>
}""",
    "leaky_relu": """
qir.model @leaky {
  %0 = qir.input "x" : tensor<4x2x!qir.fixed<7,3>>
  %1 = qir.leaky_relu %0 alpha(dense<[3, -5]> : tensor<2xi32> : !qir.fixed<5,1>) {layer = "lr"} : tensor<4x2x!qir.fixed<7,3>> -> tensor<4x2x!qir.fixed<16,6>>
  %2 = qir.leaky_relu %0 alpha(dense<1> : tensor<1xi32> : !qir.fixed<4,-2>) {layer = "lr_po2"} : tensor<4x2x!qir.fixed<7,3>> -> tensor<4x2x!qir.fixed<16,6>>
  %3 = qir.leaky_relu %0 alpha(dense<3> : tensor<1xi32> : !qir.fixed<4,4>) {layer = "lr_int"} : tensor<4x2x!qir.fixed<7,3>> -> tensor<4x2x!qir.fixed<16,8>>
  qir.output %1, %2, %3 : tensor<4x2x!qir.fixed<16,6>>, tensor<4x2x!qir.fixed<16,6>>, tensor<4x2x!qir.fixed<16,8>>
}""",
    "add_three_types": """
qir.model @add {
  %0 = qir.input "a" : tensor<5x!qir.fixed<8,3>>
  %1 = qir.input "b" : tensor<5x!qir.ufixed<6,6>>
  %2 = qir.relu %0 {layer = "r"} : tensor<5x!qir.fixed<8,3>>
  %3 = qir.add %0, %1, %2 {layer = "sum"} : tensor<5x!qir.fixed<8,3>>, tensor<5x!qir.ufixed<6,6>>, tensor<5x!qir.fixed<8,3>> -> tensor<5x!qir.fixed<20,10>>
  qir.output %3 : tensor<5x!qir.fixed<20,10>>
}""",
    "max_pool_2d_padded": """
qir.model @maxpool {
  %0 = qir.input "x" : tensor<5x4x2x!qir.fixed<6,3>>
  %1 = qir.pool %0 kind "max" window [2, 3] strides [2, 1] pads [1, 1, 0, 1] {layer = "mp"} : tensor<5x4x2x!qir.fixed<6,3>> -> tensor<3x4x2x!qir.fixed<6,3>>
  %2 = qir.relu %0 {layer = "r"} : tensor<5x4x2x!qir.fixed<6,3>>
  %3 = qir.pool %2 kind "max" window [5, 4] strides [1, 1] pads [0, 0, 0, 0] {layer = "gmp"} : tensor<5x4x2x!qir.fixed<6,3>> -> tensor<1x1x2x!qir.fixed<6,3>>
  qir.output %1, %3 : tensor<3x4x2x!qir.fixed<6,3>>, tensor<1x1x2x!qir.fixed<6,3>>
}""",
    "avg_pool": """
qir.model @avgpool {
  %0 = qir.input "x" : tensor<6x3x!qir.ufixed<6,2>>
  %1 = qir.pool %0 kind "avg" window [3] strides [2] pads [1, 1] count "valid" multiplier(dense<[8, 4, 3]> : tensor<3xi32> : !qir.ufixed<5,1>) {layer = "ap"} : tensor<6x3x!qir.ufixed<6,2>> -> tensor<3x3x!qir.ufixed<16,4>>
  %2 = qir.pool %0 kind "avg" window [6] strides [1] pads [0, 0] count "window" multiplier(dense<5> : tensor<1xi32> : !qir.ufixed<6,0>) {layer = "gap"} : tensor<6x3x!qir.ufixed<6,2>> -> tensor<1x3x!qir.ufixed<16,4>>
  qir.output %1, %2 : tensor<3x3x!qir.ufixed<16,4>>, tensor<1x3x!qir.ufixed<16,4>>
}""",
    "conv1d_pad_stride_dilation": """
qir.model @conv1d {
  %0 = qir.input "x" : tensor<9x2x!qir.fixed<6,2>>
  %1 = qir.conv %0 weights(dense<[[[3, -1, 0], [2, 5, -7]], [[-4, 1, 6], [0, 2, 3]], [[1, -3, 2], [7, -8, 1]]]> : tensor<3x2x3xi32> : !qir.fixed<5,2>) bias(dense<[5, -9, 2]> : tensor<3xi32> : !qir.fixed<8,3>) strides [2] dilations [2] pads [2, 1] groups 1 {layer = "conv"} : tensor<9x2x!qir.fixed<6,2>> -> tensor<4x3x!qir.fixed<24,10>>
  %2 = qir.quantize %1 rounding "rnd_conv" overflow "sat" {layer = "conv"} : tensor<4x3x!qir.fixed<24,10>> -> tensor<4x3x!qir.fixed<8,4>>
  %3 = qir.relu %2 {layer = "conv"} : tensor<4x3x!qir.fixed<8,4>>
  qir.output %3 : tensor<4x3x!qir.fixed<8,4>>
}""",
    "conv2d_depthwise": """
qir.model @dwconv {
  %0 = qir.input "x" : tensor<4x5x2x!qir.ufixed<4,2>>
  %1 = qir.conv %0 weights(dense<[[[[1, -2, 3, 0]], [[2, 2, -1, 1]]], [[[0, 3, 1, -3]], [[-2, 1, 1, 2]]]]> : tensor<2x2x1x4xi32> : !qir.fixed<3,1>) strides [1, 2] dilations [1, 1] pads [1, 0, 0, 1] groups 2 {layer = "dw"} : tensor<4x5x2x!qir.ufixed<4,2>> -> tensor<4x3x4x!qir.fixed<16,8>>
  %2 = qir.conv %1 weights(dense<[[[[1, 0], [-1, 2], [3, 1], [0, -2]]]]> : tensor<1x1x4x2xi32> : !qir.fixed<3,1>) strides [1, 1] dilations [1, 1] pads [0, 0, 0, 0] groups 1 {layer = "pw"} : tensor<4x3x4x!qir.fixed<16,8>> -> tensor<4x3x2x!qir.fixed<24,12>>
  qir.output %2 : tensor<4x3x2x!qir.fixed<24,12>>
}""",
    "lut_signed_unsigned": """
qir.model @lut {
  %0 = qir.input "x" : tensor<6x!qir.fixed<4,2>>
  %1 = qir.lut %0 table(dense<[0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, 5, 9, 11, 13, -1]> : tensor<16xi32>) {layer = "lut1"} : tensor<6x!qir.fixed<4,2>> -> tensor<6x!qir.fixed<6,3>>
  %2 = qir.relu %1 {layer = "r"} : tensor<6x!qir.fixed<6,3>>
  %3 = qir.quantize %2 rounding "trn" overflow "wrap" {layer = "q"} : tensor<6x!qir.fixed<6,3>> -> tensor<6x!qir.ufixed<3,2>>
  %4 = qir.lut %3 table(dense<[7, 0, 3, 2, 6, 1, 5, 4]> : tensor<8xi32>) {layer = "lut2"} : tensor<6x!qir.ufixed<3,2>> -> tensor<6x!qir.ufixed<3,0>>
  qir.output %4 : tensor<6x!qir.ufixed<3,0>>
}""",
    "branchy_residual": """
qir.model @branchy {
  %0 = qir.input "x" : tensor<6x2x!qir.fixed<6,2>>
  %1 = qir.conv %0 weights(dense<[[[3, -1], [2, 5]], [[-4, 1], [0, 2]], [[1, -3], [7, -8]]]> : tensor<3x2x2xi32> : !qir.fixed<5,2>) strides [1] dilations [1] pads [1, 1] groups 1 {layer = "c1"} : tensor<6x2x!qir.fixed<6,2>> -> tensor<6x2x!qir.fixed<24,10>>
  %2 = qir.quantize %1 rounding "rnd" overflow "sat" {layer = "c1"} : tensor<6x2x!qir.fixed<24,10>> -> tensor<6x2x!qir.fixed<8,3>>
  %3 = qir.conv %2 weights(dense<[[[5, -6], [1, 3]], [[-2, 7], [4, 4]], [[3, 3], [-5, 1]]]> : tensor<3x2x2xi32> : !qir.fixed<5,2>) strides [1] dilations [1] pads [1, 1] groups 1 {layer = "c2"} : tensor<6x2x!qir.fixed<8,3>> -> tensor<6x2x!qir.fixed<24,10>>
  %4 = qir.quantize %3 rounding "rnd" overflow "sat" {layer = "c2"} : tensor<6x2x!qir.fixed<24,10>> -> tensor<6x2x!qir.fixed<8,3>>
  %5 = qir.add %4, %0 {layer = "res"} : tensor<6x2x!qir.fixed<8,3>>, tensor<6x2x!qir.fixed<6,2>> -> tensor<6x2x!qir.fixed<12,5>>
  %6 = qir.concat %5, %2, %0 axis 1 {layer = "cat"} : tensor<6x2x!qir.fixed<12,5>>, tensor<6x2x!qir.fixed<8,3>>, tensor<6x2x!qir.fixed<6,2>> -> tensor<6x6x!qir.fixed<12,5>>
  %7 = qir.reshape %6 {layer = "flat"} : tensor<6x6x!qir.fixed<12,5>> -> tensor<36x!qir.fixed<12,5>>
  qir.output %7 : tensor<36x!qir.fixed<12,5>>
}""",
}

PIPELINES = {
    "default": DEFAULT_PIPELINE,
    "mac": "qir-infer-widths,qir-lower-conv{style=mac},qir-lower-dense{style=mac},qir-pipeline",
}


@pytest.mark.sim
@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_op_bit_exact(tmp_path, case):
    ref, model, design = compiled(CASES[case])
    xs = _vectors(ref, np.random.default_rng(len(case)))
    check_bit_exact(ref, design, xs, tmp_path)


@pytest.mark.sim
@pytest.mark.parametrize("case", ["conv1d_pad_stride_dilation", "conv2d_depthwise", "avg_pool", "branchy_residual"])
def test_mac_style_and_stage_pipeline_bit_exact(tmp_path, case):
    """The same ops with multiplier (mac) qir.cmvm and one register stage per matrix layer:
    the default qir-pipeline mode balances the branches too."""
    ref, model, design = compile_ir(CASES[case], PIPELINES["mac"])
    assert design.latency >= 2 if case == "branchy_residual" else design.latency >= 1
    check_bit_exact(ref, design, _vectors(ref, np.random.default_rng(7)), tmp_path)


@pytest.mark.sim
@pytest.mark.parametrize("case", sorted(CASES))
def test_wider_than_exact_result_types_bit_exact(tmp_path, case):
    """Without qir-infer-widths the result types keep the (wider, finer) types written in the IR:
    every generator must re-grid onto them exactly; adder graphs pipelined every 3 levels."""
    ref, model, design = compile_ir(CASES[case], "qir-lower-conv,qir-lower-cmvm,qir-pipeline{max-depth=3}",
                                    infer=False)
    check_bit_exact(ref, design, _vectors(ref, np.random.default_rng(11), n_random=20), tmp_path)


def test_lowered_ir_has_no_layer_level_arithmetic():
    for case in ("conv1d_pad_stride_dilation", "conv2d_depthwise", "avg_pool", "branchy_residual"):
        _, model, _ = compiled(CASES[case])
        names = {op.name for op in model.block.ops}
        assert "qir.conv" not in names and "qir.dense" not in names, names
        assert "qir.addergraph" in names
        assert not any(op.name == "qir.pool" and op.kind.data == "avg" for op in model.block.ops)


def test_branches_are_balanced():
    """Add/concat of paths with different stage counts: every operand crosses the same number of
    registers (generate() rejects an unbalanced pipeline), and the skip path is delayed."""
    for pipeline in PIPELINES.values():
        _, model, design = compiled(CASES["branchy_residual"], pipeline)
        regs = [op for op in model.block.ops if op.name == "qir.reg"]
        assert regs and design.latency >= 2


def test_unlowered_conv_and_avg_pool_are_named_errors():
    m = parse_module(CASES["conv1d_pad_stride_dilation"])
    with pytest.raises(QirError, match=r"qir\.conv.*no RTL generator.*qir-lower-conv"):
        generate(m)
    m = parse_module(CASES["avg_pool"])
    with pytest.raises(QirError, match=r"qir-lower-conv"):
        generate(m)


def test_lower_conv_is_exact_in_the_interpreter():
    """The flattened constant matrix equals the op on many random inputs (fast, no simulator)."""
    for case in ("conv1d_pad_stride_dilation", "conv2d_depthwise", "avg_pool", "branchy_residual"):
        ref = get_model(parse_module(CASES[case]))
        low = parse_module(CASES[case])
        run_passes(low, "qir-lower-conv")
        verify(low)
        xs = _vectors(ref, np.random.default_rng(1), n_random=300)
        for a, b in zip(evaluate(ref, xs).outputs, evaluate(get_model(low), xs).outputs):
            assert np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))


def test_lut_table_is_shared_and_verilog_deterministic(tmp_path):
    """One table per qir.lut op, not one per element; same text twice."""
    _, _, d1 = compile_ir(CASES["lut_signed_unsigned"])
    _, _, d2 = compile_ir(CASES["lut_signed_unsigned"])
    assert d1.files == d2.files
    text = next(iter(d1.files.values()))
    # 16 + 8 table entries written once each, 6 + 6 element reads
    assert len(re.findall(r"\\table \[\d+\] = ", text)) == 24
    assert len(re.findall(r"= \\table \[", text)) == 12


def test_huge_conv_is_a_named_error():
    text = """
qir.model @big {
  %0 = qir.input "x" : tensor<128x128x4x!qir.fixed<4,2>>
  %1 = qir.conv %0 weights(dense<1> : tensor<3x3x4x4xi32> : !qir.fixed<4,2>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "big"} : tensor<128x128x4x!qir.fixed<4,2>> -> tensor<128x128x4x!qir.fixed<16,8>>
  qir.output %1 : tensor<128x128x4x!qir.fixed<16,8>>
}"""
    with pytest.raises(QirError, match=r"layer 'big' would become a 65536 x 65536 constant matrix"):
        run_passes(parse_module(text), "qir-lower-conv")


def test_yosys_synthesizes_lut_rom_and_concat(tmp_path):
    """Debian Yosys 0.23 reads and synthesizes the ROM (an initialised array) and the concat."""
    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed")
    for case in ("lut_signed_unsigned", "concat_mixed_types"):
        _, _, design = compiled(CASES[case])
        (name, text), = design.files.items()
        (tmp_path / name).write_text(text)
        r = subprocess.run(["yosys", "-p", f"read_verilog -sv {name}; synth -top {design.top} -flatten; stat"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "Number of cells" in r.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_verilator_lint_clean(tmp_path, case):
    _, _, design = compiled(CASES[case])
    _lint(design, tmp_path)


# ------------------------------------------------------------------------------ end to end
def qir_cli(*args):
    return subprocess.run([str(BIN / "qir"), *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def conv1d_compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("conv1d")
    r = qir_cli("compile", CONV1D / "KERAS_conv1d_small.json", "-o", d / "out", *CONV1D_OPTS)
    assert r.returncode == 0, r.stderr
    x = np.load(CONV1D / "vectors.npz")["x"]
    np.save(d / "x60.npy", x[:60])
    np.save(d / "xall.npy", x)
    return d


@pytest.mark.sim
@pytest.mark.parametrize("simulator,vectors", [("icarus", "x60"),
                                               pytest.param("verilator", "xall", marks=pytest.mark.slow)])
def test_keras_conv1d_small_sim_matches_eval(conv1d_compiled, simulator, vectors):
    d = conv1d_compiled
    lowered = (d / "out" / "lowered.mlir").read_text()
    assert "qir.conv" not in lowered and "qir.addergraph" in lowered
    r = qir_cli("sim", d / "out", "--inputs", d / f"{vectors}.npy", "--simulator", simulator,
                "-o", d / f"y_{simulator}.npy")
    assert r.returncode == 0, r.stderr + r.stdout
    assert " 0 mismatches" in r.stdout
    r = qir_cli("eval", d / "out" / "net.mlir", "--inputs", d / f"{vectors}.npy", "-o", d / f"ref_{simulator}.npy")
    assert r.returncode == 0, r.stderr
    got, ref = np.load(d / f"y_{simulator}.npy"), np.load(d / f"ref_{simulator}.npy")
    assert got.shape == ref.shape == (len(np.load(d / f"{vectors}.npy")), 5)
    assert np.array_equal(got, ref)


def test_keras_conv1d_small_lint_clean(conv1d_compiled, tmp_path):
    vbin = _verilator_bin()
    if vbin is None:
        pytest.skip("verilator not installed")
    rtl = conv1d_compiled / "out" / "rtl" / "KERAS_conv1d_small.v"
    r = subprocess.run([str(vbin / "verilator"), "--lint-only", "-Wall", "--top-module", "KERAS_conv1d_small", str(rtl)],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _onnx_sim(tmp_path, model_proto, name, n=40):
    """Compile an ONNX model with the default pipeline and simulate it in Icarus against the
    interpreter on grid inputs (incl. min/max)."""
    from test_frontend_onnx import grid, save

    p = save(model_proto, tmp_path / f"{name}.onnx")
    r = qir_cli("compile", p, "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    net = get_model(parse_module((tmp_path / "out" / "net.mlir").read_text()))
    (op,) = net.inputs()
    t = elem(op.result.type)
    shape = shape_of(op.result.type)
    x = grid(t, (n,) + shape).astype(np.float64)
    x[0], x[1] = t.min_int * 2.0 ** -t.frac, t.max_int * 2.0 ** -t.frac
    np.save(tmp_path / "x.npy", x)
    r = qir_cli("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--simulator", "icarus")
    assert r.returncode == 0, r.stderr + r.stdout
    assert f"{n} vectors" in r.stdout and " 0 mismatches" in r.stdout
    return (tmp_path / "out" / "lowered.mlir").read_text()


@pytest.mark.sim
@pytest.mark.parametrize("bits,channels_last", [(2, True), pytest.param(4, False, marks=pytest.mark.slow),
                                                pytest.param(4, True, marks=pytest.mark.slow)])
def test_qonnx_conv_net_compiles_bit_exact(tmp_path, bits, channels_last):
    """QONNX Quant -> Conv(pads) -> Add bias -> Relu -> MaxPool -> (Transpose) -> Flatten -> MatMul."""
    pytest.importorskip("onnx")
    from test_frontend_onnx import qonnx_conv_model

    lowered = _onnx_sim(tmp_path, qonnx_conv_model(bits, channels_last), "qconv")
    assert "qir.pool" in lowered and "qir.conv" not in lowered


@pytest.mark.sim
def test_qonnx_residual_concat_pad_leaky_avgpool_bit_exact(tmp_path):
    """A branchy QONNX net: conv + residual Add, LeakyRelu, Pad, AveragePool (count valid),
    Concat with the input, GlobalAveragePool, MatMul."""
    pytest.importorskip("onnx")
    from onnx import helper
    from test_frontend_onnx import QONNX, RNG, init, make_model, po2, qonnx_quant

    nodes, inits = [], []

    def add(pair):
        nodes.append(pair[0])
        inits.extend(pair[1])

    add(qonnx_quant("xq", "x", po2(-3), 0, 6))
    inits += [init("w1", RNG.normal(0, 0.4, (2, 2, 3, 3))), init("w2", RNG.normal(0, 0.3, (4, 3)))]
    add(qonnx_quant("w1q", "w1", po2(-3), 0, 4, narrow=1))
    nodes += [helper.make_node("Conv", ["xq", "w1q"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
              helper.make_node("Add", ["c1", "xq"], ["res"], name="residual"),
              helper.make_node("LeakyRelu", ["res"], ["lr"], name="leaky", alpha=0.125)]
    add(qonnx_quant("a1", "lr", po2(-2), 0, 6))
    inits.append(init("pads", np.array([0, 0, 1, 0, 0, 0, 0, 0], np.int64)))
    nodes += [helper.make_node("Pad", ["a1", "pads"], ["pd"], name="pad"),
              helper.make_node("AveragePool", ["pd"], ["ap"], name="avg", kernel_shape=[2, 2], strides=[1, 1],
                               pads=[0, 1, 0, 0]),
              helper.make_node("Concat", ["ap", "xq"], ["cat"], name="concat", axis=1),
              helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["f"], name="flatten")]
    add(qonnx_quant("w2q", "w2", po2(-3), 0, 4, narrow=1))
    nodes.append(helper.make_node("MatMul", ["f", "w2q"], ["y"], name="fc"))
    m = make_model(nodes, inits, [1, 2, 8, 8], [1, 3], domains=[QONNX])
    lowered = _onnx_sim(tmp_path, m, "res")
    assert "qir.leaky_relu" in lowered and "qir.concat" in lowered and "qir.add" in lowered
    assert "qir.pad" in lowered or "qir.transpose" in lowered


@pytest.mark.sim
def test_float_keras_branchy_add_concat_bit_exact(tmp_path):
    """A float Keras functional model (precision-configured): Conv1D 'same', MaxPooling1D, a
    Conv1D branch added back (Add), Concatenate with the pooled tensor, AveragePooling1D,
    Flatten, Dense: compiled with the default pipeline, bit-exact in Icarus."""
    pytest.importorskip("h5py")
    from test_frontend_keras_layers import node, write_functional

    rng = np.random.default_rng(5)
    layers = [
        node("Conv1D", "c1", ["inp"], filters=3, kernel_size=[3], strides=[1], padding="same",
             dilation_rate=[1], activation="relu", use_bias=True),
        node("MaxPooling1D", "mp", ["c1"], pool_size=[2], strides=[2], padding="valid"),
        node("Conv1D", "c2", ["mp"], filters=3, kernel_size=[2], strides=[1], padding="same",
             dilation_rate=[1], activation="linear", use_bias=False),
        node("Add", "sum", ["c2", "mp"]),
        node("Concatenate", "cat", ["sum", "mp"], axis=-1),
        node("AveragePooling1D", "ap", ["cat"], pool_size=[2], strides=[2], padding="valid"),
        node("Flatten", "fl", ["ap"]),
        node("Dense", "fc", ["fl"], units=4, activation="linear", use_bias=True),
    ]
    weights = {"c1": {"kernel": rng.normal(0, 0.5, (3, 2, 3)), "bias": rng.normal(0, 0.2, 3)},
               "c2": {"kernel": rng.normal(0, 0.5, (2, 3, 3))},
               "fc": {"kernel": rng.normal(0, 0.5, (12, 4)), "bias": rng.normal(0, 0.2, 4)}}
    json_path = write_functional(tmp_path, "branchy", layers, weights, ["fc"], [8, 2])
    r = qir_cli("compile", json_path, "-o", tmp_path / "out", "--precision", "fixed<12,4>",
                "--input-type", "fixed<8,3>", "--softmax", "none")
    assert r.returncode == 0, r.stderr
    net = get_model(parse_module((tmp_path / "out" / "net.mlir").read_text()))
    names = {op.name for op in net.block.ops}
    assert {"qir.conv", "qir.add", "qir.concat", "qir.pool"} <= names, names
    (op,) = net.inputs()
    t = elem(op.result.type)
    x = np.random.default_rng(3).integers(t.min_int, t.max_int + 1, (50,) + shape_of(op.result.type))
    x[0], x[1] = t.min_int, t.max_int
    np.save(tmp_path / "x.npy", x * 2.0 ** -t.frac)
    r = qir_cli("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--simulator", "icarus")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "50 vectors" in r.stdout and " 0 mismatches" in r.stdout


@pytest.mark.sim
def test_qkeras_conv2d_pool_padding_depthwise_bit_exact(tmp_path):
    """QKeras Conv2D 'same' + MaxPooling2D + ZeroPadding2D + DepthwiseConv2D (multiplier 2) +
    AveragePooling2D 'same' (valid counts) + GlobalAveragePooling2D, compiled and simulated."""
    pytest.importorskip("h5py")
    from test_frontend_keras_layers import node, write_functional

    rng = np.random.default_rng(4)
    q = "quantized_bits(4,0,alpha=1)"
    layers = [
        node("QConv2D", "c1", ["inp"], filters=3, kernel_size=[3, 3], strides=[1, 1], padding="same",
             dilation_rate=[1, 1], activation="quantized_relu(6,2)", use_bias=False, kernel_quantizer=q),
        node("MaxPooling2D", "mp", ["c1"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("ZeroPadding2D", "zp", ["mp"], padding=[[1, 1], [0, 2]]),
        node("QDepthwiseConv2D", "dw", ["zp"], kernel_size=[2, 2], strides=[1, 1], padding="valid",
             depth_multiplier=2, activation="linear", use_bias=False, depthwise_quantizer=q),
        node("AveragePooling2D", "ap", ["dw"], pool_size=[2, 2], strides=[1, 1], padding="same"),
        node("GlobalAveragePooling2D", "gap", ["ap"]),
    ]
    weights = {"c1": {"kernel": rng.integers(-8, 8, (3, 3, 2, 3)) / 8},
               "dw": {"depthwise_kernel": rng.integers(-8, 8, (2, 2, 3, 2)) / 8}}
    path = write_functional(tmp_path, "cv", layers, weights, ["gap"], [6, 6, 2])
    r = qir_cli("compile", path, "-o", tmp_path / "out", "--input-type", "fixed<8,3>")
    assert r.returncode == 0, r.stderr
    net = (tmp_path / "out" / "net.mlir").read_text()
    assert "qir.pad" in net and "qir.pool" in net and "groups 3" in net
    x = np.random.default_rng(6).integers(-128, 128, (40, 6, 6, 2))
    x[0], x[1] = -128, 127
    np.save(tmp_path / "x.npy", x / 32)
    r = qir_cli("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--simulator", "icarus")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "40 vectors" in r.stdout and " 0 mismatches" in r.stdout
