"""Keras 2 / QKeras frontend: saved models to one ``qir.model``, without importing TensorFlow.

Reads ``MODEL.json`` + ``MODEL_weights.h5`` (Keras ``save_weights`` layout) or one full-model
``.h5`` (root attribute ``model_config``, weights under ``model_weights/``).  JSON is parsed with
``json``, weights with h5py, quantizer strings with the hand-written grammar of
``keras_quantizers``; nothing from the file is ever evaluated.

Import runs in two phases: every layer is first translated into steps (dense, relu, quantize,
softmax) by the handler registered for its class with ``@layer_handler``, which validates the
whole model and its weights; only then is the input type settled and the IR built.  Identity
layers (Dropout, linear activations) produce no op.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from qir.dialect import (
    DenseOp,
    InputOp,
    OutputOp,
    QuantizeOp,
    ReluOp,
    dense_bounds,
    elem,
    fixed_type,
    int_elements,
    tensor_of,
)
from qir.errors import QirError
from qir.fixed import Fixed
from qir.ir import new_model, set_layer, verify

from qir.frontends.keras_quantizers import (
    Quantize,
    Quantizer,
    Relu,
    Softmax,
    exact_fixed,
    resolve_activation,
    resolve_quantizer,
)

SOFTMAX_MODES = ("keep", "none")


# ------------------------------------------------------------------------------ model structure
@dataclass(frozen=True)
class KerasLayer:
    """One layer of the saved model."""

    name: str
    class_name: str
    config: dict
    where: str  # "<model file>: layer '<name>' (<class>)"


@dataclass(frozen=True)
class DenseStep:
    """y = x @ W + b with integer mantissas and their exact fixed types."""

    weights: np.ndarray
    weight_type: Fixed
    bias: np.ndarray | None
    bias_type: Fixed | None


@dataclass
class KerasModel:
    """The parsed model: its input and the chain of layers after it."""

    file: Path
    input_name: str
    input_shape: tuple[int, ...]
    layers: list[KerasLayer]


class WeightStore:
    """Lazy reader of a Keras weights group; errors name the weights file and the layer."""

    def __init__(self, path: Path, group: str | None = None):
        self.path, self.group = path, group
        self._file: h5py.File | None = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def where(self, layer: KerasLayer) -> str:
        return f"{self.path}: layer '{layer.name}' ({layer.class_name})"

    def read(self, layer: KerasLayer) -> list[tuple[str, np.ndarray]]:
        """The layer's variables as (base name, float32 array), in ``weight_names`` order."""
        where = self.where(layer)
        try:
            root = self._root()
            if layer.name not in root:
                raise QirError("the weights file has no weights for this layer; pass the weights "
                               "file saved with this model (--weights)", where=where)
            g = root[layer.name]
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
            return [(_var_name(n), _float_array(g[n][()], n)) for n in names]
        except FileNotFoundError:
            raise QirError("no such weights file; pass the weights .h5 saved with this model "
                           "(--weights)", where=where) from None
        except QirError as e:
            raise e.located(where) from None
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            raise QirError(f"cannot read the weights ({_one_line(e)}); the .h5 file is truncated or "
                           "corrupt: save the weights again", where=where) from None

    def _root(self) -> h5py.Group:
        if self._file is None:
            if not self.path.is_file():
                raise FileNotFoundError(self.path)
            self._file = h5py.File(self.path, "r")
        root = self._file[self.group] if self.group else self._file
        if "layer_names" not in root.attrs and "model_weights" in root:  # a full-model .h5
            root = root["model_weights"]
        if "layer_names" not in root.attrs:
            raise QirError("not a Keras 2 weights file (no 'layer_names' attribute); Keras 3 "
                           ".weights.h5 files are not supported yet: save with tf-keras "
                           "save_weights('model_weights.h5')")
        return root


def _var_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(":", 1)[0]


def _float_array(data: Any, name: str) -> np.ndarray:
    arr = np.asarray(data)
    if arr.dtype.kind != "f":
        raise QirError(f"variable {name!r} has dtype {arr.dtype}, expected float weights")
    return arr.astype(np.float32)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


