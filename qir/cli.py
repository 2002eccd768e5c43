"""``qir``: the one-stop command line (import, eval, compile, sim).

Every user error is a ``QirError``: one line on stderr, ``qir: error: <file>: <layer>: <what to do>``,
exit status 1, no traceback, and nothing printed after it.  Set ``QIR_DEBUG=1`` to see
tracebacks of internal errors.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from qir.errors import QirError
from qir.fixed import Fixed


def _fixed(text: str) -> Fixed:
    try:
        return Fixed.parse(text)
    except QirError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_import_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file: QKeras/Keras .json (+ weights .h5), .h5, .keras; .onnx; "
                   "or a .mlir written by qir import / qir-opt (layer level or lowered)")
    p.add_argument("--weights", help="weights .h5 for a .json model (default: <stem>_weights.h5 beside it)")
    p.add_argument("--input-type", type=_fixed, metavar="T",
                   help="fixed-point type of the model input, e.g. 'fixed<16,6>' (needed when the model "
                        "has no input quantizer)")
    p.add_argument("--softmax", choices=("keep", "none", "table"), default="keep",
                   help="'none' strips a final softmax and outputs the logits; 'table' approximates it with "
                        "exp and reciprocal tables (qir/frontends/softmax.py; index type = precision 'table', "
                        "result type = precision 'result', default ufixed<16,0>); 'keep' rejects it")
    p.add_argument("--precision", type=_fixed, metavar="T",
                   help="default type for float weights/biases of unquantized layers (rounded to nearest, "
                        "saturated), e.g. 'fixed<18,8>'")
    p.add_argument("--precision-config", metavar="FILE",
                   help="JSON/YAML precision configuration: default and per-layer weight/bias/accum/result "
                        "types (see qir/precision.py)")
    p.add_argument("--approximate", type=int, nargs="?", const=24, default=0, metavar="BITS",
                   help="accept non-power-of-two scales (ONNX QDQ/QONNX, QKeras alpha='auto') as "
                        "fixed-point multipliers with BITS significant bits (default 24); relative error "
                        "<= 2^-BITS per rescale. Without it such models are rejected")
    p.add_argument("--ptq", choices=("reject", "weight-only", "emulate"), default="reject",
                   help="Keras 3 int8/int4 models with dynamic activation quantization: reject (default), "
                        "lower the integer weights on the static --input-type (weight-only), or emulate "
                        "Keras's per-row int8 activation quantization with max-abs and reciprocal tables "
                        "(emulate; int8 only, not bit-exact at float32 ties)")


def _add_input_options(p: argparse.ArgumentParser) -> None:
    """``--inputs`` and ``--quantize-inputs`` of ``qir eval`` and ``qir sim``."""
    p.add_argument("--inputs", required=True, help="X.npy: (N, *input shape) real values on the input grid")
    p.add_argument("--quantize-inputs", action="store_true",
                   help="accept off-grid float inputs: each value is rounded to nearest, ties to even, and "
                        "saturated to the model's input type (counts printed on stderr)")


def _add_firmware_options(p: argparse.ArgumentParser) -> None:
    """Options of qir.firmware (AXI-Stream wrapper, FuseSoC core, vendor scripts, clock target)."""
    p.add_argument("--axi-stream", action="store_true",
                   help="also write rtl/<top>_axis.v, an AXI4-Stream wrapper (qir/rtl/axi_stream.py)")
    p.add_argument("--clock-ns", type=float, metavar="T",
                   help="target clock period: adder levels per pipeline stage from the delay model "
                        "(qir/timing.py); also the clock of the XDC/SDC (default 5 ns there)")
    p.add_argument("--part", metavar="PART", help="Vivado part of vivado/<top>.tcl (default xcvu13p-flga2577-2-e)")
    p.add_argument("--quartus-part", metavar="DEVICE",
                   help="Quartus device of quartus/<top>.tcl (default AGFB014R24B2E2V, Agilex 7)")


def _add_folding_options(p: argparse.ArgumentParser) -> None:
    """Folding (issue #12): the options of the pipeline's qir-fold-auto; give at most one.  Layers
    with a ``reuse`` key in the precision configuration keep it."""
    p.add_argument("--reuse", type=int, metavar="R",
                   help="fold every dense/conv layer over R cycles (about 1/R of the arithmetic)")
    p.add_argument("--target-ii", type=int, metavar="CYCLES",
                   help="choose each layer's reuse so the slowest layer meets CYCLES per image and every other "
                        "layer is folded as far as it can be without slowing the pipeline")
    p.add_argument("--max-luts", type=int, metavar="N",
                   help="choose the fastest folding whose estimated LUTs fit N")


def _import_options(args) -> dict:
    precision = args.precision
    if args.precision_config:
        from qir.precision import PrecisionConfig

        precision = PrecisionConfig.load(args.precision_config, default=args.precision)
    if args.approximate < 0:
        raise QirError("--approximate takes a positive number of bits")
    return {"weights": args.weights, "input_type": args.input_type, "softmax": args.softmax,
            "precision": precision, "approximate": args.approximate, "ptq": args.ptq}


def cmd_import(args) -> int:
    from qir.flow import import_model
    from qir.ir import print_module

    module = import_model(args.model, **_import_options(args))
    text = print_module(module)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()  # a closed pipe shows here, inside main's handlers
    else:
        from qir.safety import atomic_write

        atomic_write(args.output, text)
    return 0


def cmd_eval(args) -> int:
    from qir.interp import evaluate, input_types, output_types, write_trace
    from qir.ir import get_model, read_module

    module = read_module(args.net)
    model = get_model(module, args.net)
    ins = input_types(model)
    if len(ins) != 1:
        raise QirError(f"model has {len(ins)} inputs; qir eval takes one --inputs array", where=args.net)
    from qir.safety import atomic_save_npy, check_inputs, load_inputs

    if args.quantize_inputs:
        mants = check_inputs(_quantized_arrays(ins, args.inputs), ins, str(args.inputs))
    else:
        mants = load_inputs(args.inputs, ins)
    ev = evaluate(model, mants)
    outs = [t.to_real(y) for (t, _), y in zip(output_types(model), ev.outputs)]
    atomic_save_npy(args.output, outs[0])
    for k, y in enumerate(outs[1:], start=1):
        atomic_save_npy(f"{Path(args.output).with_suffix('')}_{k}.npy", y)
    if args.trace:
        write_trace(ev, args.trace)
    return 0


def cmd_compile(args) -> int:
    from qir.firmware import compile_firmware
    from qir.progress import compiling

    if args.io == "parallel":  # the final Yosys run starts now, beside the imports (rtl/separate.py)
        from qir.rtl.separate import prestart_yosys

        prestart_yosys(1)
    with compiling(quiet=args.quiet):
        report = compile_firmware(args)
    fmax = (report.get("timing") or {}).get("fmax_mhz_estimate")
    print(f"qir: compiled {args.model} -> {args.output}: top {report['top']}, "
          f"latency {report['latency_cycles']} cycles, {len(report['rtl'])} Verilog file(s)"
          + (f", ~{fmax} MHz (ECP5 model)" if fmax else ""))
    return 0


def _quantized_arrays(ins, path) -> list:
    """``--quantize-inputs``: the file's real arrays put on each input's grid (qir.input_quant:
    round half to even, saturate); prints how many values moved."""
    from qir.input_quant import quantize_inputs
    from qir.safety import check_dtype, read_array_file

    where = str(path)
    out = []
    for (name, t, _), x in zip(ins, read_array_file(path, [nm for nm, _, _ in ins])):
        check_dtype(x.dtype, where, name)
        mant, stats = quantize_inputs(x, t, f"{where}: input '{name}'")
        print(f"qir: {stats.summary(f'{where}: input {name!r}')}", file=sys.stderr)
        out.append(t.to_real(mant))
    return out


def cmd_sim(args) -> int:
    from qir.sim.run import sim_command

    if not args.quantize_inputs:
        return sim_command(args.outdir, args.inputs, args.simulator, args.output)
    import tempfile

    import numpy as np

    from qir.interp import input_types
    from qir.ir import get_model, read_module
    from qir.sim.design import load_design

    net = load_design(args.outdir).net_path
    ins = input_types(get_model(read_module(net), str(net)))
    arrays = _quantized_arrays(ins, args.inputs)
    with tempfile.TemporaryDirectory(prefix="qir_sim_inputs_") as tmp:
        grid = Path(tmp) / "inputs.npz"
        np.savez(grid, **{nm: a for (nm, _, _), a in zip(ins, arrays)})
        return sim_command(args.outdir, grid, args.simulator, args.output)


def cmd_config(args) -> int:
    from qir.api import config_template, layer_summary
    from qir.precision import PrecisionConfig

    opts = _import_options(args)
    opts["precision"] = args.precision  # a template from a configuration would hide the model's own types
    if args.precision_config:
        raise QirError("qir config writes a configuration; it takes --precision T (the type of float layers), "
                       "not --precision-config")
    tmpl = config_template(args.model, **opts)
    out = Path(args.output)
    if out.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(tmpl, sort_keys=False)
    else:
        import json

        text = json.dumps(tmpl, indent=2) + "\n"
    PrecisionConfig.from_mapping(tmpl, str(out))  # what we write must load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    rows = layer_summary(args.model, **{**opts, "precision": opts["precision"] or tmpl["default"].get("weight")})
    print(f"qir: wrote {out}: {len(tmpl['layers'])} layers "
          f"({sum(1 for e in tmpl['layers'].values() if set(e) - {'reuse'})} with configurable types)")
    print(f"  {'layer':<24} {'result':<14} {'weight':<14} {'bias':<14} configurable")
    for r in rows:
        entry = tmpl["layers"].get(r["layer"])
        conf = ", ".join(entry) if entry else ("-" if entry is not None else "(input)")
        print(f"  {r['layer']:<24} {r['result']:<14} {r.get('weight', ''):<14} {r.get('bias', ''):<14} {conf}")
    return 0


def cmd_profile(args) -> int:
    from qir.api import Design
    from qir.flow import import_model
    from qir.safety import check_dtype, read_array_file

    opts = _import_options(args)
    design = Design(import_model(args.model, **opts), source=args.model, options=opts)
    port = design._input()[0]
    (x,) = read_array_file(args.inputs, [port])
    check_dtype(x.dtype, str(args.inputs), port)
    formats = tuple(f for f in args.format.split(",") if f)
    prof = design.profile(x, args.output, formats=formats)
    if design.last_quantization is not None:
        print(f"qir: {design.last_quantization.summary(args.inputs)}", file=sys.stderr)
    print(prof)
    print(f"qir: wrote {len(prof.plots)} plot(s) and {', '.join(p.name for p in prof.files)} to {args.output}")
    return 0


def cmd_report(args) -> int:
    import json

    from qir.report import format_report, report

    flows = [f for f in (args.synth or "").split(",") if f]
    r = report(args.outdir, synth=flows)
    print(json.dumps(r, indent=1) if args.json else format_report(r))
    if args.html is not None:
        from qir.html_report import write_html

        path = write_html(args.outdir, r, args.html or None)
        print(f"qir: wrote {path}", file=sys.stderr)
    sys.stdout.flush()  # a closed pipe shows here, inside main's handlers
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qir", description="Quantized neural networks to bit-exact Verilog.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("import", help="import a model into qir IR")
    _add_import_options(p)
    p.add_argument("-o", "--output", help="output .mlir (default: stdout)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("eval", help="run the reference interpreter on IR")
    p.add_argument("net", help="qir IR file (.mlir)")
    _add_input_options(p)
    p.add_argument("-o", "--output", required=True, help="Y.npy: real outputs (float64)")
    p.add_argument("--trace", metavar="DIR", help="write <layer>.npy for every source layer into DIR")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compile", help="import, lower and emit Verilog + testbenches into OUTDIR")
    _add_import_options(p)
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.add_argument("--pipeline", help="pass pipeline between import and RTL (qir-opt -p syntax; default "
                   "qir.lowering.DEFAULT_PIPELINE, none for an already lowered .mlir)")
    p.add_argument("--top", help="top module name (default: the model name)")
    p.add_argument("--io", choices=("parallel", "stream"), default="parallel",
                   help="parallel: one whole tensor per clock (default); stream: valid/ready beats, one pixel "
                        "(all channels) per beat, conv/pool as line buffers + one reused kernel datapath")
    p.add_argument("--target", choices=("xilinx", "ecp5", "asic"), default="xilinx",
                   help="cost model the adder-graph search minimizes: xilinx LUTs (default), ecp5 LUT4 + CCU2C "
                        "carry cells, asic NAND2-equivalent area (qir-lower-cmvm{target=...})")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines on stderr (printed on a terminal, or after 3 s of compiling)")
    _add_folding_options(p)
    _add_firmware_options(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("sim", help="simulate OUTDIR's RTL on inputs and check it against the reference")
    p.add_argument("outdir", help="a directory written by qir compile")
    _add_input_options(p)
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("-o", "--output", help="Y.npy: the RTL's outputs as real values")
    p.set_defaults(func=cmd_sim)
    p = sub.add_parser("report", help="hardware cost of OUTDIR: instant estimate, optionally Yosys synthesis")
    p.add_argument("outdir", help="a directory written by qir compile")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--synth", metavar="FLOWS", help="also synthesize with Yosys: 'xilinx' (synth_xilinx -family xcup "
                   "-flatten), 'ecp5' (synth_ecp5), 'asic' (generic gates, NAND2-equivalent area), comma-separated")
    p.add_argument("--html", nargs="?", const="", metavar="FILE",
                   help="also write an HTML report (default OUTDIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="write the precision configuration template: every layer name and its "
                       "current types (edit it, then compile with --precision-config)")
    _add_import_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.json or FILE.yaml")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("profile", help="per-layer weight/activation ranges against their fixed-point types: "
                       "plots and an overflow/saturation table")
    _add_import_options(p)
    p.add_argument("--inputs", required=True, help="X.npy: (N, *input shape) float values (rounded to nearest, "
                   "ties to even, and saturated to the input type)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="writes <layer>.png/.svg, profile.csv, profile.json, profile.txt")
    p.add_argument("--format", default="png", help="plot formats: png, svg or png,svg (default png)")
    p.set_defaults(func=cmd_profile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)
        if argv is None and args.func is cmd_compile:
            _exit_now(rc)
        return rc
    except QirError as e:
        _flush_stdout()
        print(f"qir: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qir: error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `qir report --json | head`: the reader left; not an error of ours
        return _broken_pipe()
    except Exception as e:  # an internal error: still one line, unless debugging
        if os.environ.get("QIR_DEBUG"):
            raise
        _flush_stdout()
        print(f"qir: internal error: {type(e).__name__}: {e} (this is a bug in qir; rerun with QIR_DEBUG=1 "
              "and report it)", file=sys.stderr)
        return 2


def _exit_now(rc: int) -> None:
    """End the ``qir compile`` process here (its own command line, ``main()``; never when called
    with ``argv``, e.g. from tests): Python's teardown would free every object the compile left,
    the Amaranth netlist and the IR, one by one (~0.2 s of serial CPU on qkeras_3layer, 4% of
    the compile).  Output is flushed first; the compile has ended its worker pools and Yosys
    processes, so the skipped ``atexit`` handlers have nothing left to do."""
    _flush_stdout()
    sys.stderr.flush()
    os._exit(rc)


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _broken_pipe()


def _broken_pipe() -> int:
    """stdout's reader closed the pipe: stop quietly (as `cat` does), with no second error when
    Python flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe


if __name__ == "__main__":
    sys.exit(main())
