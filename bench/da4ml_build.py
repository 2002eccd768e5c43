"""Build one model with da4ml 0.6.0 (runs inside bench/.venv-da4ml, never imports qir).

Input: a JSON layer chain written by ``bench/run.py`` from qir's imported ``net.mlir``, so both
compilers see the very same integer weights, biases and activation quantizers:

    {"name": ..., "input": {"signed": 1, "width": 16, "integer": 6, "shape": [16]},
     "ops": [{"op": "dense", "w": [[...]], "w_frac": 5, "b": [...], "b_frac": 5},
             {"op": "relu"}, {"op": "scale", "s": [...], "s_frac": 10, "t": [...], "t_frac": 10},
             {"op": "quantize", "signed": 0, "width": 6, "integer": 0,
              "rounding": "rnd_conv", "overflow": "sat"}, ...]}

Output (in OUTDIR): da4ml's Verilog project (``src/*.v``), ``da4ml.json`` with the cost figures
and build seconds, and ``y_real.npy`` (outputs of da4ml's own bit-exact model on ``--x``).

da4ml's tracer rounds only with TRN and RND (half up).  QKeras rounds half to even (qir's
``rnd_conv``); ``--rounding exact`` (default) builds that exactly from da4ml primitives:
rne_f(x) = trn_f(x + 2^-(f+1) - 2^-F + 2^(f-F) * bit_f(x)), with bit_f(x) = x mod 2^(1-f)
truncated to f bits (the kept LSB, moved down to the source LSB).  ``--rounding rnd`` uses RND instead
(cheaper, differs from QKeras on exact ties).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from da4ml.codegen import RTLModel
from da4ml.trace import FixedVariableArrayInput, comb_trace
from da4ml.trace.ops import quantize, relu

_OVERFLOW = {"wrap": "WRAP", "sat": "SAT", "sat_sym": "SAT_SYM"}


def _fracs_of(v) -> np.ndarray:
    """Fractional bits of every element of a traced array."""
    return np.asarray(v.kif)[2].astype(np.int64)


def _quantize(x, q: dict, rounding: str):
    k, width, integer = int(q["signed"]), int(q["width"]), int(q["integer"])
    i, f = integer - k, width - integer
    ovf = _OVERFLOW[q["overflow"]]
    mode = q["rounding"]
    if mode == "trn":
        return quantize(x, k, i, f, ovf, "TRN")
    if mode == "rnd" or (mode == "rnd_conv" and rounding == "rnd"):
        return quantize(x, k, i, f, ovf, "RND")
    if mode == "rnd_conv":
        big_f = _fracs_of(x)
        # elements already on the target grid need no rounding: their correction is 0
        corr = np.where(big_f > f, 2.0 ** (-f - 1) - 2.0 ** (-big_f.astype(np.float64)), 0.0)
        bit = quantize(x, 0, 1 - f, f, "WRAP", "TRN")
        y = x + corr + bit * np.where(big_f > f, 2.0 ** (f - big_f.astype(np.float64)), 0.0)
        return quantize(y, k, i, f, ovf, "TRN")
    raise SystemExit(f"da4ml_build: rounding {mode!r} has no da4ml equivalent here")


def trace(spec: dict, rounding: str):
    t = spec["input"]
    k, width, integer = int(t["signed"]), int(t["width"]), int(t["integer"])
    inp = FixedVariableArrayInput(tuple(t["shape"]))
    x = quantize(inp, k, integer - k, width - integer)
    for op in spec["ops"]:
        if op["op"] == "dense":
            w = np.asarray(op["w"], dtype=np.float64) * 2.0 ** -op["w_frac"]
            x = x @ w
            if op.get("b") is not None:
                x = x + np.asarray(op["b"], dtype=np.float64) * 2.0 ** -op["b_frac"]
        elif op["op"] == "relu":
            x = relu(x)
        elif op["op"] == "scale":  # per-channel x * s + t, exact
            if op.get("s") is not None:
                x = x * (np.asarray(op["s"], dtype=np.float64) * 2.0 ** -op["s_frac"])
            if op.get("t") is not None:
                x = x + np.asarray(op["t"], dtype=np.float64) * 2.0 ** -op["t_frac"]
        elif op["op"] == "quantize":
            x = _quantize(x, op, rounding)
        else:
            raise SystemExit(f"da4ml_build: unsupported op {op['op']!r}")
    return inp, x


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", help="layer-chain JSON")
    ap.add_argument("outdir")
    ap.add_argument("--latency-cutoff", type=float, default=5.0)
    ap.add_argument("--rounding", choices=("exact", "rnd"), default="exact")
    ap.add_argument("--x", help="input mantissas .npy (N, n_in) to run da4ml's own model on")
    args = ap.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    inp, y = trace(spec, args.rounding)
    comb = comb_trace(inp, y)
    t_trace = time.perf_counter() - t0
    model = RTLModel(comb, spec["name"], out, flavor="verilog", latency_cutoff=args.latency_cutoff,
                     print_latency=False)
    model.write()
    t_total = time.perf_counter() - t0
    pipe = model._pipe
    info = {
        "top": f"{spec['name']}_wrapper",
        "cost_adder_bits": float(comb.cost),
        "adder_levels": float(max(comb.out_latency)) if len(comb.out_latency) else 0.0,
        "latency_cycles": len(pipe[0]) if pipe is not None else 0,
        "reg_bits": int(pipe.reg_bits) if pipe is not None else 0,
        "trace_seconds": round(t_trace, 3),
        "build_seconds": round(t_total, 3),
        "rounding": args.rounding,
        "inp_kifs": [list(map(int, v)) for v in comb.inp_kifs],
        "out_kifs": [list(map(int, v)) for v in comb.out_kifs],
    }
    if args.x:
        t = spec["input"]
        x = np.load(args.x).astype(np.float64) * 2.0 ** -(t["width"] - t["integer"])
        info["predict_outputs"] = str(out / "y_real.npy")
        t1, c1 = time.perf_counter(), time.process_time()
        np.save(out / "y_real.npy", np.asarray(comb.predict(x), dtype=np.float64))
        # bench/run.py leaves this out of da4ml's compile time
        info["predict_seconds"] = round(time.perf_counter() - t1, 3)
        info["predict_cpu"] = round(time.process_time() - c1, 3)
    (out / "da4ml.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps({k: v for k, v in info.items() if not k.endswith("kifs")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