# ------------------------------------------------------------------------------ loading
def _load(path: Path, weights: Path | None) -> tuple[dict, WeightStore]:
    """The model config dict and a weight store for it."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = _read_text(path)
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise QirError(f"invalid JSON ({e.msg} at line {e.lineno}); pass the file written by "
                           "model.to_json()", where=str(path)) from None
        store = WeightStore(weights or path.with_name(f"{path.stem}_weights.h5"))
        return config, store
    if suffix in (".h5", ".hdf5"):
        config = _h5_model_config(path)
        store = WeightStore(weights, None) if weights else WeightStore(path, "model_weights")
        return config, store
    raise QirError(f"unsupported model file type {suffix or '(none)'!r}; pass a Keras model .json "
                   "(with its weights .h5) or a full-model .h5", where=str(path))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QirError("no such file", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise QirError(f"cannot read the model file: {_one_line(e)}", where=str(path)) from None


def _h5_model_config(path: Path) -> dict:
    if not path.is_file():
        raise QirError("no such file", where=str(path))
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise QirError("this .h5 has no 'model_config' attribute (a weights-only file?); "
                               "pass the model .json and this file as --weights", where=str(path))
            return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise QirError(f"cannot read the model ({_one_line(e)}); the .h5 file is truncated or "
                       "corrupt", where=str(path)) from None


def _parse_model(config: Any, file: Path) -> KerasModel:
    """The input and the layer chain of a Sequential or Functional config."""
    try:
        return _model_of(config, file)
    except QirError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
        raise QirError(f"malformed model config ({type(e).__name__}: {_one_line(e)}); pass the file "
                       "written by model.to_json()", where=str(file)) from None


def _model_of(config: Any, file: Path) -> KerasModel:
    where = str(file)
    if not isinstance(config, dict) or not isinstance(config.get("config"), (dict, list)):
        raise QirError("not a Keras model config (no 'class_name'/'config'); pass the file "
                       "written by model.to_json()", where=where)
    body = config["config"]
    raw_layers = body if isinstance(body, list) else body.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers or not all(isinstance(x, dict) for x in raw_layers):
        raise QirError("the model config has no list of layers", where=where)
    layers = [_layer(x, i, file) for i, x in enumerate(raw_layers)]
    if isinstance(body, dict) and any("inbound_nodes" in x for x in raw_layers):
        _check_chain(body, raw_layers, layers, where)
    first = layers[0]
    if first.class_name == "InputLayer":
        layers, name = layers[1:], first.name
    else:
        name = f"{first.name}_input"
    try:
        shape = _batch_shape(first.config)
    except QirError as e:
        raise e.located(first.where) from None
    if shape is None:
        raise QirError("the model does not record its input shape (batch_input_shape)", where=first.where)
    for layer in layers:
        if layer.class_name == "InputLayer":
            raise QirError("only single-input models are supported", where=layer.where)
    return KerasModel(file, name, shape, layers)


def _layer(raw: dict, index: int, file: Path) -> KerasLayer:
    cfg = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    name = cfg.get("name", raw.get("name"))
    class_name = str(raw.get("class_name", "?")).split(">")[-1]
    if not isinstance(name, str) or not name:
        raise QirError(f"layer #{index} ({class_name}) has no name; every layer config needs "
                       "one", where=str(file))
    return KerasLayer(name, class_name, cfg, f"{file}: layer '{name}' ({class_name})")


def _batch_shape(cfg: dict) -> tuple[int, ...] | None:
    shape = cfg.get("batch_input_shape", cfg.get("batch_shape"))
    if not isinstance(shape, list) or len(shape) < 2:
        return None
    dims = shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise QirError(f"input shape {shape} is not fully known; only fixed shapes are supported")
    return tuple(dims)


def _check_chain(body: dict, raw_layers: list[dict], layers: list[KerasLayer], where: str) -> None:
    """Functional models: each layer must take the previous one's output (a simple chain)."""
    for prev, raw, layer in zip(layers, raw_layers[1:], layers[1:]):
        sources = _inbound(raw.get("inbound_nodes"))
        if sources != [prev.name]:
            raise QirError(f"takes its input from {sources or 'nothing'}, not from the previous layer "
                           f"'{prev.name}'; only chains of layers are supported", where=layer.where)
    outs = body.get("output_layers")
    if isinstance(outs, list) and outs and layers:
        names = [outs[0]] if isinstance(outs[0], str) else [o[0] for o in outs if isinstance(o, list) and o]
        if names != [layers[-1].name]:
            raise QirError(f"model outputs {names} are not the last layer; only single-output "
                           "chains are supported", where=where)


def _inbound(nodes: Any) -> list[str]:
    """Names of the layers feeding a layer (Keras 2 nested lists or Keras 3 dicts)."""
    names: list[str] = []
    for node in nodes or []:
        if isinstance(node, list):
            names += [t[0] for t in node if isinstance(t, list) and t and isinstance(t[0], str)]
        elif isinstance(node, dict):
            for arg in node.get("args", []):
                hist = arg.get("config", {}).get("keras_history") if isinstance(arg, dict) else None
                if isinstance(hist, list) and hist:
                    names.append(hist[0])
    return names


