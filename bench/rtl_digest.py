"""Digest of the compiled output of a fixed set of models: a refactor must leave it unchanged.

    .venv/bin/python bench/rtl_digest.py -o /tmp/digest.json       # write the digest
    .venv/bin/python bench/rtl_digest.py --check /tmp/digest.json  # compare, exit 1 on any change

Each model is compiled with ``qir compile`` (the installed CLI of this checkout) into a temporary
directory; the sha256 of every ``rtl/*.v``, every ``tb/*`` and ``lowered.mlir`` is printed one per
line (``<model>/<file> <sha256>``).  The models: the bundled QKeras/Keras/ONNX models of
``tests/data`` and the binary/ternary/BNN MLPs of ``tests/mlp_models.py`` with the default pipeline,
plus a few style variants (mac, a table softmax), IR-level conv/pool cases of
``tests/test_rtl_layers.py`` and, for ``--io stream``, KERAS_conv1d_small and the IR cases of
``tests/test_stream.py``, so that every RTL generator is covered.
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
    models.append(("KERAS_conv1d_small_stream", DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json",
                   [*FLOAT, "--io", "stream"]))
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
    for case, text in sorted(cases.items()):
        module = run_passes(parse_module(text), "qir-infer-widths")
        run_passes(module, STREAM_PIPELINE)
        design = generate(get_model(module))
        for name, body in sorted(design.files.items()):
            out[f"stream_{case}/rtl/{name}"] = hashlib.sha256(body.encode()).hexdigest()
        out[f"stream_{case}/lowered.mlir"] = hashlib.sha256(print_module(module).encode()).hexdigest()
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
            files.append(od / "lowered.mlir")
            for f in files:
                key = f"{name}/{f.relative_to(od)}"
                out[key] = hashlib.sha256(f.read_bytes()).hexdigest()
                print(f"{key} {out[key]}", flush=True)
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
