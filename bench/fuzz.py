"""Random-model differential testing, the long run (issue #14).

    .venv/bin/python bench/fuzz.py --seeds 0:1000 [--verilator-every 50] [--jobs 1]
                                   [--vectors 24] [--out bench/out/fuzz] [--keep]

For every seed, ``tests/random_models.py`` draws a random valid QKeras model (written as JSON +
h5, imported by the real frontend) and checks it end to end: (a) the reference interpreter on
the imported ``net.mlir`` equals an exact ``Fraction`` reference of the QKeras semantics on every
vector, (b) the compiled RTL equals the interpreter on corner and random vectors in Icarus
(every seed) and in Verilator (every ``--verilator-every``-th seed: a Verilator C++ build costs
~30 s per model on this machine, Icarus ~1 s).  Prints one line per failing seed (the model and
the first difference) and a table: seeds, models, mismatches, internal errors, refused (a valid
model the frontend did not import), time.  Exits 1 on any mismatch, internal error or refusal.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import random_models as rm  # noqa: E402


def _one(args):
    seed, verilator_every, vectors, out, keep = args
    import warnings

    warnings.simplefilter("ignore")  # Amaranth UnusedElaboratable after a failed elaboration
    work = Path(tempfile.mkdtemp(prefix=f"fuzz{seed}_", dir=out))
    sims = ("icarus", "verilator") if verilator_every and seed % verilator_every == 0 else ("icarus",)
    case = rm.generate(seed)
    r = rm.check(case, work, sims, vectors)
    if r.status == "ok" and not keep:
        shutil.rmtree(work, ignore_errors=True)
    return r, case.describe(), sims, str(work)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0:100", help="A:B, seeds A..B-1")
    ap.add_argument("--verilator-every", type=int, default=50, help="also Verilator on seeds divisible by N (0: never)")
    ap.add_argument("--vectors", type=int, default=24, help="random vectors per model (plus corners)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "fuzz"))
    ap.add_argument("--keep", action="store_true", help="keep the work directories of passing seeds")
    a = ap.parse_args(argv)
    lo, hi = (int(v) for v in a.seeds.split(":"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    counts = {"ok": 0, "mismatch": 0, "internal": 0, "refused": 0}
    n_verilator = 0
    jobs = [(s, a.verilator_every, a.vectors, out, a.keep) for s in range(lo, hi)]
    if a.jobs > 1:
        pool = ProcessPoolExecutor(a.jobs)
        results = pool.map(_one, jobs)
    else:
        results = map(_one, jobs)
    for r, desc, sims, work in results:
        counts[r.status] += 1
        n_verilator += "verilator" in sims
        if r.status != "ok":
            print(f"seed {r.seed}: {r.status.upper()} ({work})\n  {r.detail.strip()}\n  {desc}", flush=True)
    dt = time.perf_counter() - t0
    n = hi - lo
    print()
    print("| seeds | models | mismatches | internal errors | refused | Verilator runs | time |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {lo}:{hi} | {n} | {counts['mismatch']} | {counts['internal']} | {counts['refused']} | "
          f"{n_verilator} | {dt:.0f} s ({dt / max(n, 1):.2f} s/model) |")
    return 0 if counts["ok"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