# ------------------------------------------------------------------------------ layer handlers
@dataclass
class ImportContext:
    """What layer handlers may use besides their layer."""

    weights: WeightStore
    precision: Fixed | None


Handler = Callable[[KerasLayer, ImportContext], list]
_HANDLERS: dict[str, Handler] = {}


def layer_handler(*class_names: str):
    """Register a function translating layers of these Keras classes into steps."""
    def register(fn: Handler) -> Handler:
        for name in class_names:
            _HANDLERS[name] = fn
        return fn
    return register


@layer_handler("Dropout")
def _identity(layer: KerasLayer, ctx: ImportContext) -> list:
    return []


@layer_handler("Activation")
def _activation(layer: KerasLayer, ctx: ImportContext) -> list:
    act = resolve_activation(layer.config.get("activation"))
    if isinstance(act, Quantizer):
        raise QirError("a quantizer in a plain Activation layer is not supported; use QActivation")
    return act.steps()


@layer_handler("QActivation")
def _qactivation(layer: KerasLayer, ctx: ImportContext) -> list:
    return resolve_activation(layer.config.get("activation")).steps()


@layer_handler("QDense", "Dense")
def _dense(layer: KerasLayer, ctx: ImportContext) -> list:
    cfg = layer.config
    variables = ctx.weights.read(layer)
    units = cfg.get("units")
    kernel = _variable(variables, "kernel", 0, layer, ctx)
    if kernel.ndim != 2 or kernel.shape[1] != units:
        raise QirError(f"kernel shape {kernel.shape} does not match units={units}; the weights "
                       "file does not belong to this model")
    kq = bq = None
    if layer.class_name == "QDense":
        kq = resolve_quantizer(cfg.get("kernel_quantizer"))
        kq = kq.for_kernel() if kq is not None else None
        bq = resolve_quantizer(cfg.get("bias_quantizer"))
    act = resolve_activation(cfg.get("activation")).steps()
    w, wt = _quantize_param(kq, kernel, ctx.precision, "kernel")
    b = bt = None
    if cfg.get("use_bias", True):
        bias = _variable(variables, "bias", 1, layer, ctx)
        if bias.shape != (units,):
            raise QirError(f"bias shape {bias.shape} does not match units={units}; the weights "
                           "file does not belong to this model")
        b, bt = _quantize_param(bq, bias, ctx.precision, "bias")
    return [DenseStep(w, wt, b, bt), *act]


def _variable(variables: list[tuple[str, np.ndarray]], name: str, index: int, layer: KerasLayer,
              ctx: ImportContext) -> np.ndarray:
    by_name = dict(variables)
    if name in by_name:
        return by_name[name]
    if index < len(variables):
        return variables[index][1]
    raise QirError(f"the weights file has no '{name}' for this layer (found "
                   f"{[n for n, _ in variables] or 'none'}); pass the weights saved with this model",
                   where=ctx.weights.where(layer))


def _quantize_param(q: Quantizer | None, values: np.ndarray, precision: Fixed | None, what: str):
    """Mantissas and exact type of a quantized kernel/bias (float ones go through ``precision``)."""
    if q is not None:
        return exact_fixed(q.quantize_weights(values), f"quantized {what}")
    if precision is None:
        raise QirError(f"the {what} is float (no quantizer); pass --precision 'fixed<W,I>' "
                       "(precision=Fixed(W, I)) to round it to that type")
    if precision.width > 53:
        raise QirError(f"--precision {precision} is wider than 53 bits; float weights are rounded "
                       "exactly only up to 53 bits")
    with np.errstate(all="ignore"):
        scaled = np.rint(np.ldexp(values.astype(np.float64), precision.frac))
    mant = np.clip(scaled, precision.min_int, precision.max_int)
    return exact_fixed(np.ldexp(mant, -precision.frac), what)


# ------------------------------------------------------------------------------ planning
def _plan(model: KerasModel, ctx: ImportContext) -> list[tuple[KerasLayer, list]]:
    """Every layer's steps, with shapes checked along the chain."""
    plans, shape = [], model.input_shape
    for layer in model.layers:
        handler = _HANDLERS.get(layer.class_name)
        if handler is None:
            raise QirError(f"unsupported layer class '{layer.class_name}'; supported: "
                           f"{', '.join(sorted(_HANDLERS))}", where=layer.where)
        try:
            steps = handler(layer, ctx)
            shape = _propagate(steps, shape)
        except QirError as e:
            raise e.located(layer.where) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
            raise QirError(f"malformed layer config ({type(e).__name__}: {_one_line(e)})",
                           where=layer.where) from None
        plans.append((layer, steps))
    return plans


