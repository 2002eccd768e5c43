"""Drop-in firmware for ``--io stream`` designs: ``--axi-stream`` (one transfer = one beat, TLAST on
the last output beat of each image), ``--clock-ns`` (the map bodies' pipeline depth), ``--part``,
the FuseSoC core and its beat-wise self-checking bench, the vendor scripts."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_firmware import _fusesoc, _tcl_calls
from test_stream import RESIDUAL

from qir.cli import main as qir_main
from qir.errors import QirError


def _compile(tmp: Path, name: str, *extra: str) -> tuple[Path, dict]:
    """The residual stream CNN of tests/test_stream.py (5x6x2 -> 3x3 conv + add -> 5x6x2: 30 input
    and 30 output beats, padding: the window holds s_axis_tready low at the borders)."""
    src = tmp / "res.mlir"
    if not src.exists():
        src.write_text(RESIDUAL)
    out = tmp / name
    assert qir_main(["compile", str(src), "-o", str(out), "--io", "stream", "-q", *extra]) == 0
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def axis(tmp_path_factory):
    return _compile(tmp_path_factory.mktemp("fw_stream"), "out", "--axi-stream", "--clock-ns", "4",
                    "--part", "xcku115-flvb2104-2-e")


def test_stream_firmware_files(axis, tmp_path):
    from qir.sim.tools import find_verilator, tool_env

    out, r = axis
    a, fw = r["axi_stream"], r["firmware"]
    assert r["io"] == "stream" and a["fifo_depth"] is None and a["out_beats"] == r["beats_out"] == 30
    assert (a["s_tdata_width"], a["m_tdata_width"]) == (16, 16)  # beats of 2 x fixed<6,3> in, 2 x fixed<7,4> out
    assert fw["synth_top"] == a["top"] == "res_axis" and fw["clock_port"] == "aclk"
    assert (out / fw["fusesoc_core"]).is_file() and (out / fw["selfcheck_tb"]).is_file()
    viv = _tcl_calls(out / fw["vivado"]["tcl"], tmp_path)
    create = next(c for c in viv if c[0] == "create_project")
    assert create[create.index("-part") + 1] == "xcku115-flvb2104-2-e"
    clk = [c for c in _tcl_calls(out / fw["vivado"]["xdc"], tmp_path) if c[0] == "create_clock"]
    assert clk[0][clk[0].index("-period") + 1] == "4.0"
    res = subprocess.run([str(find_verilator().exe), "--lint-only", "-Wall", "--top-module", a["top"],
                          *[str(out / f) for f in fw["rtl"]]], capture_output=True, text=True, env=tool_env())
    assert res.returncode == 0, res.stderr


def test_stream_clock_ns_sets_the_map_bodies_depth(axis, tmp_path):
    from qir.timing import levels_for_clock

    _, fast = axis
    _, slow = _compile(tmp_path, "slow", "--clock-ns", "12")
    tf, ts = fast["timing"], slow["timing"]
    assert tf["levels_per_stage"] < ts["levels_per_stage"]
    assert f"qir-pipeline{{max-depth={tf['levels_per_stage']}}}" in fast["pipeline"]
    assert fast["latency_cycles"] > slow["latency_cycles"] and fast["ii_cycles"] == slow["ii_cycles"]
    for t in (tf, ts):  # the widest adder is the conv kernel's, inside its qir.map body
        assert t["max_adder_width"] > 7 and t["levels_per_stage"] == levels_for_clock(t["clock_ns"], t["max_adder_width"])
    # the 3x3 kernel's adder graph is deeper than 4 levels: at 12 ns the deepest stage has all of them
    assert ts["deepest_stage_levels"] == ts["levels_per_stage"] and not ts["fmax_mhz_estimate"] > tf["fmax_mhz_estimate"]


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_stream_axi_cocotbext(axis, sim):
    """cocotbext-axi source/sink/monitor: random backpressure and source gaps, one image per TLAST
    frame, every beat against the interpreter; at full rate the core's II and latency."""
    from qir.sim.axis_bench import run_axis

    assert "2 of 2 tests passed" in run_axis(axis[0], sim, n=12 if sim == "icarus" else 40)


