"""Random-model differential testing, the long run (issue #14).

    .venv/bin/python bench/fuzz.py --seeds 0:1000 [--verilator-every 1] [--batch 25] [--jobs 1]
                                   [--vectors 24] [--out bench/out/fuzz] [--keep] [--reuse]
                                   [--io stream]

For every seed, ``tests/random_models.py`` draws a random valid QKeras model (written as JSON +
h5, imported by the real frontend) and checks it end to end: (a) the reference interpreter on
the imported ``net.mlir`` equals an exact ``Fraction`` reference of the QKeras semantics on every
vector, (b) the compiled RTL equals the interpreter on corner and random vectors in Icarus
(every seed, the real file-driven testbench) and in Verilator (every ``--verilator-every``-th
seed, default all): a Verilator C++ build costs ~30 s for one tiny model on this machine, so the
models of a chunk of ``--batch`` seeds are simulated together, one testbench instantiating all of
them (``random_models.check_rtl_batch``: ~5 s per model).  Prints one line per failing seed (the model and
the first difference) and a table: seeds, models, mismatches, internal errors, refused (a generated
model qir did not compile: a generator or qir bug either way), "xnor -> auto" (an explicit xnor
style the value-set analysis could not prove valid -- a clean, documented refusal -- checked with
style auto instead), time.  Exits 1 on any mismatch, internal error or refusal.

``--reuse`` draws the same models with a random reuse factor R per dense/conv layer
(``random_models.generate(seed, reuse=True)``, issue #12: folded layers, in_ready, R cycles per
input) and checks them in Icarus only: the batched Verilator bench drives every model at one
input per cycle and has no in_ready.  Each layer gets the cheaper folded implementation
(``rom``, for small R ``muxgraph``, or ``digitserial``: about 30% of the folded layers are pinned
to it); the counts of models with a muxgraph / digitserial layer are printed.
``--io stream`` compiles them with ``--io stream`` (with
``--reuse``: a folded dense after a Flatten of a conv/pool stream is a ``qir.stream_mvu``) and runs
the stream bench (full rate and random valid gaps / ready stalls) in Icarus; 30% of its seeds
are binary CNNs (``random_models._generate_binary_cnn``: a binary dense after the Flatten is an
xnor ``qir.stream_mvu``).
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


def _chunk(args):
    """Icarus per seed (the real file-driven testbench: protocol and latency checks too), then
    one batched Verilator build and run for the chunk's selected seeds."""
    seeds, verilator_every, vectors, out, keep, reuse, io = args
    import warnings

    warnings.simplefilter("ignore")  # Amaranth UnusedElaboratable after a failed elaboration
    done, batch = [], []
    for seed in seeds:
        work = Path(tempfile.mkdtemp(prefix=f"fuzz{seed}_", dir=out))
        case = rm.generate(seed, reuse=reuse, io=io)
        r = rm.check(case, work, ("icarus",), vectors)
        sims = ["icarus"]
        if r.status == "ok" and not reuse and io == "parallel" and verilator_every and seed % verilator_every == 0:
            net, outdir, xm = rm.check.last
            batch.append((seed, net, outdir, xm))
            sims.append("verilator")
        done.append([r, case.describe(), sims, work])
    if batch:
        t0 = time.perf_counter()
        bdir = Path(tempfile.mkdtemp(prefix=f"verilator{seeds[0]}_", dir=out))
        try:
            bad = rm.check_rtl_batch(batch, bdir, "verilator")
        except Exception as e:  # noqa: BLE001 - one model breaking the build: check them one by one
            bad = {}
            for seed, net, outdir, xm in batch:
                try:
                    msg = rm.check_rtl(net, outdir, xm, "verilator")
                except Exception as e1:  # noqa: BLE001
                    msg = f"internal: {type(e1).__name__}: {e1} (batched build: {e})"
                if msg:
                    bad[seed] = msg
        dt = time.perf_counter() - t0
        for item in done:
            r = item[0]
            if "verilator" in item[2]:
                r.seconds += dt / len(batch)
                if r.seed in bad:
                    r.status = "internal" if bad[r.seed].startswith("internal") else "mismatch"
                    r.detail = bad[r.seed]
        if not bad and not keep:
            shutil.rmtree(bdir, ignore_errors=True)
    for r, _, _, work in done:
        if r.status == "ok" and not keep:
            shutil.rmtree(work, ignore_errors=True)
    return [(r, d, s, str(w)) for r, d, s, w in done]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0:100", help="A:B, seeds A..B-1")
    ap.add_argument("--verilator-every", type=int, default=1,
                    help="also Verilator (batched) on seeds divisible by N (0: never)")
    ap.add_argument("--batch", type=int, default=25, help="seeds per batched Verilator build")
    ap.add_argument("--vectors", type=int, default=24, help="random vectors per model (plus corners)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "fuzz"))
    ap.add_argument("--keep", action="store_true", help="keep the work directories of passing seeds")
    ap.add_argument("--reuse", action="store_true", help="random reuse factors (folded layers; Icarus only)")
    ap.add_argument("--io", choices=("parallel", "stream"), default="parallel",
                    help="stream: compile with --io stream (valid/ready beats, random stalls; Icarus only)")
    a = ap.parse_args(argv)
    lo, hi = (int(v) for v in a.seeds.split(":"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    counts = {"ok": 0, "mismatch": 0, "internal": 0, "refused": 0}
    notes = 0
    muxgraph = 0  # models with a multiplexed-adder-graph layer (--reuse)
    xnor_stream = 0  # models with an xnor qir.stream_mvu (--reuse --io stream: binary CNNs)
    digitserial = 0  # models with a digit-serial adder-graph layer (--reuse)
    n_verilator = 0
    seeds = list(range(lo, hi))
    jobs = [(seeds[k:k + a.batch], a.verilator_every, a.vectors, out, a.keep, a.reuse, a.io)
            for k in range(0, len(seeds), a.batch)]
    if a.jobs > 1:
        pool = ProcessPoolExecutor(a.jobs)
        chunks = pool.map(_chunk, jobs)
    else:
        chunks = map(_chunk, jobs)
    results = (x for c in chunks for x in c)
    for r, desc, sims, work in results:
        counts[r.status] += 1
        n_verilator += "verilator" in sims
        notes += bool(r.status == "ok" and r.detail)
        muxgraph += "'muxgraph'" in desc
        xnor_stream += "'stream xnor'" in desc
        digitserial += "'digitserial'" in desc.split("impl:")[-1] if "impl:" in desc else 0
        if r.status != "ok":
            print(f"seed {r.seed}: {r.status.upper()} ({work})\n  {r.detail.strip()}\n  {desc}", flush=True)
    dt = time.perf_counter() - t0
    n = hi - lo
    print()
    print("| seeds | models | mismatches | internal errors | refused | xnor -> auto | Verilator runs | time |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {lo}:{hi} | {n} | {counts['mismatch']} | {counts['internal']} | {counts['refused']} | {notes} | "
          f"{n_verilator} | {dt:.0f} s ({dt / max(n, 1):.2f} s/model) |")
    if a.reuse:
        print(f"models with a folded layer built as a multiplexed adder graph (impl muxgraph): {muxgraph}")
        print(f"models with a folded layer built as a digit-serial adder graph (impl digitserial): {digitserial}")
    if a.reuse and a.io == "stream":
        print(f"models with a binary dense consuming the stream (xnor qir.stream_mvu): {xnor_stream}")
    return 0 if counts["ok"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
