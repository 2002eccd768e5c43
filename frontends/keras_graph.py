"""The layer graph of a saved Keras model (Sequential or Functional, Keras 2 or Keras 3 configs).

``parse_graph`` returns the single model input (name, shape), the layers in a topological order
(each with the names of the layers feeding it) and the output layers.  A layer used more than
once (shared weights), a nested model, several inputs or a layer with several outputs are
reported as errors naming the layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qir.frontends.keras_files import one_line

from qir.errors import QirError


@dataclass(frozen=True)
class KerasLayer:
    """One layer of the saved model."""

    name: str
    class_name: str
    config: dict
    where: str  # "<model file>: layer '<name>' (<class>)"


@dataclass
class Node:
    layer: KerasLayer
    inputs: list[str] = field(default_factory=list)  # producing layer names (the input's name too)


@dataclass
class KerasModel:
    """The parsed model: its input and its layers in topological order."""

    file: Path
    name: str
    input_name: str
    input_shape: tuple[int, ...]
    nodes: list[Node]
    outputs: list[str]

    @property
    def layers(self) -> list[KerasLayer]:
        return [n.layer for n in self.nodes]


NESTED_MODELS = ("Sequential", "Functional", "Model")


def parse_graph(config: Any, file: Path) -> KerasModel:
    try:
        return _model_of(config, file)
    except QirError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
        raise QirError(f"malformed model config ({type(e).__name__}: {one_line(e)}); pass the file "
                       "written by model.to_json() or model.save()", where=str(file)) from None


#: The packages whose layers qir implements: Keras itself (Keras 3, tf.keras, tf_keras) and QKeras.
#: A layer saved by any other package (HGQ/HGQ2's ``hgq>QDense``, a custom ``__main__`` layer) may
#: share a class name with a QKeras layer but not its arithmetic, so it is refused by name.
KNOWN_PACKAGES = ("keras", "tf_keras", "tensorflow", "qkeras")


def layer_package(raw: dict) -> str | None:
    """The package a saved layer comes from when it is not one qir implements, else None.

    Keras 3 records ``module`` (``keras.layers``, ``qkeras.qlayers``, ``hgq.layers...``) and, for
    registered classes, ``registered_name`` (``qkeras>QDense``, ``hgq>QDense``); Keras 2 configs
    may prefix the class name itself (``hgq>QDense``).  Older files carry none of them."""
    for key in ("registered_name", "class_name"):
        text = raw.get(key)
        if isinstance(text, str) and ">" in text:
            package = text.split(">")[0]
            if package.split(".")[0] not in KNOWN_PACKAGES:
                return package
    module = raw.get("module")
    if isinstance(module, str) and module and module.split(".")[0] not in KNOWN_PACKAGES:
        return module
    if module is not None and not isinstance(module, str):
        return repr(module)
    return None


def _layer(raw: dict, index: int, file: Path) -> KerasLayer:
    cfg = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    name = cfg.get("name", raw.get("name"))
    class_name = str(raw.get("class_name", "?")).split(">")[-1]
    if not isinstance(name, str) or not name:
        raise QirError(f"layer #{index} ({class_name}) has no name; every layer config needs "
                       "one", where=str(file))
    where = f"{file}: layer '{name}' ({class_name})"
    package = layer_package(raw)
    if package is not None:
        registered = raw.get("registered_name") or raw.get("class_name")
        raise QirError(f"layer class {str(registered)!r} comes from package {package!r}, which qir does not "
                       f"implement (it reads Keras and QKeras layers only); its quantizers would be lost, "
                       f"so it is refused rather than read as the Keras/QKeras layer of the same name",
                       where=where)
    return KerasLayer(name, class_name, cfg, where)


def batch_shape(cfg: dict, key_order=("batch_input_shape", "batch_shape")) -> tuple[int, ...] | None:
    shape = None
    for key in key_order:
        if isinstance(cfg.get(key), list):
            shape = cfg[key]
            break
    if not isinstance(shape, list) or len(shape) < 2:
        return None
    dims = shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise QirError(f"input shape {shape} is not fully known; only fixed shapes are supported")
    from qir.safety import check_shape

    return check_shape(dims, None, "input")


def _model_of(config: Any, file: Path) -> KerasModel:
    where = str(file)
    if not isinstance(config, dict) or not isinstance(config.get("config"), (dict, list)):
        raise QirError("not a Keras model config (no 'class_name'/'config'); pass the file "
                       "written by model.to_json() or model.save()", where=where)
    package = layer_package(config)
    if package is not None:
        raise QirError(f"the model class {str(config.get('registered_name') or config.get('class_name'))!r} comes "
                       f"from package {package!r}, which qir does not implement (it reads Keras and QKeras "
                       "models only)", where=where)
    body = config["config"]
    raw_layers = body if isinstance(body, list) else body.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers or not all(isinstance(x, dict) for x in raw_layers):
        raise QirError("the model config has no list of layers", where=where)
    layers = [_layer(x, i, file) for i, x in enumerate(raw_layers)]
    model_name = body.get("name") if isinstance(body, dict) else None
    model_name = model_name if isinstance(model_name, str) else file.stem
    names = [lay.name for lay in layers]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise QirError(f"two layers are named '{dup}'; layer names must be unique", where=where)
    for lay in layers:
        if lay.class_name in NESTED_MODELS:
            raise QirError("nested models are not supported; build the model from layers directly "
                           "(or import the inner model alone)", where=lay.where)
    functional = isinstance(body, dict) and any("inbound_nodes" in x for x in raw_layers)
    if functional:
        return _functional(body, raw_layers, layers, file, model_name)
    return _sequential(body, layers, file, model_name)


def _sequential(body: Any, layers: list[KerasLayer], file: Path, model_name: str) -> KerasModel:
    first = layers[0]
    if first.class_name == "InputLayer":
        layers, name = layers[1:], first.name
    else:
        name = f"{first.name}_input"
    try:
        shape = batch_shape(first.config)
        if shape is None and isinstance(body, dict):
            shape = batch_shape(body, ("build_input_shape",))
    except QirError as e:
        raise e.located(first.where) from None
    if shape is None:
        raise QirError("the model does not record its input shape (batch_input_shape)", where=first.where)
    nodes, prev = [], name
    for layer in layers:
        if layer.class_name == "InputLayer":
            raise QirError("only single-input models are supported", where=layer.where)
        nodes.append(Node(layer, [prev]))
        prev = layer.name
    if not nodes:
        raise QirError("the model has no layers after its input", where=str(file))
    return KerasModel(file, model_name, name, shape, nodes, [prev])


def _functional(body: dict, raw_layers: list[dict], layers: list[KerasLayer], file: Path,
                model_name: str) -> KerasModel:
    where = str(file)
    inputs = [lay for lay in layers if lay.class_name == "InputLayer"]
    if len(inputs) != 1:
        raise QirError(f"the model has {len(inputs)} inputs; only single-input models are supported",
                       where=where)
    inp = inputs[0]
    try:
        shape = batch_shape(inp.config)
    except QirError as e:
        raise e.located(inp.where) from None
    if shape is None:
        raise QirError("the input layer does not record its shape (batch_input_shape)", where=inp.where)
    by_name = {lay.name: lay for lay in layers}
    nodes = []
    for raw, layer in zip(raw_layers, layers):
        if layer.class_name == "InputLayer":
            continue
        calls = raw.get("inbound_nodes") or []
        if len(calls) != 1:
            raise QirError(f"the layer is called {len(calls)} times; layers shared between several "
                           "calls are not supported (use one layer per call)", where=layer.where)
        srcs = _sources(calls[0])
        for s, idx in srcs:
            if s not in by_name:
                raise QirError(f"takes its input from unknown layer '{s}'", where=layer.where)
            if idx != 0:
                raise QirError(f"takes output {idx} of layer '{s}'; only single-output layers are "
                               "supported", where=layer.where)
        if not srcs:
            raise QirError("has no input", where=layer.where)
        nodes.append(Node(layer, [s for s, _ in srcs]))
    outs = _output_names(body.get("output_layers"))
    if not outs:
        raise QirError("the model config names no output layers", where=where)
    for o in outs:
        if o not in by_name:
            raise QirError(f"output layer '{o}' is not in the model", where=where)
    return KerasModel(file, model_name, inp.name, shape, _topological(nodes, inp.name, where), outs)


def _sources(node: Any) -> list[tuple[str, int]]:
    """(layer name, tensor index) of one call's inputs: Keras 2 nested lists or Keras 3 dicts."""
    out: list[tuple[str, int]] = []
    if isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        for t in node:
            if isinstance(t, list) and t and isinstance(t[0], str):
                if len(t) > 1 and t[1] not in (0, None):
                    raise QirError(f"input '{t[0]}' is from a second call of that layer; shared layers "
                                   "are not supported")
                out.append((t[0], int(t[2]) if len(t) > 2 and isinstance(t[2], int) else 0))
        return out
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                hist = v.get("config", {}).get("keras_history") if isinstance(v.get("config"), dict) else None
                if v.get("class_name") == "__keras_tensor__" and isinstance(hist, list) and hist:
                    if len(hist) > 1 and hist[1] not in (0, None):
                        raise QirError(f"input '{hist[0]}' is from a second call of that layer; shared "
                                       "layers are not supported")
                    out.append((str(hist[0]), int(hist[2]) if len(hist) > 2 and isinstance(hist[2], int) else 0))
                    return
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(node.get("args", []))
        walk(node.get("kwargs", {}))
    return out


def _output_names(outs: Any) -> list[str]:
    if isinstance(outs, dict):  # Keras 3 may write a single output as a dict-free list
        outs = list(outs.values())
    if not isinstance(outs, list) or not outs:
        return []
    if isinstance(outs[0], str):  # a single [name, 0, 0]
        return [outs[0]]
    return [o[0] for o in outs if isinstance(o, list) and o and isinstance(o[0], str)]


def _topological(nodes: list[Node], input_name: str, where: str) -> list[Node]:
    done, order, pending = {input_name}, [], list(nodes)
    while pending:
        ready = [n for n in pending if all(s in done for s in n.inputs)]
        if not ready:
            n = pending[0]
            missing = [s for s in n.inputs if s not in done]
            raise QirError(f"the layer graph has a cycle or a dangling input ({missing})", where=n.layer.where)
        for n in ready:
            order.append(n)
            done.add(n.layer.name)
        pending = [n for n in pending if n not in ready]
    return order
