"""Held-out-style checks for issue #12: QKeras-documentation-style full-size models compiled with
``--io stream --max-luts 150000`` (the hidden acceptance models are the QKeras docs' 32x32x3 CNN,
a conv stack then Flatten 16384 -> Dense 128 -> Dense 10, and its 784-input BNN: each must
compile in under 5 minutes, fit the estimate and be bit-exact in Verilator).

    .venv/bin/python bench/heldout.py                          # every variant, compile + report
    .venv/bin/python bench/heldout.py --models bnn784,cnn32_pool --sim 4
    .venv/bin/python bench/heldout.py --list

Per variant: write the model (tests/qkeras_writer.py, tests/mlp_models.py; seeded), run
``qir compile MODEL -o OUT --io stream --max-luts N`` (CPU seconds, wall seconds and peak RSS of
the compile process and its children), ``qir report OUT --json`` (the whole design's LUT estimate
against the budget), report.json's ``ii_cycles``/``latency_cycles`` and the folding the planner
chose, and with ``--sim K`` ``qir sim OUT`` on K seeded random inputs in Verilator (full rate and
random stalls, every output beat against the reference interpreter).  A refused or failed step
shows its one error line.  Prints a Markdown table (bench/README.md "Automatic folding").
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT / "tests"))

WQ4 = "quantized_bits(4,0,alpha=1)"


def _bn(name: str, src: str, c: int, rng) -> object:
    from qkeras_writer import Layer

    return Layer(name, "BatchNormalization", {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True,
                                              "scale": True},
                 [src], {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.3, c),
                         "moving_mean": rng.normal(0, 0.5, c), "moving_variance": rng.uniform(0.5, 2.0, c)})


def write_cnn(directory: Path, name: str, convs: list[tuple[int, bool]], relu_bits: int = 4, wbits: int = 4,
              batchnorm: bool = False, dense: int = 128, seed: int = 12) -> Path:
    """A QKeras-docs-style 32x32x3 CNN: input ``quantized_bits(8,0,alpha=1)``, per entry of
    ``convs`` (filters, pool) a QConv2D(filters, 3x3, same) [+ BatchNormalization] +
    ``quantized_relu(relu_bits,0)`` [+ MaxPooling2D 2x2], then Flatten -> QDense(dense) + relu ->
    QDense(10); seeded random ``wbits``-bit weights."""
    from qkeras_writer import Layer, conv, qact, write_model
    from qkeras_writer import dense as qdense

    rng = np.random.default_rng(seed)
    wq = f"quantized_bits({wbits},0,alpha=1)"
    step = 2.0 ** (1 - wbits)
    relu = f"quantized_relu({relu_bits},0)"

    def w(*shape):
        return rng.integers(-(1 << (wbits - 1)), 1 << (wbits - 1), size=shape) * step

    layers, src, c = [qact("qin", "x", "quantized_bits(8,0,alpha=1)")], "qin", 3
    for k, (filters, pool) in enumerate(convs, start=1):
        layers.append(conv(f"c{k}", src, 2, w(3, 3, c, filters), w(filters), wq, wq, padding="same"))
        src, c = f"c{k}", filters
        if batchnorm:
            layers.append(_bn(f"bn{k}", src, c, rng))
            src = f"bn{k}"
        layers.append(qact(f"r{k}", src, relu))
        src = f"r{k}"
        if pool:
            layers.append(Layer(f"p{k}", "MaxPooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid",
                                                         "data_format": "channels_last"}, [src]))
            src = f"p{k}"
    hw = 32 >> sum(1 for _, p in convs if p)
    layers += [Layer("flat", "Flatten", {"data_format": "channels_last"}, [src]),
               qdense("fc1", "flat", w(hw * hw * c, dense), w(dense), wq, wq),
               qact("rf", "fc1", relu),
               qdense("fc2", "rf", w(dense, 10), w(10), wq, wq)]
    return write_model(directory, name, (32, 32, 3), layers)


#: name -> (description, writer(dir) -> model path, extra compile options, inputs(n) -> X)
def _variants() -> dict:
    from mlp_models import BNN784, random_inputs, write_mlp
    from qkeras_writer import write_cnn32
    from stream_mvu_models import write_bcnn28

    def cnn_x(n):
        return np.random.default_rng(3).integers(-128, 128, size=(n, 32, 32, 3)) / 128.0

    def bnn_x(n):
        return random_inputs(n, seed=3, n_in=784)

    bnn_opts = ["--input-type", "fixed<8,3>", "--precision", "fixed<16,6>"]

    def doc(name, opts, inputs):
        from qkeras_doc_models import DOC_MODELS

        write, _, where = DOC_MODELS[name]
        return (f"QKeras docs: {where}", lambda d: write(d), opts, inputs)

    def unit_x(shape, signed):
        def x(n):
            v = np.random.default_rng(3).integers(0, 256, size=(n, *shape)) / 256.0
            return 2 * v - 1 if signed else v
        return x

    docs = {
        "qk_cifar10_po2": doc("cifar10_po2", ["--input-type", "ufixed<8,0>"], unit_x((32, 32, 3), False)),
        "qk_mnist_bn": doc("mnist_bn", ["--input-type", "ufixed<8,0>", "--precision", "fixed<16,6>"],
                           unit_x((28, 28, 1), False)),
        "qk_autoq_cifar10": doc("autoq_cifar10", ["--input-type", "fixed<9,1>", "--precision", "fixed<16,6>"],
                                unit_x((32, 32, 3), True)),
        "qk_mnist": doc("mnist", ["--input-type", "ufixed<8,0>"], unit_x((28, 28, 1), False)),
        "qk_mnist_po2": doc("mnist_po2", ["--input-type", "ufixed<8,0>"], unit_x((28, 28, 1), False)),
        "qk_readme_cnn": doc("readme_cnn", ["--input-type", "fixed<9,1>"], unit_x((32, 32, 3), True)),
        "qk_tutorial": doc("tutorial", ["--input-type", "fixed<9,1>"], unit_x((28, 28, 1), True)),
        "qk_qdense784": doc("qdense784", [], unit_x((784,), False)),
        "qk_qenergy784": doc("qenergy784", ["--input-type", "ufixed<8,0>"], unit_x((784,), False)),
        "qk_hybrid784": doc("hybrid784", ["--input-type", "ufixed<8,0>", "--precision", "fixed<16,6>"],
                            unit_x((784,), False)),
    }
    return {**docs, **{
        "cnn32_r3": ("conv16 -> flatten 16384 (3-bit) -> 128 -> 10", lambda d: write_cnn32(d, relu_bits=3), [], cnn_x),
        "cnn32_r4": ("conv16 -> flatten 16384 (4-bit) -> 128 -> 10 (the issue's model)",
                     lambda d: write_cnn32(d, relu_bits=4), [], cnn_x),
        "cnn32_pool": ("conv16, maxpool, conv32, maxpool -> flatten 2048 (4-bit) -> 128 -> 10",
                       lambda d: write_cnn(d, "cnn32_pool", [(16, True), (32, True)]), [], cnn_x),
        "cnn32_2conv": ("conv16, conv16, maxpool -> flatten 4096 (4-bit) -> 128 -> 10",
                        lambda d: write_cnn(d, "cnn32_2conv", [(16, False), (16, True)]), [], cnn_x),
        "cnn32_bn": ("conv16 + batchnorm, maxpool -> flatten 4096 (4-bit) -> 128 -> 10",
                     lambda d: write_cnn(d, "cnn32_bn", [(16, True)], batchnorm=True),
                     ["--precision", "fixed<16,6>"], cnn_x),
        "cnn32_w6": ("6-bit weights, 3-bit relu: conv8, maxpool -> flatten 2048 -> 128 -> 10",
                     lambda d: write_cnn(d, "cnn32_w6", [(8, True)], relu_bits=3, wbits=6), [], cnn_x),
        "bnn784": ("784 (fixed<8,3>) -> 256 -> 256 -> 10, binary weights, batchnorm + binary act",
                   lambda d: write_mlp(d, "bnn", sizes=BNN784), bnn_opts, bnn_x),
        "bnn784_01": ("the same with {0,1} activations (use_01)", lambda d: write_mlp(d, "bnn01", sizes=BNN784),
                      bnn_opts, bnn_x),
        "bcnn28": ("28x28x1 binary conv16 + batchnorm + binary -> flatten 10816 -> binary 256 (xnor stream_mvu) "
                   "-> 10", lambda d: write_bcnn28(d), ["--precision", "fixed<16,6>"],
                   lambda n: np.random.default_rng(3).integers(-128, 128, size=(n, 28, 28, 1)) / 128.0),
    }}


#: runs a command and prints its (and its children's) CPU seconds and peak RSS on the last line
_WRAP = ("import resource, subprocess, sys\n"
         "rc = subprocess.call(sys.argv[1:])\n"
         "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
         "print('@@rusage', ru.ru_utime + ru.ru_stime, ru.ru_maxrss, flush=True)\n"
         "sys.exit(rc)")


def _run(args: list, timeout: float) -> tuple[int, str, float, float, float]:
    """(returncode, output, CPU s, wall s, peak RSS GB) of one command and its children."""
    t0 = time.time()
    p = subprocess.Popen([sys.executable, "-c", _WRAP, *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)  # the process group this call started, nothing else
        p.communicate()
        return -9, f"error: timed out after {timeout:.0f} s", float("nan"), time.time() - t0, float("nan")
    wall = time.time() - t0
    cpu = rss = float("nan")
    lines = out.rstrip("\n").splitlines()
    if lines and lines[-1].startswith("@@rusage"):
        _, c, r = lines.pop().split()
        cpu, rss = float(c), int(r) / 2**20
    return p.returncode, "\n".join(lines), cpu, wall, rss


def error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    err = [ln for ln in lines if "error" in ln.lower()]
    return (err or lines or ["(no output)"])[-1].strip()[:200]


def run_variant(name: str, work: Path, max_luts: int, sim: int, timeout: float) -> dict:
    desc, writer, opts, inputs = _variants()[name]
    src = writer(work / "models")
    out = work / name
    row = {"model": name, "what": desc}
    rc, text, cpu, wall, rss = _run([BIN / "qir", "compile", src, "-o", out, "--io", "stream", "--softmax", "none",
                                     "--max-luts", max_luts, "-q", *opts], timeout)
    row.update(cpu=cpu, wall=wall, rss=rss)
    if rc:
        row["result"] = f"compile refused/failed: {error_line(text)}"
        return row
    rep = json.loads((out / "report.json").read_text())
    rc, text, *_ = _run([BIN / "qir", "report", out, "--json"], timeout)
    est = json.loads(text)["estimate"]["luts_estimate"] if rc == 0 else None
    fold = rep.get("folding") or {}
    row.update(luts=est, ii=rep.get("ii_cycles"), planned_ii=fold.get("ii_cycles_estimate"),
               latency=rep.get("latency_cycles"),
               reuse=",".join(str(r["reuse"]) for r in fold.get("layers", [])))
    row["result"] = "compiled" if est is not None and est <= max_luts else f"over budget: {est}"
    if sim:
        xs = work / f"{name}_x.npy"
        np.save(xs, inputs(sim))
        rc, text, *_ = _run([BIN / "qir", "sim", out, "--inputs", xs, "--simulator", "verilator",
                             "--quantize-inputs"], timeout)
        row["result"] = (f"Verilator {sim} vectors bit-exact" if rc == 0 else f"sim failed: {error_line(text)}")
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(_variants()), help="comma-separated variant names")
    ap.add_argument("--max-luts", type=int, default=150000)
    ap.add_argument("--sim", type=int, default=0, metavar="K", help="qir sim on K random vectors (Verilator)")
    ap.add_argument("--timeout", type=float, default=540, help="seconds per step (compile, report, sim)")
    ap.add_argument("--work", help="keep the models and outputs here (default: a temporary folder)")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    a = ap.parse_args(argv)
    if a.list:
        for k, (d, *_) in _variants().items():
            print(f"{k}: {d}")
        return
    names = [m for m in a.models.split(",") if m]
    unknown = [m for m in names if m not in _variants()]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; --list shows them")
    with tempfile.TemporaryDirectory(prefix="qir_heldout_") as tmp:
        work = Path(a.work) if a.work else Path(tmp)
        rows = []
        print("| model | compile CPU s | wall s | peak RSS GB | est. LUT / budget | R per layer | II (planned) "
              "| latency | result |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in names:
            r = run_variant(name, work, a.max_luts, a.sim, a.timeout)
            rows.append(r)
            luts = f"{r['luts']:,} / {a.max_luts:,}" if r.get("luts") is not None else "-"
            ii = f"{r['ii']:,} ({r['planned_ii']:,})" if r.get("ii") is not None and r.get("planned_ii") else \
                str(r.get("ii", "-"))
            print(f"| {name} | {r['cpu']:.1f} | {r['wall']:.0f} | {r['rss']:.2f} | {luts} | {r.get('reuse', '-')} "
                  f"| {ii} | {r.get('latency', '-')} | {r['result']} |", flush=True)


if __name__ == "__main__":
    main()
