"""The compile flow as a library: import a model, run pass pipelines, write an output directory.

``qir compile`` is ``compile_model``; each step is also a public function so scripts, tests and
the CLI share one implementation.
"""
from __future__ import annotations

import json
import os
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
    handling ("reject", "weight-only", "emulate").  ``path`` may also be a live Keras model or an
    ``onnx.ModelProto`` (``qir.api.import_object``), or a ``.mlir`` file written by ``qir import``
    or ``qir-opt`` (``qir.api.read_net``)."""
    options = dict(weights=weights, input_type=input_type, softmax=softmax, precision=precision,
                   approximate=approximate, ptq=ptq)
    if not isinstance(path, (str, os.PathLike)):
        from qir.api import import_object

        return import_object(path, **options)
    p = Path(path)
    if p.suffix.lower() == ".mlir":
        from qir.api import read_net

        return read_net(p, **options)
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


def run_passes(module: ModuleOp, spec, where: str = "<pipeline>") -> ModuleOp:
    """Apply a textual pass pipeline (``qir-opt -p`` syntax, or a parsed ``PassPipeline``) to
    ``module`` in place."""
    pipeline = parse_pipeline(spec, where) if isinstance(spec, str) else spec
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




def fold_spec(spec: str, reuse: int | None = None, target_ii: int | None = None,
              max_luts: int | None = None) -> str:
    """``spec`` with ``--reuse``/``--target-ii``/``--max-luts`` as options of its ``qir-fold-auto``
    (issue #12); one error when the pipeline has no such pass or the values are bad."""
    import re

    given = {k: v for k, v in (("reuse", reuse), ("target-ii", target_ii), ("max-luts", max_luts)) if v is not None}
    if not given:
        return spec
    from qir.precision import check_reuse

    for k, v in given.items():
        check_reuse(v, f"--{k}")
    if len(given) > 1:
        raise QirError(f"give one of --reuse, --target-ii, --max-luts (got {', '.join('--' + k for k in given)})")
    pat = re.compile(r"qir-fold-auto(\{[^}]*\})?")
    if not pat.search(spec):
        raise QirError(f"--{next(iter(given))} needs qir-fold-auto in the pass pipeline (before qir-lower-dense); "
                       f"the pipeline is {spec!r}")
    opts = " ".join(f"{k}={v}" for k, v in given.items())
    return pat.sub(lambda m: f"qir-fold-auto{{{opts}}}", spec, count=1)


def _run_folding(net: ModuleOp, lowered: ModuleOp, pipeline: str, where: str) -> dict | None:
    """Run ``pipeline`` on ``lowered``; after ``qir-fold-auto`` copy the chosen reuse factors onto
    ``net``'s layer ops (so net.mlir states them and compiles to the same design) and return
    ``report.json: folding`` (None when no layer is folded)."""
    from qir.lowering.fold_auto import FoldAuto, foldable_layers, folding_summary, pinned_reuse

    pp = parse_pipeline(pipeline, where)
    cut = next((i + 1 for i, p in enumerate(pp.passes) if isinstance(p, FoldAuto)), 0)
    if not cut:
        run_passes(lowered, pp, where)
        return None
    from xdsl.passes import PassPipeline

    run_passes(lowered, PassPipeline(pp.passes[:cut]), where)
    chosen = foldable_layers(lowered)[0]
    if not any(pinned_reuse(lay.op) is not None for lay in chosen):
        summary = None
    else:
        summary = folding_summary(lowered)
        from xdsl.dialects.builtin import IntegerAttr, i64

        from qir.ir import layer_of

        by_layer: dict = {}
        for lay in chosen:
            by_layer.setdefault(layer_of(lay.op), []).append(pinned_reuse(lay.op))
        for lay in foldable_layers(net)[0]:
            rs = by_layer.get(layer_of(lay.op))
            if rs and rs[0] is not None:
                lay.op.attributes["reuse"] = IntegerAttr(rs.pop(0), i64)
    run_passes(lowered, PassPipeline(pp.passes[cut:]), where)
    return summary


#: ``--max-luts``: how many times the layer budget is tightened by the estimate's overshoot
MAX_LUTS_ROUNDS = 6


def _lower(net: ModuleOp, pipeline: str, reuse, target_ii, max_luts):
    """(net, lowered, folding, pipeline run): ``pipeline`` with the folding options on a copy of
    ``net``.  ``max_luts`` bounds the whole design's estimate (``qir.report.estimate``: the folded
    layers plus windows, collects, element-wise logic): qir-fold-auto budgets the foldable layers
    alone, so when the lowered design overshoots, the layers' budget is lowered by the overshoot and
    the pipeline runs again (at most ``MAX_LUTS_ROUNDS`` times)."""
    budget = max_luts
    for round_ in range(MAX_LUTS_ROUNDS if max_luts else 1):
        spec = fold_spec(pipeline, reuse, target_ii, budget)
        n, lowered = net.clone(), net.clone()
        try:
            folding = _run_folding(n, lowered, spec, "<pipeline>")
        except QirError:
            if not round_:
                raise
            break  # a tightened budget no folding meets: the error below names the user's figure
        if not max_luts:
            break
        from qir.report import estimate

        total = estimate(get_model(lowered))["luts_estimate"]
        if folding is not None:
            folding.update(max_luts=max_luts, design_luts_estimate=total)
        if total <= max_luts:
            break
        # the rest of the design (windows, collects, element-wise logic, the layers' own estimate
        # after lowering) comes off the layers' budget
        rest = total - (folding or {}).get("luts_estimate", 0)
        budget = min(budget - (total - max_luts), max_luts - rest)
        if budget < 1:
            break
    if max_luts and (total > max_luts or budget < 1):
        raise QirError(f"--max-luts {max_luts}: the smallest folding found is estimated at {total} LUTs "
                       "(the layers that cannot fold: windows, flatten registers, element-wise logic, take the rest)")
    return n, lowered, folding, spec


def with_target(spec: str, target: str) -> str:
    """``spec`` with ``target=`` set on its ``qir-lower-cmvm`` pass (the adder-graph search's cost
    model: xilinx, ecp5, asic); ``xilinx``, the pass's default, leaves the spec as it is."""
    from qir.addergraph import TARGETS

    if target not in TARGETS:
        raise QirError(f"--target {target!r} is not supported; use one of {', '.join(TARGETS)}")
    if target == "xilinx":
        return spec
    parts = []
    for p in spec.split(","):  # no option of qir-lower-cmvm holds a comma
        name, brace, rest = p.partition("{")
        if name.strip() == "qir-lower-cmvm":
            opts = [o for o in rest.rstrip("}").split() if not o.startswith("target=")] if brace else []
            p = f"qir-lower-cmvm{{{' '.join(opts + [f'target={target}'])}}}"
        parts.append(p)
    return ",".join(parts)


def compile_model(model_path: str | Path, outdir: str | Path, *, pipeline: str | None = None,
                  top: str | None = None, post=None, io: str = "parallel", target: str = "xilinx",
                  reuse: int | None = None, target_ii: int | None = None, max_luts: int | None = None,
                  **import_options) -> dict:
    """Import, lower, generate RTL and testbenches into ``outdir``; returns the report.

    ``model_path``: anything ``import_model`` reads.  ``pipeline`` (qir-opt syntax): None runs
    ``DEFAULT_PIPELINE``, or nothing when the model is already lowered IR (``qir.api.is_lowered``).
    ``target`` (xilinx, ecp5, asic): the cost model of the adder-graph search (``with_target``).

    Everything is written to a temporary directory beside ``outdir`` and moved into place at the
    end, so a failure leaves no half-written output.  ``post(tmpdir, report)``, if given, runs
    after the RTL and testbenches are written and returns entries to add to the report
    (``qir.firmware.write_firmware``).  An existing ``outdir`` is replaced only if it
    is missing, empty or holds only qir's own files (``qir.safety.check_output_dir``: the files
    listed in its ``.qir-manifest`` and the ``sim/`` build cache); a user's file there is an error.

    ``reuse`` / ``target_ii`` / ``max_luts`` (issue #12) are the options of the pipeline's
    ``qir-fold-auto`` (``fold_spec``); the chosen reuse factors go onto net.mlir's layer ops and
    into ``report.json: folding``.
    """
    from qir.safety import check_output_dir, output_dir

    out = Path(outdir)
    check_output_dir(out)  # before the work: a folder with a user's files is refused at once
    if io not in ("parallel", "stream"):
        raise QirError(f"--io {io!r} is not supported; use 'parallel' or 'stream'")
    if io == "stream" and pipeline in (None, DEFAULT_PIPELINE):  # --io stream: STREAM_PIPELINE
        from qir.lowering import STREAM_PIPELINE

        pipeline = STREAM_PIPELINE
    from qir.progress import note

    label = Path(model_path).name if isinstance(model_path, (str, os.PathLike)) else \
        f"<{type(model_path).__name__}>"
    note(f"importing {label}")
    net = import_model(model_path, **import_options)
    if pipeline is None:
        from qir.api import is_lowered

        pipeline = "" if is_lowered(net) else DEFAULT_PIPELINE
    pipeline = with_target(pipeline, target)
    note("running the pass pipeline")
    net, lowered, folding, pipeline = _lower(net, pipeline, reuse, target_ii, max_luts)
    model = get_model(lowered)
    from qir.dialect.stream_ops import is_stream_model

    if (io == "stream") != is_stream_model(model):
        raise QirError(f"--io {io}: the pass pipeline {'must' if io == 'stream' else 'must not'} end in stream "
                       "form (qir-stream-conv,qir-stream-form)", where=str(model_path))
    from qir.rtl import generate

    note("generating RTL (Amaranth)")
    design = generate(model, top=legalize(top or model.sym_name.data), target=target)
    note("writing Verilog and testbenches")
    report = {
        "top": design.top,
        "latency_cycles": design.latency,
        "register_bits": _register_bits(model, design.latency),
        "ports": design.ports,
        "model": Path(model_path).name if isinstance(model_path, (str, os.PathLike)) else
        f"<{type(model_path).__name__} {get_model(net).sym_name.data}>",
        "pipeline": pipeline,
        "rtl": sorted(f"rtl/{name}" for name in design.files),
        "io": io,
    }
    if getattr(design, "ii", 1) and design.ii > 1 and io != "stream":  # folded layers: in_ready, II = max R
        report["ii_cycles"] = design.ii
    report.update(getattr(design, "stream", {}))
    if folding is not None:
        report["folding"] = folding
    with output_dir(out) as tmp:
        (tmp / "net.mlir").write_text(print_module(net))
        (tmp / "lowered.mlir").write_text(print_module(lowered))
        (tmp / "rtl").mkdir()
        for name, text in sorted(design.files.items()):
            (tmp / "rtl" / name).write_text(text)
        if io == "stream":
            from qir.sim.stream_bench import write_stream_testbench

            write_stream_testbench(tmp, report)
        else:
            from qir.sim.testbench import write_testbenches

            write_testbenches(tmp, report)
        if post is not None:
            report.update(post(tmp, report))
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
