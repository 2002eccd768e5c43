"""Issue #12 plan table: R = 1, 2, 4, 16 and the automatic choice for a target II, instantly.

(bench/fold_sim.py builds and simulates the designs; this script prints what qir-fold-auto sees.)

Models: qkeras_3layer (tests/data, the jet tagger, --io parallel) and the 784-256-256-10 binary
MLP (tests/mlp_models.py, seeded, binary weights and activations, --io parallel).  Per row:
estimated LUT, FF, DSP, memory bits (weight ROMs) and II, from the plan that ``qir-fold-auto``
uses (``qir.folding.estimate`` per layer, no hardware built: instant).  ``--compile`` also runs
``qir compile`` and prints ``qir report``'s estimate of the lowered design (adder graphs searched
at R = 1) and the compile time; ``--synth`` adds Yosys ``synth_xilinx -family xcup`` LUT/DSP/BRAM
for the jet tagger at R = 1 and 16 (minutes each).

    .venv/bin/python bench/fold_table.py [--compile] [--synth]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

REUSES = (1, 2, 4, 16)


def models(work: Path) -> list[tuple[str, Path, dict, int]]:
    """(name, model file, import options, target II of the auto row)."""
    from mlp_models import BNN784, BNN_PRECISION, INPUT_TYPE, write_mlp

    from qir.fixed import Fixed

    bnn = write_mlp(work, "bnn", sizes=BNN784)
    return [("qkeras_3layer", ROOT / "tests/data/qkeras_3layer/qkeras_3layer.json",
             {"input_type": Fixed(16, 6), "softmax": "none"}, 8),
            ("bnn 784-256-256-10", bnn, {"input_type": Fixed.parse(INPUT_TYPE),
                                         "precision": Fixed.parse(BNN_PRECISION), "softmax": "none"}, 32)]


def plan(path: Path, opts: dict, **fold) -> dict:
    """``report.json: folding`` of the default pipeline up to qir-fold-auto with ``fold``."""
    from qir.lowering import DEFAULT_PIPELINE
    from qir.lowering.fold_auto import folding_summary

    from qir.flow import fold_spec, import_model, run_passes

    net = import_model(path, **opts)
    prefix = DEFAULT_PIPELINE.split("qir-fold-auto")[0] + "qir-fold-auto"
    run_passes(net, fold_spec(prefix, **fold))
    return folding_summary(net)


def row(name: str, label: str, f: dict) -> str:
    tot = {k: sum(int(lay["estimate"].get(k, 0)) for lay in f["layers"]) for k in ("lut", "ff", "dsp", "memory_bits")}
    rs = ",".join(str(lay["reuse"]) for lay in f["layers"])
    return (f"| {name} | {label} | {rs} | {tot['lut']:,} | {tot['ff']:,} | {tot['dsp']:,} | {tot['memory_bits']:,} "
            f"| {f['ii_cycles_estimate']} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compile", action="store_true", help="also qir compile each row and print qir report's estimate")
    ap.add_argument("--synth", action="store_true", help="also Yosys xcup for the jet tagger at R = 1 and 16")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fold_table_"))
    print("| model | R | R per layer | LUT | FF | DSP | memory bits | II |")
    print("|---|---|---|---|---|---|---|---|")
    compiled = []
    for name, path, opts, target in models(work):
        for r in REUSES:
            print(row(name, str(r), plan(path, opts, reuse=r)), flush=True)
            compiled.append((name, str(r), path, opts, {"reuse": r}))
        print(row(name, f"auto, target II {target}", plan(path, opts, target_ii=target)), flush=True)
        compiled.append((name, f"auto {target}", path, opts, {"target_ii": target}))
    if a.compile:
        from qir.flow import compile_model
        from qir.report import report

        print("\n| model | R | compile s | qir report LUT | FF | DSP | memory bits | II | latency |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, label, path, opts, fold in compiled:
            if name.startswith("bnn") and fold.get("reuse") == 1:
                continue  # fully unrolled 784-256-256-10: the case issue #12 starts from (> 10 min)
            out = work / f"{name.split()[0]}_{label.replace(' ', '_')}"
            t0 = time.perf_counter()
            rep = compile_model(path, out, **opts, **fold)
            sec = time.perf_counter() - t0
            e = report(out)["estimate"]
            print(f"| {name} | {label} | {sec:.0f} | {e['luts_estimate']:,} | {e['reg_bits']:,} | {e.get('dsp', 0):,} "
                  f"| {e.get('memory_bits', 0):,} | {rep.get('ii_cycles', 1)} | {rep['latency_cycles']} |", flush=True)
    if a.synth:
        from qir.flow import compile_model
        from qir.report import report

        name, path, opts, _ = models(work)[0]
        print("\n| model | R | Yosys xcup LUT | FF | DSP | BRAM | LUTRAM | s |")
        print("|---|---|---|---|---|---|---|---|")
        for r in (1, 16):
            out = work / f"synth_r{r}"
            compile_model(path, out, reuse=r, **opts)
            s = report(out, synth=["xilinx"])["synth_xilinx"]
            print(f"| {name} | {r} | {s['lut']:,} | {s['ff']:,} | {s['dsp']} | {s.get('bram', 0)} | "
                  f"{s.get('lutram', 0)} | {s['seconds']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
