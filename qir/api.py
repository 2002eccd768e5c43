"""The Python API: convert a model, run it on float data, compare it, profile it, build it.

::

    import qir
    design = qir.convert(model)                 # a file path, a live keras.Model, an onnx.ModelProto
    y = design.predict(x)                       # float data in: rounded to the input type
    print(design.compare(model, x))             # per layer: exact fraction, max |error|
    design.profile(x, "prof/")                  # value ranges against each layer's type (plots)
    design.compile("out/net")                   # Verilog + testbenches, as `qir compile`
    design.simulate(x, simulator="verilator")   # RTL outputs, checked against the reference

Everything here calls the same functions as the command line (``qir.flow``, the frontends,
``qir.sim``); Keras, TensorFlow and onnxruntime are imported only when a live model object is
given or compared.  See docs/python-api.md.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qir.errors import QirError
from qir.fixed import Fixed
from qir.input_quant import ROUNDING_NOTE, InputQuantization, quantize_inputs
from qir.precision import LayerPrecision, PrecisionConfig

__all__ = ["convert", "config_template", "Design", "Comparison", "import_object", "read_net", "is_lowered",
           "ROUNDING_NOTE"]

#: hls4ml's default precision (``ap_fixed<16,6>``): the template's type for float layers.
DEFAULT_TEMPLATE_PRECISION = Fixed(16, 6)


# ------------------------------------------------------------------------------ sources
def _is_onnx_proto(obj: Any) -> bool:
    return type(obj).__name__ == "ModelProto" and type(obj).__module__.startswith("onnx")


def _is_keras_model(obj: Any) -> bool:
    return hasattr(obj, "to_json") and hasattr(obj, "get_layer")


def import_object(model: Any, *, weights=None, input_type: Fixed | None = None, softmax: str = "keep",
                  precision: Fixed | PrecisionConfig | None = None, approximate: int = 0,
                  ptq: str = "reject"):
    """Import an in-memory model: a live ``keras.Model`` (Keras 3, QKeras, QKeras-v3), an
    ``onnx.ModelProto``, or an already imported ``ModuleOp`` (returned as a copy).  Nothing is
    written to disk.  The options are ``qir.flow.import_model``'s."""
    from xdsl.dialects.builtin import ModuleOp

    from qir.ir import verify

    if isinstance(model, ModuleOp):
        return model.clone()
    if weights is not None:
        raise QirError("weights= applies to Keras .json model files; a model object holds its weights")
    if _is_onnx_proto(model):
        from qir.frontends.onnx import import_onnx

        module = import_onnx(model, input_type=input_type, softmax=softmax, precision=precision,
                             approximate=approximate or False)
        where = "<onnx.ModelProto>"
    elif _is_keras_model(model):
        from qir.frontends.keras import import_keras

        module = import_keras(model, input_type=input_type, softmax=softmax, precision=precision,
                              approximate=bool(approximate), ptq=ptq)
        where = f"<keras.Model {getattr(model, 'name', '?')}>"
    else:
        raise QirError(f"cannot convert a {type(model).__module__}.{type(model).__name__}: pass a model file "
                       "path (.json/.h5/.keras/.onnx/.mlir), a keras.Model or an onnx.ModelProto")
    if isinstance(precision, PrecisionConfig):
        precision.annotate_styles(module, precision.source)
    verify(module, where)
    return module


def read_net(path: str | Path, *, weights=None, input_type=None, softmax: str = "keep", precision=None,
             approximate: int = 0, ptq: str = "reject"):
    """A ``.mlir`` file written by ``qir import``/``qir compile`` (net.mlir) or ``qir-opt`` (layer
    level or lowered).  It is already imported, so the import options do not apply."""
    from qir.ir import get_model, read_module

    given = [name for name, v, dflt in (("--weights", weights, None), ("--input-type", input_type, None),
                                        ("--softmax", softmax, "keep"), ("--precision/--precision-config",
                                                                         precision, None),
                                        ("--approximate", approximate or 0, 0), ("--ptq", ptq, "reject"))
             if v != dflt]
    if given:
        raise QirError(f"{', '.join(given)} applies to model files; a .mlir file is already imported "
                       "(set the options when importing it)", where=str(path))
    module = read_module(path)
    get_model(module, str(path))
    return module


