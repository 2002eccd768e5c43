"""Keras / QKeras frontend: saved models (or a live ``keras.Model``) to one ``qir.model``, without
importing TensorFlow.

Inputs: QKeras and plain Keras models as ``MODEL.json`` + ``MODEL_weights.h5``, a full-model
``.h5``, a Keras 3 ``.keras`` archive (QKeras-v3 models included) or a live ``keras.Model``
(``keras_files``).  Sequential and functional models with branches (Add, Concatenate) import
(``keras_graph``); nothing from a file is ever evaluated or unpickled.

Import runs in phases:

1. *plan*: every layer is translated into steps (``keras_steps``) by the handler registered for its
   class with ``@layer_handler`` (``keras_layers``), which validates the layer and its weights;
   shapes are checked along the graph;
2. *fold*: a (Q)BatchNormalization right after a float Dense/Conv (its only consumer) is folded
   into that layer's float weights; any other batch normalization becomes a ``qir.scale``;
3. *precision*: float constants get their types from the precision configuration
   (``qir.precision``; ``--precision T`` or a file), and a layer with float constants gets its
   result cast; float activations (tanh, sigmoid, ...) become tables;
4. *build*: the input type is settled and the IR built, one or more ops per layer, each op
   carrying ``layer = "<Keras layer name>"``.

Quantized parts are exact: QKeras quantizers are reproduced bit for bit (``keras_quantizers``).
Float parts follow the precision configuration (see ``qir.precision`` for the rules).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qir.frontends import keras_files
from qir.frontends.keras_files import Source, Variables, WeightStore, one_line
from qir.frontends.keras_graph import KerasLayer, KerasModel, parse_graph
from qir.frontends.keras_quantizers import FloatFunction, Quantizer, resolve_activation
from qir.frontends.keras_steps import (
    BatchNormStep,
    ConvStep,
    DenseStep,
    Param,
    Quantize,
    Softmax,
    SoftmaxTable,
    Step,
)
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from qir.dialect import InputOp, OutputOp, tensor_of
from qir.errors import QirError
from qir.fixed import Fixed
from qir.ir import new_model, set_layer, verify
from qir.names import legalize
from qir.precision import DEFAULT_TABLE_INPUT, LayerPrecision, PrecisionConfig

SOFTMAX_MODES = ("keep", "none", "table")
PTQ_MODES = ("reject", "weight-only", "emulate")

__all__ = ["import_keras", "layer_handler", "supported_layers", "ImportContext", "KerasLayer", "DenseStep",
           "Quantizer", "resolve_activation", "SOFTMAX_MODES", "PTQ_MODES"]


# ------------------------------------------------------------------------------ layer handlers
@dataclass
class ImportContext:
    """What layer handlers may use besides their layer."""

    weights: WeightStore
    precision: PrecisionConfig | None
    approximate: bool = False
    ptq: str = "reject"
    keras_version: str | None = None
    in_shapes: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.in_shapes[0]

    def variables(self, layer: KerasLayer) -> Variables:
        return self.weights.read(layer)


Handler = Callable[[KerasLayer, ImportContext], list]
_HANDLERS: dict[str, Handler] = {}


def layer_handler(*class_names: str):
    """Register a function translating layers of these Keras classes into steps."""
    def register(fn: Handler) -> Handler:
        for name in class_names:
            _HANDLERS[name] = fn
        return fn
    return register


def supported_layers() -> list[str]:
    return sorted(_HANDLERS)


# ------------------------------------------------------------------------------ planning
@dataclass
class Planned:
    """One layer after planning: its steps, inputs and output shape."""

    layer: KerasLayer
    inputs: list[str]
    steps: list
    shape: tuple[int, ...]
    precision_name: str  # the precision entry that types its float constants


def _plan(model: KerasModel, ctx: ImportContext) -> list[Planned]:
    shapes = {model.input_name: model.input_shape}
    plans = []
    for node in model.nodes:
        layer = node.layer
        handler = _HANDLERS.get(layer.class_name)
        if handler is None:
            raise QirError(f"unsupported layer class '{layer.class_name}'; supported: "
                           f"{', '.join(supported_layers())}", where=layer.where)
        ctx.in_shapes = [shapes[s] for s in node.inputs]
        try:
            steps = list(handler(layer, ctx))
            shape = _propagate(steps, ctx.in_shapes)
        except QirError as e:
            raise e.located(layer.where) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
            raise QirError(f"malformed layer config ({type(e).__name__}: {one_line(e)})",
                           where=layer.where) from None
        shapes[layer.name] = shape
        plans.append(Planned(layer, list(node.inputs), steps, shape, layer.name))
    return plans


def _propagate(steps: list, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    if not steps or steps[0].arity == 1:
        if len(shapes) != 1:
            raise QirError(f"this layer takes one input, got {len(shapes)}")
    for step in steps:
        shapes = [step.out_shape(shapes)]
    return shapes[0]


# ------------------------------------------------------------------------------ batchnorm folding
def _fold_batchnorms(plans: list[Planned], outputs: list[str]) -> list[Planned]:
    """Fold each batch normalization that directly follows a float Dense/Conv (its only consumer,
    not a model output) into that layer's float constants; the folded ops carry the batch
    normalization's name and use the Dense/Conv layer's precision entry."""
    consumers: dict[str, int] = {}
    for p in plans:
        for s in p.inputs:
            consumers[s] = consumers.get(s, 0) + 1
    by_name = {p.layer.name: p for p in plans}
    removed = set()
    for p in plans:
        if len(p.steps) != 1 or not isinstance(p.steps[0], BatchNormStep):
            continue
        prod = by_name.get(p.inputs[0])
        if prod is None or consumers.get(prod.layer.name) != 1 or prod.layer.name in outputs or not prod.steps:
            continue
        last = prod.steps[-1]
        if not isinstance(last, (DenseStep, ConvStep)) or last.kernel.exact or \
                (last.bias is not None and last.bias.exact):
            continue
        bn = p.steps[0]
        s, t = bn.scale.values, bn.shift.values
        kernel = Param.of_float(last.kernel.values * s)
        bias = Param.of_float((last.bias.values if last.bias is not None else 0.0) * s + t)
        prod.steps[-1] = replace(last, kernel=kernel, bias=bias)
        p.steps, p.inputs, p.precision_name = prod.steps, prod.inputs, prod.precision_name
        removed.add(prod.layer.name)
    return [p for p in plans if p.layer.name not in removed]


# ------------------------------------------------------------------------------ precision
@dataclass
class Typed:
    """A step with the types its float constants round to."""

    step: Any
    types: dict[str, Fixed]


def _float_error(what: str, src: str) -> QirError:
    return QirError(f"this layer has float {what} (no quantizer) and no type is configured for them; "
                    f"pass --precision 'fixed<W,I>' (precision=Fixed(W, I)) or set them in {src}")


def _apply_precision(plans: list[Planned], precision: PrecisionConfig | None) -> list[tuple[Planned, list[Typed]]]:
    out = []
    for p in plans:
        try:
            out.append((p, _typed_steps(p, precision)))
        except QirError as e:
            raise e.located(p.layer.where) from None
    return out


def _typed_steps(p: Planned, precision: PrecisionConfig | None) -> list[Typed]:
    lp: LayerPrecision | None = precision.for_layer(p.precision_name) if precision else None
    src = precision.source if precision else "the precision configuration"
    steps = [s.as_scale() if isinstance(s, BatchNormStep) else s for s in p.steps]
    typed: list[Typed] = []
    last_float = max((i for i, s in enumerate(steps) if isinstance(s, Step)
                      and any(not prm.exact for prm in s.params().values())), default=-1)
    for i, s in enumerate(steps):
        if isinstance(s, SoftmaxTable):
            typed.append(Typed(SoftmaxTable(lp.table if lp else None, lp.result if lp else None), {}))
            continue
        if isinstance(s, FloatFunction):
            if lp is None or lp.result is None:
                raise QirError(f"activation '{s.name}' is computed by a table whose precision must be "
                               "configured; pass --precision 'fixed<W,I>' (the table's result type) or set "
                               f"'result' (and optionally 'table', the index type) in {src}")
            typed.append(Typed(s.table(lp.table or DEFAULT_TABLE_INPUT, lp.result), {}))
            continue
        types: dict[str, Fixed] = {}
        if isinstance(s, Step):
            for role, prm in s.params().items():
                if prm.exact:
                    continue
                t = getattr(lp, role) if lp is not None else None
                if t is None:
                    raise _float_error("weights" if role == "weight" else "biases", src)
                if t.width > 53:
                    raise QirError(f"the {role} type {t} is wider than 53 bits; float constants are "
                                   "rounded exactly only up to 53 bits")
                types[role] = t
        typed.append(Typed(s, types))
        if i == last_float and lp is not None:
            if lp.accum is not None:
                typed.append(Typed(Quantize(lp.accum, lp.accum_rounding, lp.accum_overflow), {}))
            if lp.result is not None:
                typed.append(Typed(Quantize(lp.result, lp.result_rounding, lp.result_overflow), {}))
    return typed


# ------------------------------------------------------------------------------ softmax, input type
def _final_layers(plans: list[Planned], outputs: list[str]) -> set[str]:
    """Layers whose result reaches a model output only through identity layers (no steps)."""
    by_name = {p.layer.name: p for p in plans}
    consumers: dict[str, list[str]] = {}
    for p in plans:
        for s in p.inputs:
            consumers.setdefault(s, []).append(p.layer.name)
    final = set()
    for out in outputs:
        name = out
        while True:
            if consumers.get(name, []) and name != out and len(consumers[name]) != 1:
                break
            final.add(name)
            p = by_name.get(name)
            if p is None or p.steps or len(p.inputs) != 1 or len(consumers.get(p.inputs[0], [])) != 1:
                break
            name = p.inputs[0]
    return final


def _apply_softmax(plans: list[Planned], outputs: list[str], mode: str) -> None:
    """Strip a final softmax (mode 'none') or replace it by the table approximation (mode 'table',
    ``qir.frontends.softmax``); any softmax left is an error."""
    final = _final_layers(plans, outputs)
    for p in plans:
        if mode in ("none", "table") and p.layer.name in final and p.steps and isinstance(p.steps[-1], Softmax):
            p.steps.pop()
            if mode == "table":
                p.steps.append(SoftmaxTable())
    for p in plans:
        if any(isinstance(s, Softmax) for s in p.steps):
            last = p.layer.name in final and isinstance(p.steps[-1], Softmax)
            hint = ("exact hardware softmax is not supported; pass --softmax table (softmax='table') for "
                    "the documented table approximation, or --softmax none (softmax='none') to output the "
                    "logits") if last else (
                    "softmax is only supported as the final layer, where --softmax table approximates it "
                    "and --softmax none strips it")
            raise QirError(hint, where=p.layer.where)


def _input_type(model: KerasModel, plans: list[Planned], given: Fixed | None) -> Fixed:
    if given is not None:
        return given
    first = [p for p in plans if model.input_name in p.inputs]
    if len(first) == 1 and first[0].layer.class_name == "QActivation" and first[0].steps \
            and isinstance(first[0].steps[-1], Quantize):
        return first[0].steps[-1].type
    raise QirError("model has no input quantizer; pass --input-type 'fixed<W,I>' "
                   "(input_type=Fixed(W, I)) with the fixed-point type of the inputs",
                   where=str(model.file))


# ------------------------------------------------------------------------------ IR building
def _build(model: KerasModel, in_t: Fixed, typed: list[tuple[Planned, list[Typed]]]) -> ModuleOp:
    module, _, block = new_model(legalize(model.file.stem, "model"))
    inp = InputOp("x", tensor_of(in_t, model.input_shape), layer=model.input_name)
    block.add_op(inp)
    values: dict[str, SSAValue] = {model.input_name: inp.result}
    for p, steps in typed:
        name = p.layer.name

        def emit(op: Operation, name=name) -> SSAValue:
            block.add_op(set_layer(op, name))
            return op.results[0]

        xs = [values[s] for s in p.inputs]
        try:
            for t in steps:
                xs = [t.step.build(xs, emit, t.types)]
        except QirError as e:
            raise e.located(p.layer.where) from None
        values[name] = xs[0]
    block.add_op(OutputOp(*[values[o] for o in model.outputs]))
    verify(module, str(model.file))
    return module


# ------------------------------------------------------------------------------ entry point
def _as_precision(precision: Any) -> PrecisionConfig | None:
    if precision is None or isinstance(precision, PrecisionConfig):
        return precision
    if isinstance(precision, Fixed):
        return PrecisionConfig.from_type(precision)
    raise QirError(f"precision must be a Fixed (e.g. Fixed.parse('fixed<18,8>')) or a PrecisionConfig, "
                   f"got {precision!r}")


def import_keras(path: Any, *, weights: str | Path | None = None, input_type: Fixed | None = None,
                 softmax: str = "keep", precision: Fixed | PrecisionConfig | None = None,
                 approximate: bool = False, ptq: str = "reject") -> ModuleOp:
    """Import a Keras / QKeras model: a ``.json`` (+ weights ``.h5``), a full-model ``.h5``, a
    ``.keras`` archive, or a live ``keras.Model``.

    ``precision``: types for float parts (a ``Fixed`` sets weight, bias and result types, or a
    ``PrecisionConfig``).  ``approximate``: accept QKeras ``alpha='auto'`` weights (imported as
    QKeras's float32 values, exact but not a narrow grid).  ``ptq``: Keras 3 int8/int4 layers with
    dynamic activation quantization are rejected ('reject'), lowered with their integer weights
    on the static input grid and the per-channel rescale typed by the precision ('weight-only'), or
    (int8) emulated literally with per-row max-abs and scale tables ('emulate', keras_ptq).
    ``softmax``: a final softmax is rejected ('keep'), stripped ('none') or approximated with
    exp/reciprocal tables ('table', qir.frontends.softmax)."""
    if softmax not in SOFTMAX_MODES:
        raise QirError(f"softmax must be one of {', '.join(SOFTMAX_MODES)}, got {softmax!r}")
    if ptq not in PTQ_MODES:
        raise QirError(f"ptq must be one of {', '.join(PTQ_MODES)}, got {ptq!r}")
    if input_type is not None and not isinstance(input_type, Fixed):
        raise QirError(f"input_type must be a Fixed (e.g. Fixed.parse('fixed<16,6>')), got {input_type!r}")
    prec = _as_precision(precision)
    if isinstance(path, (str, Path)):
        path = Path(path)
        source = keras_files.load(path, Path(weights) if weights is not None else None)
    elif hasattr(path, "to_json") and hasattr(path, "get_layer"):
        source = keras_files.load_live(path)
    else:
        raise QirError(f"cannot import {type(path).__name__}: pass a model file path or a keras.Model")
    return _import(source, input_type, softmax, prec, approximate, ptq)


def _import(source: Source, input_type, softmax, prec, approximate, ptq) -> ModuleOp:
    ctx = ImportContext(source.weights, prec, approximate, ptq, source.keras_version)
    try:
        model = parse_graph(source.config, source.file)
        plans = _plan(model, ctx)
    finally:
        source.weights.close()
    plans = _fold_batchnorms(plans, model.outputs)
    _apply_softmax(plans, model.outputs, softmax)
    typed = _apply_precision(plans, prec)
    in_t = _input_type(model, plans, input_type)
    return _build(model, in_t, typed)


from qir.frontends import keras_layers as _keras_layers  # noqa: E402,F401  (registers the handlers)