def _propagate(steps: list, shape: tuple[int, ...]) -> tuple[int, ...]:
    for step in steps:
        if isinstance(step, DenseStep):
            n_in, n_out = step.weights.shape
            if shape != (n_in,):
                raise QirError(f"the kernel expects {n_in} inputs but the layer receives shape "
                               f"{shape}; only flat (1-D) inputs are supported for now")
            shape = (n_out,)
    return shape


def _apply_softmax(plans: list[tuple[KerasLayer, list]], mode: str) -> None:
    """Strip a final softmax (mode 'none'); any softmax left is an error."""
    with_steps = [p for p in plans if p[1]]
    if mode == "none" and with_steps and isinstance(with_steps[-1][1][-1], Softmax):
        with_steps[-1][1].pop()
    for i, (layer, steps) in enumerate(plans):
        if any(isinstance(s, Softmax) for s in steps):
            final = all(not later for _, later in plans[i + 1:]) and isinstance(steps[-1], Softmax)
            hint = ("hardware softmax is not supported yet; pass --softmax none (softmax='none') to "
                    "output the logits") if final else (
                    "softmax is only supported as the final layer, where --softmax none strips it")
            raise QirError(hint, where=layer.where)


def _input_type(model: KerasModel, plans: list[tuple[KerasLayer, list]], given: Fixed | None) -> Fixed:
    if given is not None:
        return given
    if plans and plans[0][0].class_name == "QActivation" and plans[0][1] \
            and isinstance(plans[0][1][-1], Quantize):
        return plans[0][1][-1].type
    raise QirError("model has no input quantizer; pass --input-type 'fixed<W,I>' "
                   "(input_type=Fixed(W, I)) with the fixed-point type of the inputs",
                   where=str(model.file))


# ------------------------------------------------------------------------------ IR building
def _build_dense(step: DenseStep, x: SSAValue) -> Operation:
    props = {"weights": int_elements(step.weights), "weight_type": fixed_type(step.weight_type)}
    if step.bias is not None:
        props |= {"bias": int_elements(step.bias), "bias_type": fixed_type(step.bias_type)}
    probe = DenseOp.create(operands=[x], result_types=[x.type], properties=props)
    w, off, frac, _ = probe.folded()
    probe.erase()
    lo, hi = dense_bounds(elem(x.type), w, off)
    out_t = Fixed.for_range(int(min(lo, default=0)), int(max(hi, default=0)), frac)
    return DenseOp.create(operands=[x], result_types=[tensor_of(out_t, [w.shape[1]])],
                          properties=props)


def _build_op(step: Any, x: SSAValue) -> Operation:
    if isinstance(step, DenseStep):
        return _build_dense(step, x)
    if isinstance(step, Relu):
        return ReluOp.create(operands=[x], result_types=[x.type])
    if isinstance(step, Quantize):
        return QuantizeOp(x, tensor_of(step.type, x.type.get_shape()), step.rounding, step.overflow)
    raise QirError(f"internal: no IR for step {step!r}")


def _build(model: KerasModel, in_t: Fixed, plans: list[tuple[KerasLayer, list]]) -> ModuleOp:
    module, _, block = new_model(_symbol(model.file.stem))
    inp = InputOp("x", tensor_of(in_t, model.input_shape), layer=model.input_name)
    block.add_op(inp)
    value = inp.result
    for layer, steps in plans:
        for step in steps:
            try:
                op = set_layer(_build_op(step, value), layer.name)
            except QirError as e:
                raise e.located(layer.where) from None
            block.add_op(op)
            value = op.results[0]
    block.add_op(OutputOp(value))
    verify(module, str(model.file))
    return module


def _symbol(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return name if name and not name[0].isdigit() else f"model_{name}"


# ------------------------------------------------------------------------------ entry point
def import_keras(path: str | Path, *, weights: str | Path | None = None,
                 input_type: Fixed | None = None, softmax: str = "keep",
                 precision: Fixed | None = None) -> ModuleOp:
    """Import a Keras 2 / QKeras model (``.json`` + weights ``.h5``, or a full-model ``.h5``)."""
    if softmax not in SOFTMAX_MODES:
        raise QirError(f"softmax must be one of {', '.join(SOFTMAX_MODES)}, got {softmax!r}")
    for arg, val in (("input_type", input_type), ("precision", precision)):
        if val is not None and not isinstance(val, Fixed):
            raise QirError(f"{arg} must be a Fixed (e.g. Fixed.parse('fixed<16,6>')), got {val!r}")
    path = Path(path)
    config, store = _load(path, Path(weights) if weights is not None else None)
    try:
        model = _parse_model(config, path)
        plans = _plan(model, ImportContext(store, precision))
    finally:
        store.close()
    _apply_softmax(plans, softmax)
    in_t = _input_type(model, plans, input_type)
    return _build(model, in_t, plans)
