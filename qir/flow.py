"""The compile flow as a library: import a model, run pass pipelines, write an output directory.

``qir compile`` is ``compile_model``; each step is also a public function so scripts, tests and
the CLI share one implementation.
"""
from __future__ import annotations

import json
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import DiagnosticException, VerifyException

from qir.errors import QirError
from qir.fixed import Fixed
from qir.ir import get_model, make_context, print_module, verify
from qir.lowering import DEFAULT_PIPELINE, get_all_passes
from qir.names import legalize
from qir.precision import PrecisionConfig

#: Model file suffixes and the frontend that reads them.
KERAS_SUFFIXES = (".json", ".h5", ".hdf5", ".keras")
ONNX_SUFFIXES = (".onnx",)


def import_model(path: str | Path, *, weights: str | Path | None = None, input_type: Fixed | None = None,
                 softmax: str = "keep", precision: Fixed | PrecisionConfig | None = None,
                 approximate: int = 0, ptq: str = "reject") -> ModuleOp:
    """Read a model file with the frontend its suffix names.

    ``approximate``: 0 = exact only; N > 0 accepts non-power-of-two scales (ONNX requantize
    multipliers with N significant bits, QKeras ``alpha='auto'``).  ``ptq``: Keras 3 int8/int4
    handling ("reject", "weight-only", "emulate")."""
    p = Path(path)
    if not p.is_file():
        raise QirError("no such model file", where=str(p))
    suffix = p.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        from qir.frontends.keras import import_keras

        if ptq not in ("reject", "weight-only", "emulate"):
            raise QirError(f"--ptq {ptq!r} is not supported; use 'reject', 'weight-only' or 'emulate'", where=str(p))
        module = import_keras(p, weights=weights, input_type=input_type, softmax=softmax, precision=precision,
                              approximate=bool(approximate), ptq=ptq)
    elif suffix in ONNX_SUFFIXES:
        try:
            from qir.frontends.onnx import import_onnx
        except ImportError:
            raise QirError("the ONNX frontend is not available in this version of qir", where=str(p)) from None
        if weights is not None:
            raise QirError("--weights applies to Keras .json models; an ONNX file holds its weights",
                           where=str(p))
        module = import_onnx(p, input_type=input_type, softmax=softmax, precision=precision,
                             approximate=approximate or False)
    else:
        raise QirError(f"unknown model format {suffix!r}; qir reads {', '.join(KERAS_SUFFIXES + ONNX_SUFFIXES)}",
                       where=str(p))
    if isinstance(precision, PrecisionConfig):
        precision.annotate_styles(module, precision.source)
    verify(module, str(p))
    return module


def parse_pipeline(spec: str, where: str = "<pipeline>"):
    """The xDSL ``PassPipeline`` of a textual spec; a bad spec is one QirError line."""
    from xdsl.passes import PassPipeline
    from xdsl.utils.exceptions import ArgSpecParseError  # a BaseException, not an Exception

    try:
        return PassPipeline.parse_spec(get_all_passes(), spec)
    except (ValueError, DiagnosticException) as e:
        raise QirError(f"bad pass pipeline {spec!r}: {e}", where=where) from None
    except ArgSpecParseError as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        pos = next((ln.split(":", 1)[1] for ln in lines if ln.startswith("pass-pipeline:")), "?")
        raise QirError(f"bad pass pipeline {spec!r}: {lines[-1].strip()} at {pos}; quote option values "
                       'that hold ":" or ";", e.g. layers="fc1:mac;fc2:xnor"', where=where) from None


def run_passes(module: ModuleOp, spec: str, where: str = "<pipeline>") -> ModuleOp:
    """Apply a textual pass pipeline (``qir-opt -p`` syntax) to ``module`` in place."""
    pipeline = parse_pipeline(spec, where)
    try:
        pipeline.apply(make_context(), module)
    except (VerifyException, DiagnosticException) as e:
        raise QirError(f"pass pipeline produced invalid IR: {e}", where=where) from None
    verify(module, where)
    return module


def _register_bits(model, latency: int) -> int:
    """Flip-flops of the design: pipeline registers (qir.reg banks and the registered copies
    inside adder graphs) plus the valid chain."""
    from qir.report import estimate

    return estimate(model)["reg_bits"] + latency




def compile_model(model_path: str | Path, outdir: str | Path, *, pipeline: str = DEFAULT_PIPELINE,
                  top: str | None = None, post=None, **import_options) -> dict:
    """Import, lower, generate RTL and testbenches into ``outdir``; returns the report.

    Everything is written to a temporary directory beside ``outdir`` and moved into place at the
    end, so a failure leaves no half-written output.  ``post(tmpdir, report)``, if given, runs
    after the RTL and testbenches are written and returns entries to add to the report
    (``qir.firmware.write_firmware``).  An existing ``outdir`` is replaced only if it
    is missing, empty or holds only qir's own files (``qir.safety.check_output_dir``: the files
    listed in its ``.qir-manifest`` and the ``sim/`` build cache); a user's file there is an error.
    """
    from qir.safety import check_output_dir, output_dir

    out = Path(outdir)
    check_output_dir(out)  # before the work: a folder with a user's files is refused at once
    from qir.progress import note

    note(f"importing {Path(model_path).name}")
    net = import_model(model_path, **import_options)
    lowered = net.clone()
    note("running the pass pipeline")
    run_passes(lowered, pipeline)
    model = get_model(lowered)
    from qir.rtl import generate

    note("generating RTL (Amaranth)")
    design = generate(model, top=legalize(top or model.sym_name.data))
    note("writing Verilog and testbenches")
    report = {
        "top": design.top,
        "latency_cycles": design.latency,
        "register_bits": _register_bits(model, design.latency),
        "ports": design.ports,
        "model": str(Path(model_path).name),
        "pipeline": pipeline,
        "rtl": sorted(f"rtl/{name}" for name in design.files),
    }
    with output_dir(out) as tmp:
        (tmp / "net.mlir").write_text(print_module(net))
        (tmp / "lowered.mlir").write_text(print_module(lowered))
        (tmp / "rtl").mkdir()
        for name, text in sorted(design.files.items()):
            (tmp / "rtl" / name).write_text(text)
        from qir.sim.testbench import write_testbenches

        write_testbenches(tmp, report)
        if post is not None:
            report.update(post(tmp, report))
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