@pytest.mark.sim
@pytest.mark.parametrize("mutation", ["tlast_early", "ready_ignored"])
def test_stream_axi_bench_catches_broken_wrappers(axis, tmp_path, mutation):
    import shutil

    from qir.sim.axis_bench import run_axis

    d = tmp_path / "d"
    shutil.copytree(axis[0], d, ignore=shutil.ignore_patterns("sim"))
    v = d / "rtl" / "res_axis.v"
    text = v.read_text()
    if mutation == "tlast_early":  # TLAST one beat early: the frames are cut wrong
        new = text.replace("assign m_axis_tlast = out_beat == 5'h1d;", "assign m_axis_tlast = out_beat == 5'h1c;")
    else:                          # the core never sees backpressure: beats are lost
        new = text.replace(".out_ready(m_axis_tready),", ".out_ready(1'h1),")
    assert new != text
    v.write_text(new)
    with pytest.raises(QirError, match="AXI-Stream tests failed"):
        run_axis(d, "icarus", n=8)


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_stream_fusesoc_selfcheck(axis, tmp_path, sim):
    """The FuseSoC core's self-checking bench feeds beats with gaps and stalls out_ready; it
    passes on the design and fails when one expected beat is wrong."""
    import shutil

    out, r = axis
    res = _fusesoc(out, f"sim_{sim}", r["firmware"]["vlnv"], tmp_path / "build")
    assert res.returncode == 0 and "tb: PASS: 64 vectors" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]
    if sim != "icarus":
        return
    d = tmp_path / "bad"
    shutil.copytree(out, d, ignore=shutil.ignore_patterns("sim"))
    tb = d / r["firmware"]["selfcheck_tb"]
    lines = tb.read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith("    v_out_data[37] = "))
    word = lines[k].split("'h")[1].rstrip(";")
    lines[k] = lines[k].replace(word, format(int(word, 16) ^ 1, f"0{len(word)}x"))
    tb.write_text("\n".join(lines) + "\n")
    res = _fusesoc(d, "sim_icarus", r["firmware"]["vlnv"], tmp_path / "build_bad")
    assert res.returncode != 0 and "tb: FAIL: vector 1 beat 7 out_data" in res.stdout + res.stderr


@pytest.mark.heavy
def test_stream_line_buffer_is_ram_in_yosys(tmp_path, capsys):
    """``qir report --synth xilinx`` on a stream conv (3x3, 2 -> 2 channels, 32 x 32 x fixed<8,3>):
    the line buffer (2 rows of 34 padded pixels, 1,088 bits) is LUTRAM/BRAM, not flip-flops, and
    the report lists block RAM, LUTRAM and DSP beside the LUTs."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    from stream_scaling import conv_ir

    src = tmp_path / "c.mlir"
    src.write_text(conv_ir(32, 32, 2, 2))
    out = tmp_path / "c"
    assert qir_main(["compile", str(src), "-o", str(out), "--io", "stream", "-q"]) == 0
    assert json.loads((out / "report.json").read_text())["memory_bits"] == 1088
    capsys.readouterr()
    assert qir_main(["report", str(out), "--synth", "xilinx", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["synth_xilinx"]
    assert s["lutram"] + s["bram"] > 0 and s["lutram_luts"] is not None
    assert s["ff"] < 1088  # all registers of the design together hold fewer bits than the line buffer
    assert s["dsp"] == 0  # an adder graph: no multipliers


def test_clock_ns_counts_the_stream_mvu_adders(tmp_path):
    """--clock-ns charged only the qir.map bodies' adder graphs: a qir.stream_mvu sums its S
    products of a cycle and adds them to its accumulator in one stage that qir-pipeline does not
    cut, and neither its levels nor its accumulator's width were in the estimate (12x12x2 -> conv
    -> Flatten -> 432-input dense, --reuse 1: S = 3 products per cycle, 2 + 1 levels; the
    accumulator is wider than every kernel adder).  A design without a stream_mvu is unchanged
    (the residual net: test_stream_clock_ns_sets_the_map_bodies_depth)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from stream_mvu_models import write_small_cnn

    from qir.addergraph import range_bits
    from qir.dialect import elem, elements_to_numpy
    from qir.dialect.stream_ops import StreamMvuOp
    from qir.folding import acc_range
    from qir.ir import get_model, read_module
    from qir.timing import fixed_stages, levels_for_clock, max_adder_width, stage_ns

    js = write_small_cnn(tmp_path, kind="mac", shape=(12, 12, 2))
    out = tmp_path / "o"
    assert qir_main(["compile", str(js), "-o", str(out), "--io", "stream", "-q", "--reuse", "1",
                     "--clock-ns", "8"]) == 0
    t = json.loads((out / "report.json").read_text())["timing"]
    low = read_module(out / "lowered.mlir")
    (mvu,) = [o for o in get_model(low).block.ops if isinstance(o, StreamMvuOp)]
    it = elem(mvu.input.type)
    acc = range_bits(*acc_range(elements_to_numpy(mvu.matrix), elements_to_numpy(mvu.offset), it.min_int, it.max_int))
    assert (mvu.beat, mvu.R) == (3, 1) and fixed_stages(low) == [(3, acc)]
    assert acc > max_adder_width(low, fixed=False)  # wider than the map bodies' adders: it sets W
    assert t["max_adder_width"] == acc and t["deepest_stage_levels"] >= 3
    assert t["levels_per_stage"] == levels_for_clock(8, acc)
    assert t["stage_ns"] == pytest.approx(stage_ns(t["deepest_stage_levels"], acc), abs=1e-3)
