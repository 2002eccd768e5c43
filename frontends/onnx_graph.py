"""ONNX graph preparation for the ONNX frontend: load, validate, upgrade, fix the batch dimension.

Everything here works on the protobuf only (``onnx``'s loader, checker, version converter and
shape inference); nothing from the file is ever executed.  The result is a ``Graph``: the nodes in
order, every constant (initializers and ``Constant`` nodes) as a numpy array, the one model input
with its per-sample shape, and the outputs.

Steps, in order:

1. **Load** with ``onnx.load`` (no external data yet); a truncated or corrupt file is a
   ``QirError``, never a protobuf traceback.
2. **External data** (weights in files beside the ``.onnx``) is loaded from the model's folder;
   a missing or short file is a ``QirError`` naming it.
3. **Batch dimension**: the input's first dimension may be symbolic or any fixed size (exports
   in the wild carry e.g. 789444); it is set to 1 for preparation and dropped from every shape the
   importer sees.  Every other input dimension must be a known size (else "unresolved dynamic
   shape").  Stale ``value_info`` and output shapes are cleared so they cannot contradict.
4. **Opset upgrade**: graphs on a default-domain opset older than 13 are converted with the onnx
   version converter (so Squeeze/Unsqueeze/Reshape/Softmax have their modern forms); custom
   domains (QONNX, FINN, Brevitas) are left alone.  A default-domain opset newer than
   ``MAX_OPSET`` (25, the newest the handlers are tested against) is refused by name.
5. **Check and shape inference**: ``onnx.checker`` (structure), then shape inference, which
   fills ``shapes`` for the standard ops (the importer computes shapes of its own ops itself).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from qir.errors import QirError
from qir.safety import MAX_TENSOR_ELEMENTS, check_shape, inside_folder

#: QONNX custom-op domains (the general ops: Quant/IntQuant, BipolarQuant, Trunc, MultiThreshold).
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas", "finn")
#: QONNX channels-last wrappers of standard ops (Conv, MaxPool, BatchNormalization in NHWC).
CHANNELS_LAST_DOMAINS = ("qonnx.custom_op.channels_last", "finn.custom_op.channels_last")
#: The default ONNX domain.
ONNX_DOMAINS = ("", "ai.onnx")
#: onnxruntime's contrib ops (QOperator exports: QGemm, QLinearAdd, QLinearGlobalAveragePool).
MS_DOMAINS = ("com.microsoft",)

#: Graphs older than this default-domain opset are upgraded with the version converter.
MIN_OPSET = 13
#: The newest default-domain opset the handlers are known to match (tested against onnxruntime up
#: to it); a newer graph may use op versions whose semantics no handler was checked against (26-28
#: change Cast, QuantizeLinear, DequantizeLinear), so it is refused by name.
MAX_OPSET = 25


def domain_kind(domain: str) -> str | None:
    """'onnx', 'qonnx', 'channels_last', 'ms' (com.microsoft) or None (unknown domain)."""
    if domain in ONNX_DOMAINS:
        return "onnx"
    if domain in QONNX_DOMAINS:
        return "qonnx"
    if domain in CHANNELS_LAST_DOMAINS:
        return "channels_last"
    if domain in MS_DOMAINS:
        return "ms"
    return None


@dataclass
class Graph:
    """A prepared ONNX graph."""

    file: Path
    model: onnx.ModelProto
    nodes: list[onnx.NodeProto]
    consts: dict[str, np.ndarray]
    input_name: str
    input_shape: tuple[int, ...]          # per sample (batch dimension dropped)
    input_declared_batch: str            # how the file declared the batch dimension (for messages)
    outputs: list[str]
    opsets: dict[str, int]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per sample, where inferred

    def where(self, node: onnx.NodeProto | None = None) -> str:
        if node is None:
            return str(self.file)
        return f"{self.file}: node '{node.name or node.output[0]}' ({node.op_type})"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__


def load_onnx(path: Path) -> onnx.ModelProto:
    """The model proto with external data loaded; any problem is a QirError naming the file."""
    from google.protobuf.message import DecodeError

    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise QirError("no such file", where=where) from None
    except OSError as e:
        raise QirError(f"cannot read the model file: {_one_line(e)}", where=where) from None
    if not data:
        raise QirError("the file is empty; pass an .onnx model file", where=where)
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise QirError(f"not a valid ONNX model ({_one_line(e)}); the file is truncated or corrupt: "
                       "export it again", where=where) from None
    if not model.HasField("graph") or not model.graph.node:
        raise QirError("not a valid ONNX model (no graph or an empty graph); the file is truncated or "
                       "not an ONNX model: export it again", where=where)
    _load_external(model, path)
    return model


def _load_external(model: onnx.ModelProto, path: Path) -> None:
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    tensors = [t for t in model.graph.initializer if uses_external_data(t)]
    for node in model.graph.node:
        for a in node.attribute:
            if a.HasField("t") and uses_external_data(a.t):
                tensors.append(a.t)
    for t in tensors:
        info = ExternalDataInfo(t)
        target = inside_folder(path, info.location, str(path), f"initializer '{t.name}' external data")
        try:
            with open(target, "rb") as f:
                if info.offset:
                    f.seek(info.offset)
                raw = f.read(info.length) if info.length else f.read()
        except FileNotFoundError:
            raise QirError(f"external data file {info.location!r} of initializer '{t.name}' is missing; "
                           "copy it beside the .onnx", where=str(path)) from None
        except OSError as e:
            raise QirError(f"cannot read external data {info.location!r}: {_one_line(e)}",
                           where=str(path)) from None
        if info.length and len(raw) != info.length:
            raise QirError(f"external data file {info.location!r} is truncated ({len(raw)} of "
                           f"{info.length} bytes for '{t.name}')", where=str(path))
        t.raw_data = raw
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT


def _dims(vi: onnx.ValueInfoProto) -> list[onnx.TensorShapeProto.Dimension] | None:
    tt = vi.type.tensor_type
    return list(tt.shape.dim) if tt.HasField("shape") else None


def prepare(path: Path) -> Graph:
    """Load and prepare ``path`` (see the module docstring)."""
    model = load_onnx(path)
    where = str(path)
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in init_names]
    if len(inputs) != 1:
        raise QirError(f"the graph has {len(inputs)} inputs ({', '.join(vi.name for vi in inputs) or 'none'}); "
                       "only single-input models are supported", where=where)
    inp = inputs[0]
    if inp.type.tensor_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                              onnx.TensorProto.FLOAT16):
        raise QirError(f"input '{inp.name}' has element type "
                       f"{onnx.TensorProto.DataType.Name(inp.type.tensor_type.elem_type)}; "
                       "only float inputs are supported", where=where)
    dims = _dims(inp)
    if dims is None or len(dims) < 2:
        raise QirError(f"input '{inp.name}' has no (N, ...) shape in the graph; export with a fixed "
                       "input shape (batch first)", where=where)
    batch = dims[0]
    declared = batch.dim_param if batch.HasField("dim_param") else str(batch.dim_value)
    shape = []
    for axis, d in enumerate(dims[1:], start=1):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
        else:
            name = d.dim_param if d.HasField("dim_param") else "?"
            raise QirError(f"unresolved dynamic shape: input '{inp.name}' has dimension {name!r} at axis "
                           f"{axis}; only the batch axis may be dynamic: export with a fixed input shape",
                           where=where)
    check_shape(shape, where, f"input '{inp.name}'")
    # batch dimension: 1 for preparation, dropped afterwards
    inp.type.tensor_type.shape.dim[0].Clear()
    inp.type.tensor_type.shape.dim[0].dim_value = 1
    del graph.value_info[:]
    for out in graph.output:  # stale (export batch size): keep the rank, forget the sizes
        if out.type.tensor_type.HasField("shape"):
            for d in out.type.tensor_type.shape.dim:
                d.Clear()
    opsets = {o.domain: o.version for o in model.opset_import}
    _check_opset(opsets, where)
    if opsets.get("", opsets.get("ai.onnx", MIN_OPSET)) < MIN_OPSET:
        model = _upgrade(model, where)
        opsets = {o.domain: o.version for o in model.opset_import}
        graph = model.graph
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as e:
        raise QirError(f"invalid ONNX model: {_one_line(e)}; export it again", where=where) from None
    shapes = _infer_shapes(model)
    consts = {}
    for t in graph.initializer:
        consts[t.name] = _to_array(t, where)
    outputs = [o.name for o in graph.output]
    if not outputs:
        raise QirError("the graph has no outputs", where=where)
    return Graph(path, model, list(graph.node), consts, inp.name, tuple(shape), declared, outputs,
                 opsets, shapes)


def _check_opset(opsets: dict[str, int], where: str) -> None:
    """The default-domain opset must be one qir's handlers are known to match (``MAX_OPSET``) and
    that the installed onnx package defines (its checker and shape inference follow it); a newer
    one is refused by name."""
    known = min(MAX_OPSET, onnx.defs.onnx_opset_version())
    for domain in ("", "ai.onnx"):
        v = opsets.get(domain)
        if v is not None and not 1 <= v <= known:
            raise QirError(f"the graph uses ONNX opset {v}, newer than the newest opset qir's handlers are known "
                           f"to match ({known}); export with opset {known} or older (e.g. "
                           f"torch.onnx.export(..., opset_version={known}), tf2onnx --opset {known})"
                           if v > known else f"the graph declares ONNX opset {v}, which does not exist",
                           where=where)


def _upgrade(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as e:  # the converter raises bare RuntimeErrors/ValueErrors from C++
        old = {o.domain: o.version for o in model.opset_import}
        raise QirError(f"cannot upgrade the graph from opset {old.get('', old.get('ai.onnx'))} to "
                       f"{MIN_OPSET} ({_one_line(e)}); export with opset {MIN_OPSET} or newer",
                       where=where) from None


def _infer_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # inference is advisory: the importer computes its own shapes
        return {}
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = _dims(vi)
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims[1:])
    return shapes


def _to_array(t: onnx.TensorProto, where: str) -> np.ndarray:
    count = 1
    for d in t.dims:
        count *= max(int(d), 0)
    if count > MAX_TENSOR_ELEMENTS:
        raise QirError(f"initializer '{t.name}' declares shape {list(t.dims)} ({count} elements, limit "
                       f"{MAX_TENSOR_ELEMENTS}); the file is broken or the model far too large", where=where)
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # malformed tensors raise ValueError/TypeError from numpy or onnx
        raise QirError(f"cannot read initializer '{t.name}' ({_one_line(e)}); the file is corrupt",
                       where=where) from None


def attr_tensor(a: onnx.AttributeProto, where: str) -> np.ndarray:
    return _to_array(a.t, where)