def is_lowered(module) -> bool:
    """True when ``module`` holds dataflow-level ops (the output of the lowering passes), so the
    default pipeline must not run on it again."""
    from qir.dialect import AdderGraphOp, CmvmOp, RegOp, ThresholdOp, XnorOp

    return any(isinstance(op, (AdderGraphOp, CmvmOp, RegOp, ThresholdOp, XnorOp)) for op in module.walk())


def _as_fixed(t: Fixed | str | None, what: str) -> Fixed | None:
    if t is None or isinstance(t, Fixed):
        return t
    if isinstance(t, str):
        return Fixed.parse(t)
    raise QirError(f"{what} must be a type such as 'fixed<16,6>' or Fixed(16, 6), got {t!r}")


def _precision(config: Any, precision: Fixed | str | None) -> Fixed | PrecisionConfig | None:
    default = _as_fixed(precision, "precision")
    if config is None:
        return default
    if isinstance(config, PrecisionConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return PrecisionConfig.load(config, default=default)
    if isinstance(config, dict):
        return PrecisionConfig.from_mapping(config, "<config>", default)
    raise QirError(f"config must be a file path, a mapping or a PrecisionConfig, got {type(config).__name__}")


def _options(config, input_type, precision, softmax, weights, approximate, ptq) -> dict:
    return {"weights": weights, "input_type": _as_fixed(input_type, "input_type"), "softmax": softmax,
            "precision": _precision(config, precision), "approximate": approximate, "ptq": ptq}


# ------------------------------------------------------------------------------ convert
def convert(model: Any, config: Any = None, *, input_type: Fixed | str | None = None,
            precision: Fixed | str | None = None, softmax: str = "keep", weights: str | Path | None = None,
            approximate: int = 0, ptq: str = "reject") -> Design:
    """Import ``model`` and return a :class:`Design`.

    ``model``: a file path (QKeras/Keras ``.json`` + weights ``.h5``, ``.h5``, ``.keras``, ``.onnx``,
    or a ``.mlir`` written by ``qir import``/``qir-opt``), a live ``keras.Model`` (Keras 3, QKeras,
    QKeras-v3) or an ``onnx.ModelProto``; objects are converted in memory.

    ``config``: the precision configuration of float layers: a JSON/YAML file path, a mapping
    (``{"default": {...}, "layers": {name: {...}}}``, see :func:`config_template`) or a
    ``PrecisionConfig``; unknown layer names, keys and bad types are errors.
    ``precision``: a default type for weights, biases and results of float layers
    (``'fixed<18,8>'``).  ``input_type``: the type of the model input when it has no input
    quantizer.  ``softmax``: ``'keep'`` (reject a final softmax), ``'none'`` (strip it) or
    ``'table'`` (approximate it).  ``weights``, ``approximate``, ``ptq``: as ``qir compile``.
    """
    from qir.flow import import_model

    options = _options(config, input_type, precision, softmax, weights, approximate, ptq)
    net = import_model(model, **options)
    return Design(net, source=model, options=options)


# ------------------------------------------------------------------------------ comparison
@dataclass(frozen=True)
class LayerComparison:
    layer: str
    type: str
    count: int
    exact_fraction: float
    max_abs_error: float
    note: str = ""


class Comparison:
    """Per layer: the fraction of values qir computes exactly as the source, and the largest
    absolute difference.  ``str()`` is a table; ``rows`` the data; ``exact`` is True when every
    compared layer matches everywhere."""

    def __init__(self, rows: list[LayerComparison], source: str):
        self.rows = rows
        self.source = source

    @property
    def exact(self) -> bool:
        return bool(self.rows) and all(r.exact_fraction == 1.0 for r in self.rows if not r.note)

    def __getitem__(self, layer: str) -> LayerComparison:
        for r in self.rows:
            if r.layer == layer:
                return r
        raise KeyError(layer)

    def to_dict(self) -> list[dict]:
        return [r.__dict__.copy() for r in self.rows]

    def __str__(self) -> str:
        head = f"{'layer':<24} {'type':<16} {'values':>8} {'exact':>8} {'max |err|':>12}"
        lines = [f"qir vs {self.source}", head, "-" * len(head)]
        for r in self.rows:
            if r.note:
                lines.append(f"{r.layer:<24} {r.type:<16} {'':>8} {'':>8} {'':>12}  {r.note}")
            else:
                lines.append(f"{r.layer:<24} {r.type:<16} {r.count:>8} {100 * r.exact_fraction:>7.2f}% "
                             f"{r.max_abs_error:>12.6g}")
        return "\n".join(lines)

    __repr__ = __str__


def _compare_arrays(name: str, t: str, ours: np.ndarray, theirs: np.ndarray) -> LayerComparison:
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.size != b.size or a.shape[0] != b.shape[0]:
        return LayerComparison(name, t, 0, 0.0, float("nan"),
                               f"shapes differ: qir {a.shape[1:]} vs source {b.shape[1:]}")
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    if a.shape != b.shape:
        return LayerComparison(name, t, 0, 0.0, float("nan"), "shapes differ")
    err = np.abs(a - b)
    return LayerComparison(name, t, int(a.size), float(np.mean(err == 0)) if a.size else 1.0,
                           float(err.max()) if a.size else 0.0)


def _keras_layer_outputs(model: Any, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    import keras  # the live-model path only

    have = []
    for n in names:
        try:
            have.append((n, model.get_layer(n)))
        except ValueError:
            continue
    have = [(n, layer) for n, layer in have if type(layer).__name__ != "InputLayer"]
    if not have:
        return {}
    probe = keras.Model(inputs=model.inputs, outputs=[layer.output for _, layer in have])
    outs = probe.predict(x.astype(np.float32), verbose=0)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return {n: np.asarray(o) for (n, _), o in zip(have, outs)}


def _onnx_tensor_outputs(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnx
    import onnxruntime as ort

    from qir.frontends.onnx_records import layer_name

    m = onnx.ModelProto()
    m.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
        types = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
    except Exception:  # noqa: BLE001 - inference is best-effort here
        types = {}
    float_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)
    existing = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for out in node.output:
            if out and out not in existing and types.get(out) in float_types:
                m.graph.output.append(onnx.helper.make_tensor_value_info(out, types[out], None))
                existing.add(out)
    init = {t.name for t in m.graph.initializer}
    inp = [i for i in m.graph.input if i.name not in init][0]
    opts = ort.SessionOptions()  # the ONNX semantics as specified: no fused/approximated kernels
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    vals = sess.run(names, {inp.name: x.astype(np.float32)})
    return {layer_name(n): np.asarray(v) for n, v in zip(names, vals)}


# ------------------------------------------------------------------------------ the design
class Design:
    """An imported model (layer-level ``qir`` IR in :attr:`net`) and what can be done with it.

    ``predict``/``trace`` run the numpy reference interpreter, which defines the semantics the
    generated hardware is checked against bit for bit.  Float data is made representable by
    :meth:`quantize`: rounded to nearest, ties to even, then saturated to the model's input type
    (the type of its input quantizer, or ``input_type``)."""

    def __init__(self, net, source: Any = None, options: dict | None = None):
        from qir.ir import get_model

        self.net = net
        self.source = source
        self.options = dict(options or {})
        self.model = get_model(net)
        self.outdir: Path | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.last_quantization: InputQuantization | None = None

    # -- description --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.model.sym_name.data

    @property
    def input_type(self) -> Fixed:
        """The fixed-point type of the (single) model input."""
        return self._input()[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input()[2]

    @property
    def layers(self) -> list[str]:
        """Source layer names in program order (the keys of :meth:`trace`)."""
        from qir.ir import layer_of

        seen: list[str] = []
        for op in self.model.block.ops:
            name = layer_of(op)
            if name is not None and op.results and name not in seen:
                seen.append(name)
        return seen

    def to_mlir(self) -> str:
        """The layer-level IR as text (what ``qir import`` writes)."""
        from qir.ir import print_module

        return print_module(self.net)

    def __repr__(self) -> str:
        return (f"<qir.Design @{self.name}: input {self.input_type} {self.input_shape}, "
                f"{len(self.layers)} layers{', compiled in ' + str(self.outdir) if self.outdir else ''}>")

    def _input(self):
        from qir.interp import input_types

        ins = input_types(self.model)
        if len(ins) != 1:
            raise QirError(f"model @{self.name} has {len(ins)} inputs; the Design API takes one input array")
        return ins[0]

    # -- running ------------------------------------------------------------------------------
    def quantize(self, x) -> np.ndarray:
        """Input mantissas for real data ``x`` of shape (N, *input shape): rounded to nearest,
        ties to even, saturated to :attr:`input_type`.  The counts are in
        :attr:`last_quantization`."""
        port, t, shape = self._input()
        arr = np.asarray(x)
        if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != tuple(shape):
            raise QirError(f"input '{port}' expects shape (N, {', '.join(map(str, shape))}), got {arr.shape}")
        mant, stats = quantize_inputs(arr, t, f"input '{port}'")
        self.last_quantization = stats
        return mant

    def _evaluate(self, x, quantize: bool):
        from qir.interp import evaluate

        if quantize:
            mant = self.quantize(x)
        else:
            port, t, _ = self._input()
            mant = t.from_real(np.asarray(x), f"input '{port}'")
        return evaluate(self.model, [mant])

    def predict(self, x, *, quantize: bool = True):
        """Real outputs (float64, shape (N, *output shape)) for real inputs ``x``; a list when
        the model has several outputs.  ``quantize=False`` requires ``x`` on the input grid."""
        from qir.interp import output_types

        ev = self._evaluate(x, quantize)
        outs = [t.to_real(y) for (t, _), y in zip(output_types(self.model), ev.outputs)]
        return outs[0] if len(outs) == 1 else outs

    def trace(self, x, *, quantize: bool = True) -> dict[str, np.ndarray]:
        """Every source layer's output (real values, float64), by layer name, in program order;
        the input layer's entry holds the quantized inputs."""
        ev = self._evaluate(x, quantize)
        return {name: t.to_real(m) for name, (t, m) in ev.layer_outputs().items()}

    def layer_types(self) -> dict[str, Fixed]:
        """The fixed-point type of each layer's output."""
        from qir.dialect import elem
        from qir.ir import layer_of

        out: dict[str, Fixed] = {}
        for op in self.model.block.ops:
            name = layer_of(op)
            if name is not None and op.results:
                out[name] = elem(op.results[0].type)
        return out

    def compare(self, source: Any = None, x=None, *, quantize: bool = True) -> Comparison:
        """Compare every layer's output with the source framework's own.

        ``source``: a live ``keras.Model`` (its layers' outputs, computed by Keras), an
        ``onnx.ModelProto`` or ``.onnx`` path (every float tensor, by onnxruntime), or a mapping
        ``{layer: array}`` of reference outputs; default: the converted model.  Both sides get the
        same inputs: ``x`` rounded to the input grid (so a mismatch is the layer's, not the input
        rounding's).  Layers the source does not expose are skipped."""
        if x is None:
            raise QirError("compare needs input data: design.compare(model, x)")
        source = self.source if source is None else source
        ours = self.trace(x, quantize=quantize)
        port, t, _ = self._input()
        x_grid = t.to_real(self.quantize(x)) if quantize else np.asarray(x, dtype=np.float64)
        types = self.layer_types()
        if isinstance(source, dict):
            theirs, label = {k: np.asarray(v) for k, v in source.items()}, "reference arrays"
        elif _is_keras_model(source):
            theirs = _keras_layer_outputs(source, list(ours), x_grid)
            label = f"keras.Model {getattr(source, 'name', '?')}"
        elif _is_onnx_proto(source) or (isinstance(source, (str, os.PathLike))
                                        and str(source).lower().endswith(".onnx")):
            import onnx

            proto = source if _is_onnx_proto(source) else onnx.load(str(source))
            theirs, label = _onnx_tensor_outputs(proto, x_grid), "onnxruntime"
        else:
            raise QirError("compare needs the source as a live keras.Model, an onnx.ModelProto or .onnx path, "
                           "or a mapping {layer: reference array}; for a Keras file pass "
                           "keras.models.load_model(path)")
        rows = [_compare_arrays(name, str(types[name]), ours[name], theirs[name])
                for name in ours if name in theirs and name in types]
        if not rows:
            raise QirError(f"no layer of @{self.name} is exposed by the source ({label}); layer names: "
                           f"{', '.join(ours)}")
        return Comparison(rows, label)

    # -- building -----------------------------------------------------------------------------
    def compile(self, outdir: str | Path, *, pipeline: str | None = None, top: str | None = None,
                io: str = "parallel", reuse: int | None = None, target_ii: int | None = None,
                max_luts: int | None = None) -> dict:
        """Lower and write Verilog, testbenches and report.json into ``outdir`` (as
        ``qir compile``); returns the report.  Later :meth:`simulate`/:meth:`report` use it.
        ``reuse``/``target_ii``/``max_luts``: folding (``qir compile --reuse/--target-ii/--max-luts``),
        at most one."""
        from qir.flow import compile_model

        rep = compile_model(self.net, outdir, pipeline=pipeline, top=top or self.name, io=io, reuse=reuse,
                            target_ii=target_ii, max_luts=max_luts)
        self.outdir = Path(outdir)
        return rep

    def _compiled(self) -> Path:
        if self.outdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="qir_design_")
            self.compile(Path(self._tmp.name) / self.name)
        return self.outdir

    def simulate(self, x, simulator: str = "verilator", *, quantize: bool = True):
        """Run the generated RTL (Verilator or Icarus) on ``x`` (quantized as :meth:`quantize`),
        check every output bit-exactly against the reference interpreter and the latency against
        the report (a mismatch raises ``QirError``), and return the RTL's real outputs.  Compiles
        into a temporary directory first unless :meth:`compile` was called."""
        from qir.interp import evaluate, output_types
        from qir.sim.design import load_design
        from qir.sim.run import compare, simulate

        outdir = self._compiled()
        if quantize:
            mant = self.quantize(x)
        else:
            port, t, _ = self._input()
            mant = t.from_real(np.asarray(x), f"input '{port}'")
        ref = evaluate(self.model, [mant]).outputs
        got, latency = simulate(outdir, [mant], simulator)
        design = load_design(outdir)
        compare(ref, got, design)
        if latency != design.latency:
            raise QirError(f"RTL latency is {latency} cycles but report.json says {design.latency}",
                           where=str(outdir))
        outs = [t.to_real(y) for (t, _), y in zip(output_types(self.model), got)]
        return outs[0] if len(outs) == 1 else outs

    def report(self, synth: tuple[str, ...] | list[str] = ()) -> dict:
        """Hardware cost (``qir report``): latency, the instant LUT/adder/register estimate per
        layer, and with ``synth=('xilinx',)`` or ``('ecp5',)`` a Yosys synthesis."""
        from qir.report import report

        return report(self._compiled(), synth=list(synth))

    def profile(self, x, outdir: str | Path | None = None, *, formats=("png",), quantize: bool = True):
        """Numerical profiling (``qir profile``): per layer the weight and activation value ranges
        against the range and step of its fixed-point type, with overflow/saturation counts.
        Writes one plot per layer (``formats``: 'png', 'svg') and ``profile.csv``/``.json``/``.txt``
        into ``outdir`` when given; returns a :class:`qir.profile.Profile`."""
        from qir.profile import profile

        return profile(self, x, outdir, formats=formats, quantize=quantize)


# ------------------------------------------------------------------------------ the template
def config_template(model: Any, *, precision: Fixed | str | None = None, input_type: Fixed | str | None = None,
                    softmax: str = "keep", weights=None, approximate: int = 0, ptq: str = "reject") -> dict:
    """The precision configuration of ``model`` with every layer name (hls4ml's
    ``config_from_keras_model(granularity='name')``): ``{"default": {...}, "layers": {name: {...}}}``.

    Layers with float constants or float activations get their configurable types (``weight``,
    ``bias``, ``result``, ``table``) as imported with ``precision`` (default ``fixed<16,6>``);
    layers whose types come from quantizers or are exact have an empty entry ``{}`` (their
    types are in :func:`layer_summary`).  Dense/conv layers also list ``reuse: null`` (folding
    chosen by ``--reuse``/``--target-ii``/``--max-luts``; an integer pins it).  Loading the template
    back gives the same design."""
    from qir.flow import import_model

    a = _as_fixed(precision, "precision") or DEFAULT_TEMPLATE_PRECISION
    b = Fixed(a.width + 3, a.integer + 1, a.signed)  # a probe: what changes with the precision is configurable
    opts = dict(input_type=_as_fixed(input_type, "input_type"), softmax=softmax, weights=weights,
                approximate=approximate, ptq=ptq)
    table_b = Fixed(11, 5)
    net_a = import_model(model, precision=PrecisionConfig(LayerPrecision(weight=a, bias=a, result=a),
                                                          source="<template>"), **opts)
    net_b = import_model(model, precision=PrecisionConfig(LayerPrecision(weight=b, bias=b, result=b, table=table_b),
                                                          source="<template>"), **opts)
    rows_a, rows_b = _layer_ops(net_a), _layer_ops(net_b)
    layers: dict[str, dict] = {}
    any_float = False
    from qir.dialect import ConvOp, DenseOp

    for name, ops_a in rows_a.items():
        ops_b = rows_b.get(name, [])
        entry = _configurable(ops_a, ops_b)
        any_float |= bool(entry)
        if any(isinstance(o, (DenseOp, ConvOp)) for o in ops_a):
            entry["reuse"] = None  # folding (issue #12): null = qir-fold-auto's choice, an integer pins it
        layers[name] = entry
    default = {"weight": str(a), "bias": str(a), "result": str(a)} if any_float else {}
    return {"default": default, "layers": layers}


def _layer_ops(net) -> dict[str, list]:
    from qir.dialect import InputOp
    from qir.ir import get_model, layer_of

    out: dict[str, list] = {}
    for op in get_model(net).block.ops:
        name = layer_of(op)
        if name is not None and op.results and not isinstance(op, InputOp):
            out.setdefault(name, []).append(op)
    return out


def _configurable(ops_a: list, ops_b: list) -> dict:
    """The types of one layer that follow the precision configuration (they differ between two
    imports with different defaults), as imported with the first."""
    from qir.dialect import LutOp, QuantizeOp, elem

    entry: dict[str, str] = {}
    if len(ops_a) != len(ops_b) or [type(o) for o in ops_a] != [type(o) for o in ops_b]:
        return entry
    for oa, ob in zip(ops_a, ops_b):
        for prop, key in (("weight_type", "weight"), ("scale_type", "weight"), ("bias_type", "bias")):
            ta, tb = oa.properties.get(prop), ob.properties.get(prop)
            if ta is not None and tb is not None and ta != tb:
                entry[key] = str(elem(ta))
        if isinstance(oa, QuantizeOp) and oa.output.type != ob.output.type:
            feeds_table = any(isinstance(u.operation, LutOp) for u in oa.output.uses)
            entry["table" if feeds_table else "result"] = str(elem(oa.output.type))
        if isinstance(oa, LutOp) and oa.output.type != ob.output.type:
            entry["result"] = str(elem(oa.output.type))
    return entry


def layer_summary(model: Any, **options) -> list[dict]:
    """Every layer's output type and, for dense/conv/scale layers, weight and bias types (what
    ``qir config`` prints beside the template)."""
    from qir.dialect import elem

    d = model if isinstance(model, Design) else convert(model, **options)
    rows = []
    for name, ops in _layer_ops(d.net).items():
        row = {"layer": name, "result": str(elem(ops[-1].results[0].type))}
        for op in ops:
            for prop, key in (("weight_type", "weight"), ("scale_type", "weight"), ("bias_type", "bias")):
                t = op.properties.get(prop)
                if t is not None:
                    row.setdefault(key, str(elem(t)))
        rows.append(row)
    return rows
