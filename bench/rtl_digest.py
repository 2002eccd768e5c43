"""Digest of the compiled output of a fixed set of models: a refactor must leave it unchanged.

    .venv/bin/python bench/rtl_digest.py -o /tmp/digest.json       # write the digest
    .venv/bin/python bench/rtl_digest.py --check /tmp/digest.json  # compare, exit 1 on any change

Each model is compiled with ``qir compile`` (the installed CLI of this checkout) into a temporary
directory; the sha256 of every ``rtl/*.v``, every ``tb/*`` and ``lowered.mlir`` is printed one per
line (``<model>/<file> <sha256>``), and of ``net.mlir`` and ``report.json``; ``<model>/plan`` is
report.json's plan in clear (the R per folded layer, ``ii_cycles``, ``latency_cycles``), so that a
change of the folding choice or the cycle model's figures reads as such. The models: the bundled
QKeras/Keras/ONNX models of ``tests/data`` and the binary/ternary/BNN MLPs of
``tests/mlp_models.py`` with the default pipeline, plus a few style variants (mac, a table
softmax), IR-level conv/pool cases of ``tests/test_rtl_layers.py`` and, for ``--io stream``,
KERAS_conv1d_small and the IR cases of ``tests/test_stream.py``, so that every RTL generator is
covered; the stream cycle model and stage graph (``qir.stream``) through stream designs with
folded layers (``--reuse``), a padded window, joins (the Add / Concatenate branch nets of
tests/test_stream.py, the RESIDUAL IR case), a ``qir.stream_mvu`` (tests/stream_mvu_models.py) and
planned designs (``--target-ii``, ``--max-luts``, and ``qir-fold-auto{target-ii=N}`` on the IR
cases).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
QIR = Path(sys.executable).parent / "qir"
FLOAT = ["--precision", "fixed<18,8>", "--input-type", "fixed<16,6>", "--softmax", "none"]
MAC = "qir-infer-widths,qir-lower-conv{style=mac},qir-lower-dense{style=mac},qir-pipeline"


def _models(work: Path) -> list[tuple[str, Path, list[str]]]:
    sys.path.insert(0, str(ROOT / "tests"))
    import mlp_models  # noqa: E402  (the test suite's own generator, fixed seeds)

    models = [
        ("qkeras_3layer", DATA / "qkeras_3layer" / "qkeras_3layer.json",
         ["--input-type", "fixed<16,6>", "--softmax", "none"]),
        ("qkeras_3layer_mac", DATA / "qkeras_3layer" / "qkeras_3layer.json",
         ["--input-type", "fixed<16,6>", "--softmax", "none", "--pipeline", MAC]),
        ("qkeras_mnist_dense", DATA / "qkeras_mnist_dense" / "qkeras_mnist_dense.json",
         ["--input-type", "ufixed<9,1>", "--softmax", "none"]),
        ("KERAS_conv1d_small", DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json", FLOAT),
        ("KERAS_3layer_softmax_table", DATA / "keras_3layer" / "KERAS_3layer.json",
         ["--precision", "fixed<18,8>", "--input-type", "fixed<16,6>", "--softmax", "table"]),
        ("three_layer_keras_onnx", DATA / "three_layer_keras_onnx" / "three_layer_keras.onnx", FLOAT),
    ]
    for kind in mlp_models.KINDS:
        js = mlp_models.write_mlp(work / "mlp", kind)
        opts = ["--input-type", mlp_models.INPUT_TYPE]
        if kind.startswith("bnn"):
            opts += ["--precision", mlp_models.BNN_PRECISION]
        models.append((f"{kind}_mlp", js, opts))
    models.append(("bnn_mlp_mac", work / "mlp" / "bnn_mlp.json",
                   ["--input-type", mlp_models.INPUT_TYPE, "--precision", mlp_models.BNN_PRECISION, "--pipeline", MAC]))
    c1d = DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json"
    models.append(("KERAS_conv1d_small_stream", c1d, [*FLOAT, "--io", "stream"]))
    # the stream cycle model and stage graph: folded maps after padded windows, planned designs
    models += [("KERAS_conv1d_small_stream_reuse3", c1d, [*FLOAT, "--io", "stream", "--reuse", "3"]),
               ("KERAS_conv1d_small_stream_tii40", c1d, [*FLOAT, "--io", "stream", "--target-ii", "40"]),
               ("KERAS_conv1d_small_stream_tii100", c1d, [*FLOAT, "--io", "stream", "--target-ii", "100"]),
               ("KERAS_conv1d_small_stream_maxluts2500", c1d, [*FLOAT, "--io", "stream", "--max-luts", "2500"]),
               ("KERAS_conv1d_small_par_tii4", c1d, [*FLOAT, "--target-ii", "4"])]
    import stream_mvu_models  # noqa: E402  (qir.stream_mvu: conv -> relu -> Flatten -> dense)

    for kind in ("mac", "po2"):
        js = stream_mvu_models.write_small_cnn(work / "scnn", kind=kind)
        models += [(f"scnn_{kind}_stream_reuse2", js, ["--io", "stream", "--reuse", "2"]),
                   (f"scnn_{kind}_stream_tii252", js, ["--io", "stream", "--target-ii", str(36 * 7)])]
    from test_stream import _qkeras_branches  # noqa: E402  (a fork, a FIFO and a join)

    (work / "branch").mkdir(exist_ok=True)
    for merge in ("Add", "Concatenate"):
        js = _qkeras_branches(work / "branch", merge)
        models += [(f"branch_{merge.lower()}_stream", js, ["--io", "stream"]),
                   (f"branch_{merge.lower()}_stream_tii120", js, ["--io", "stream", "--target-ii", "120"]),
                   (f"branch_{merge.lower()}_stream_maxluts3000", js, ["--io", "stream", "--max-luts", "3000"])]
    return models


def _ir_cases() -> dict[str, str]:
    """Verilog and lowered IR of the layer-level IR cases of tests/test_rtl_layers.py (qir compile
    reads model files only, so these go through the library: default pipeline, ``generate``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from qir.lowering import DEFAULT_PIPELINE
    from qir.rtl import generate
    from test_rtl_layers import CASES  # noqa: E402

    from qir.ir import get_model, parse_module, print_module

    try:
        from qir.flow import run_passes
    except ImportError:  # before the compile flow was renamed qir.flow
        from qir.pipeline import run_passes
    out = {}
    for case in sorted(CASES):
        module = parse_module(CASES[case])
        run_passes(module, DEFAULT_PIPELINE)
        model = get_model(module)
        design = generate(model)
        for name, text in sorted(design.files.items()):
            out[f"ir_{case}/rtl/{name}"] = hashlib.sha256(text.encode()).hexdigest()
        out[f"ir_{case}/lowered.mlir"] = hashlib.sha256(print_module(module).encode()).hexdigest()
    try:  # --io stream: the IR cases of tests/test_stream.py (windows, maps, collect, joins)
        import test_stream  # noqa: E402
        from qir.lowering import STREAM_PIPELINE
    except ImportError:
        return out
    names = ("CNN", "CNN1D", "BCONV", "POOL_TAIL", "RESIDUAL")
    cases = {k.lower(): getattr(test_stream, k) for k in names if hasattr(test_stream, k)}
    runs = [(case, text, STREAM_PIPELINE) for case, text in sorted(cases.items())]
    # planned: the stage graph and cycle model inside qir-fold-auto (a join: RESIDUAL)
    runs += [(f"{case}_tii{n}", cases[case],
              STREAM_PIPELINE.replace("qir-fold-auto", f"qir-fold-auto{{target-ii={n}}}"))
             for case, n in (("residual", 90), ("cnn", 200), ("cnn1d", 40)) if case in cases]
    for case, text, pipeline in runs:
        module = run_passes(parse_module(text), "qir-infer-widths")
        head, tail = pipeline.split(",qir-lower-dense", 1)  # the plan: R on the layer ops after qir-fold-auto
        run_passes(module, head)
        reuse = [o.attributes["reuse"].value.data for o in module.walk() if "reuse" in o.attributes]
        run_passes(module, "qir-lower-dense" + tail)
        design = generate(get_model(module))
        for name, body in sorted(design.files.items()):
            out[f"stream_{case}/rtl/{name}"] = hashlib.sha256(body.encode()).hexdigest()
        out[f"stream_{case}/lowered.mlir"] = hashlib.sha256(print_module(module).encode()).hexdigest()
        stream = {k: v for k, v in getattr(design, "stream", {}).items() if k != "timing_graph"}
        out[f"stream_{case}/stream.json"] = hashlib.sha256(
            json.dumps({"latency": design.latency, **stream}, sort_keys=True, default=str).encode()).hexdigest()
        out[f"stream_{case}/plan"] = json.dumps(
            {"reuse": reuse, "ii_cycles": stream.get("ii_cycles"), "latency_cycles": design.latency}, sort_keys=True)
    return out


def digest() -> dict[str, str]:
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="qir_digest_") as tmp:
        work = Path(tmp)
        for name, model, opts in _models(work):
            od = work / "out" / name
            r = subprocess.run([str(QIR), "compile", str(model), "-o", str(od), *opts], capture_output=True, text=True)
            if r.returncode != 0:
                out[f"{name}/ERROR"] = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
                print(f"{name}/ERROR {out[f'{name}/ERROR']}", flush=True)
                continue
            files = sorted((od / "rtl").glob("*.v")) + sorted(p for p in (od / "tb").rglob("*") if p.is_file())
            files += [od / "lowered.mlir", od / "net.mlir", od / "report.json"]
            for f in files:
                key = f"{name}/{f.relative_to(od)}"
                out[key] = hashlib.sha256(f.read_bytes()).hexdigest()
                print(f"{key} {out[key]}", flush=True)
            rep = json.loads((od / "report.json").read_text())
            folding = rep.get("folding") or {}
            out[f"{name}/plan"] = json.dumps(
                {"reuse": {r["layer"]: r["reuse"] for r in folding.get("layers", [])},
                 "ii_cycles": rep.get("ii_cycles"), "latency_cycles": rep.get("latency_cycles")}, sort_keys=True)
            print(f"{name}/plan {out[f'{name}/plan']}", flush=True)
    for key, h in _ir_cases().items():
        out[key] = h
        print(f"{key} {h}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", help="write the digest (JSON) here")
    ap.add_argument("--check", metavar="FILE", help="compare with a saved digest; exit 1 on any difference")
    args = ap.parse_args()
    d = digest()
    if args.output:
        Path(args.output).write_text(json.dumps(d, indent=1, sort_keys=True) + "\n")
    if args.check:
        ref = json.loads(Path(args.check).read_text())
        diff = sorted(k for k in set(ref) | set(d) if ref.get(k) != d.get(k))
        for k in diff:
            print(f"DIFFERS {k}: {ref.get(k, 'missing')} -> {d.get(k, 'missing')}")
        print(f"rtl_digest: {len(d)} files, {len(diff)} differ from {args.check}")
        return 1 if diff else 0
    errors = [k for k in d if k.endswith("/ERROR")]
    print(f"rtl_digest: {len(d)} files" + (f", {len(errors)} models failed to compile" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
