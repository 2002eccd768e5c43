"""How qir's compile time and memory grow with the hardware it produces.

    .venv/bin/python bench/compile_scaling.py [--models qkeras_3layer,mlp_64_128_64_10,...]
                                              [--out bench/out/scaling] [--repeat 1]

Each model is compiled by ``qir compile`` (default pipeline, ``--softmax none``) in its own
process; its CPU time (user + sys of that process, ``os.wait4``) and peak resident memory
(``ru_maxrss``: the largest single process; "tree RSS": the sum over the compile and its RTL
worker processes at any moment, sampled) are measured -- CPU seconds first, because the machine may
be shared; the minimum wall time and the load average at the end are printed beside them.
With ``--repeat N`` the minimum CPU time of N runs is kept.  The adder bits produced (the sum of
every adder's result bits, ``AdderGraph.cost``; and the LUT-bit estimate ``AdderGraph.lut_bits``)
come from the compiled ``lowered.mlir``.  The MLPs are ``tests/mlp_models.write_dense_mlp``:
random 6-bit weights (``quantized_bits(6,0)``, fixed seed), ``quantized_relu(6)``, input
``fixed<16,6>``.  Prints one table: compile cost per 1,000 adder bits shows whether the growth is
linear in the hardware produced.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

MLPS = {"mlp_64_128_64_10": (64, 128, 64, 10), "mlp_128_256_128_10": (128, 256, 128, 10),
        "mlp_784_256_256_10": (784, 256, 256, 10)}
DEFAULT = "qkeras_3layer,mlp_64_128_64_10,mlp_128_256_128_10,qkeras_mnist_dense,mlp_784_256_256_10"


def model_spec(name: str, workdir: Path) -> tuple[Path, str]:
    from mlp_models import write_dense_mlp

    data = ROOT / "tests" / "data"
    if name == "qkeras_3layer":
        return data / "qkeras_3layer" / "qkeras_3layer.json", "fixed<16,6>"
    if name == "qkeras_mnist_dense":
        return data / "qkeras_mnist_dense" / "qkeras_mnist_dense.json", "ufixed<9,1>"
    if name in MLPS:
        return write_dense_mlp(workdir / "models", MLPS[name]), "fixed<16,6>"
    raise SystemExit(f"compile_scaling: unknown model {name!r}; known: qkeras_3layer, qkeras_mnist_dense, "
                     f"{', '.join(MLPS)}")


def _tree_rss_kb(pid: int) -> int:
    """Summed resident memory (kB) of ``pid`` and its descendants (Linux /proc; 0 elsewhere)."""
    kids: dict[int, list[int]] = {}
    try:
        entries = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return 0
    for d in entries:
        try:
            stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kids.setdefault(int(stat[1]), []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        q = todo.pop()
        todo += kids.get(q, [])
        try:
            total += next(int(ln.split()[1]) for ln in Path(f"/proc/{q}/status").read_text().splitlines()
                          if ln.startswith("VmRSS"))
        except (OSError, StopIteration):
            pass
    return total


def timed_compile(path: Path, input_type: str, out: Path) -> tuple[float, float, float, float]:
    """(CPU seconds, peak RSS in MB, wall seconds, peak summed RSS of the process tree in MB) of
    one ``qir compile`` process.  ``ru_maxrss`` is the largest single process (the compile or one
    of its RTL worker processes, ``qir.rtl.separate``); the tree figure adds up the processes that
    run at the same time, sampled every 0.1 s."""
    exe = Path(sys.executable).parent / "qir"
    cmd = [str(exe), "compile", str(path), "-o", str(out), "--input-type", input_type, "--softmax", "none", "-q"]
    t0 = time.perf_counter()
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    tree = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        tree = max(tree, _tree_rss_kb(p.pid))
        time.sleep(0.1)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode:
        err.seek(0)
        raise SystemExit(f"compile_scaling: qir compile failed for {path}: {err.read().decode().strip()[-500:]}")
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, wall, tree / 1024


def adder_bits(outdir: Path) -> dict:
    from qir.dialect import AdderGraphOp
    from qir.ir import get_model, read_module

    tot = {"adders": 0, "adder_bits": 0, "lut_bits": 0}
    for op in get_model(read_module(outdir / "lowered.mlir")).block.ops:
        if isinstance(op, AdderGraphOp):
            g = op.graph()
            tot["adders"] += g.n_adders
            tot["adder_bits"] += g.cost()
            tot["lut_bits"] += g.lut_bits()
    return tot


def main() -> int:
    ap = argparse.ArgumentParser(description="qir compile CPU time and memory against adder bits produced")
    ap.add_argument("--models", default=DEFAULT)
    ap.add_argument("--out", default=str(HERE / "out" / "scaling"))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models.split(","):
        path, it = model_spec(name, out)
        runs = []
        for _ in range(max(args.repeat, 1)):
            print(f"compile_scaling: {name} ...", file=sys.stderr, flush=True)
            runs.append(timed_compile(path, it, out / name))
        cpu, rss, wall, tree = min(runs)
        row = {"model": name, **adder_bits(out / name), "cpu_s": round(cpu, 2), "peak_rss_mb": round(rss),
               "tree_rss_mb": round(tree), "wall_s": round(wall, 1), "min_wall_s": round(min(r[2] for r in runs), 2),
               "load": round(os.getloadavg()[0], 1)}
        row["s_per_1k_bits"] = round(1000 * cpu / max(row["adder_bits"], 1), 4)
        row["mb_per_1k_bits"] = round(1000 * rss / max(row["adder_bits"], 1), 2)
        rows.append(row)
        (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    head = ["model", "adders", "adder bits", "LUT bits", "CPU s", "peak RSS MB", "tree RSS MB", "min wall s",
            "load", "s / 1k bits", "MB / 1k bits"]
    keys = ["model", "adders", "adder_bits", "lut_bits", "cpu_s", "peak_rss_mb", "tree_rss_mb", "min_wall_s", "load",
            "s_per_1k_bits", "mb_per_1k_bits"]
    lines = [head] + [[str(r[k]) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
