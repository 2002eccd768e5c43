"""ONNX frontend: QONNX, QDQ and float ONNX graphs into one ``qir.model``.

``import_onnx(path, input_type=, softmax=, precision=)`` prepares the graph (``onnx_graph``:
load, external data, batch dimension, opset upgrade, checks, shape inference), then walks the
nodes in order.  A node whose inputs are all constants is folded with numpy (``onnx_fold``: a
``Quant`` on an initializer becomes quantized weights); every other node goes to the handler
registered for its op type with ``@onnx_handler("MatMul")``.  Nothing from the file is executed.

What each ONNX tensor becomes while importing:

- ``Const``: a numpy array and whether it is *quantized* (from a quantizer or integer: imported
  exactly) or *float* (typed by the precision configuration).
- ``Act``: a qir SSA value holding the tensor's real value, the ONNX per-sample shape, the axis
  permutation between ONNX and qir (qir is channels last: an NCHW tensor is stored HWC), and for
  integer tensors (QuantizeLinear outputs) the scale/zero point: code = value / scale + zp.
- ``Pending``: a dense or convolution whose constants can still absorb following linear ops
  (MatMul → Add bias → Mul → BatchNormalization all become one ``qir.dense``/``qir.conv``); it is
  emitted when a non-linear consumer needs it, carrying the ONNX name of its last fused output.

Every op carries ``layer = <ONNX output tensor name with '/' replaced by '_'>`` (auxiliary ops such
as a layout transpose carry the name of the node they serve, before its own op, so the trace of a
layer is always its node's result).

Exactness.  Quantizers with power-of-two scales map to ``qir.quantize`` with the op's rounding mode
and saturation: exact.  Zero points shift the code range (a range that is not a fixed-point range
is clipped exactly with relu/scale ops).  Weights and biases produced by quantizers are imported
exactly.  Float parts (weights, biases, float ``Mul``/``Add`` constants, batch normalization, LUT
activations) follow the precision configuration (``qir.precision``): float constants are rounded to
nearest (ties to even) and saturated to their type; a float layer's exact result is then cast to the
configured ``result`` type with an explicit ``qir.quantize`` (``rnd_conv``, ``sat`` by default;
``result: null`` keeps it exact).

Other scales.  A non-power-of-two scale is a ``QirError`` naming the node, unless
``approximate=True`` (or ``approximate=B`` significant bits; True means ``APPROX_BITS`` = 24).
Every real rescale factor f is then replaced by M0·2^-n, the nearest value with B significant bits
(relative error at most 2^-B; per-channel factors share n, chosen so that the smallest keeps B
bits), computed as an exact ``qir.scale`` before the rounding ``qir.quantize``:

- QuantizeLinear keeps integer codes: codes − zp = clip(rne(x·M0·2^-n)), M0·2^-n ≈ 1/s; a
  DequantizeLinear multiplies by S0·2^-m ≈ s; a QONNX Quant does both (its output is real);
- QLinearMatMul/QLinearConv accumulate exactly on the integer codes (zero points and the int32
  bias included) and requantize with one multiplier per output channel, M0·2^-n ≈ sa·sw/sy
  (gemmlowp/TFLite style); MatMulInteger/ConvInteger give the exact int32 accumulator;
- weights quantized with such scales are float weights (precision configuration).

A code differs from the reference by one step only where the scaled value lies within a relative
2^-B of a rounding boundary (onnxruntime itself rounds acc·M in float32, i.e. 24 bits: with B = 24
the test QOperator network matches it code for code).

Integer outputs (a final QuantizeLinear) are output as their real value scale·(q − zp); the
mantissa is the code minus the zero point.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import Operation, SSAValue
from xdsl.utils.exceptions import DiagnosticException, VerifyException

from qir.dialect import (
    LUT_MAX_INPUT_WIDTH,
    AddOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    InputOp,
    LeakyReluOp,
    LutOp,
    OutputOp,
    PadOp,
    PoolOp,
    QuantizeOp,
    ReluOp,
    ReshapeOp,
    ScaleOp,
    TransposeOp,
    elem,
    fixed_type,
    int_elements,
    shape_of,
    tensor_of,
)
from qir.exact import dense_result, op_result
from qir.errors import QirError
from qir.fixed import Fixed
from qir.ir import new_model, set_layer, verify
from qir.precision import LayerPrecision, PrecisionConfig, quantize_float

from . import onnx_quant as oq
from .onnx_fold import can_fold, fold
from .onnx_graph import Graph, domain_kind, prepare

SOFTMAX_MODES = ("keep", "none", "table")
#: significant bits of an approximated rescale multiplier M0 (approximate=True): float32's 24, so
#: results agree with runtimes that rescale in float32 except at rare near-ties
APPROX_BITS = 24


# ------------------------------------------------------------------------------ tensor records
@dataclass(frozen=True)
class Const:
    array: np.ndarray
    quantized: bool


@dataclass(frozen=True)
class Act:
    """A computed tensor: ``value`` holds its real value (``codes``: ONNX holds value/scale + zp)."""

    value: SSAValue
    shape: tuple[int, ...]                 # ONNX per-sample shape
    perm: tuple[int, ...]                  # qir axis i is ONNX axis perm[i]
    codes: tuple[float, int, str] | None = None  # (scale, zero point, element type) of int tensors
    row_order: np.ndarray | None = None    # flat tensors only: qir element k is ONNX element row_order[k]
    unflat: tuple | None = None            # (qir shape, perm) before a permuted flatten
    unit: float = 1.0                      # integer tensors with a non-power-of-two scale
    #                                        (approximate): value = code - zp, real = value * unit

    @property
    def qshape(self) -> tuple[int, ...]:
        return tuple(self.shape[p] for p in self.perm)

    @property
    def type(self) -> Fixed:
        return elem(self.value.type)


@dataclass(frozen=True)
class Pending:
    """y = op(x, w) + b not emitted yet; w in qir layout (dense (in, out), conv (k..., cin/g, cout))."""

    kind: str                              # "dense" | "conv"
    x: Act
    w: np.ndarray                          # float64 real values
    b: np.ndarray | None                   # float64 (C_out,)
    float_w: bool
    float_b: bool
    shape: tuple[int, ...]                 # ONNX per-sample output shape
    perm: tuple[int, ...]                  # output axis map (as Act.perm)
    names: tuple[str, ...]                 # ONNX output names fused in (layer = last)
    nodes: tuple[str, ...]                 # node names (precision lookup)
    conv: dict = field(default_factory=dict)  # strides, dilations, pads, groups

    @property
    def channels(self) -> int:
        return self.w.shape[-1]


Record = Const | Act | Pending


# ------------------------------------------------------------------------------ handler registry
@dataclass
class Node:
    proto: onnx.NodeProto
    kind: str
    where: str
    opset: int

    def __post_init__(self):
        self.attrs = {a.name: helper.get_attribute_value(a) for a in self.proto.attribute}

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def name(self) -> str:
        return self.proto.name or self.proto.output[0]

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def out(self) -> str:
        return self.proto.output[0]

    def attr(self, name: str, default=None):
        v = self.attrs.get(name, default)
        return v.decode() if isinstance(v, bytes) else v


Handler = Callable[["Importer", Node], None]
_HANDLERS: dict[tuple[str, str], Handler] = {}


def onnx_handler(*op_types: str, domain: str = "onnx"):
    """Register a function importing nodes of these op types (domain 'onnx', 'qonnx' for the
    QONNX/FINN/Brevitas general domains, 'channels_last' for qonnx.custom_op.channels_last)."""
    def register(fn: Handler) -> Handler:
        for op in op_types:
            _HANDLERS[(domain, op)] = fn
        return fn
    return register


def supported_ops() -> list[str]:
    return sorted({op for _, op in _HANDLERS})


def layer_name(tensor: str) -> str:
    return tensor.replace("/", "_")


# ------------------------------------------------------------------------------ the importer
class Importer:
    def __init__(self, graph: Graph, input_type: Fixed | None, softmax: str,
                 precision: PrecisionConfig | None, approximate: bool | int):
        self.g = graph
        self.input_type = input_type
        self.softmax = softmax
        self.precision = precision or PrecisionConfig()
        self.approximate = bool(approximate)
        self.approx_bits = APPROX_BITS if approximate is True else int(approximate or 0)
        self.values: dict[str, Record] = {}
        self.module, _, self.block = new_model(_symbol(graph.file.stem))
        self.consumers: dict[str, int] = {}
        for n in graph.nodes:
            for i in n.input:
                if i:
                    self.consumers[i] = self.consumers.get(i, 0) + 1
        for o in graph.outputs:
            self.consumers[o] = self.consumers.get(o, 0) + 1
        # emitted pending ops by id(); the Pending is kept alive with its Act so an id is never reused
        self._emitted: dict[int, tuple[Pending, Act]] = {}
        self.absorbed: int | None = None  # id() of the input quantizer node folded into qir.input

    # -- records ---------------------------------------------------------------------------
    def get(self, name: str, node: Node) -> Record:
        if name not in self.values:
            raise QirError(f"input '{name}' is not produced by any earlier node (the graph is not "
                           "topologically sorted or refers to a missing tensor)", where=node.where)
        return self.values[name]

    def const(self, node: Node, index: int, what: str, default=None) -> np.ndarray:
        names = node.inputs
        if index >= len(names) or not names[index]:
            if default is not None:
                return np.asarray(default)
            raise QirError(f"missing input {index} ({what})", where=node.where)
        r = self.get(names[index], node)
        if not isinstance(r, Const):
            raise QirError(f"input '{names[index]}' ({what}) must be a constant (initializer or folded "
                           "subgraph), but it depends on the model input", where=node.where)
        return r.array

    def act(self, name: str, node: Node) -> Act:
        r = self.get(name, node)
        if isinstance(r, Const):
            raise QirError(f"input '{name}' is a constant where a computed tensor was expected; "
                           "only graphs whose nodes depend on the model input are supported",
                           where=node.where)
        if isinstance(r, Pending):
            return self.emit_pending(r)
        return r

    def float_act(self, name: str, node: Node) -> Act:
        """An activation holding real values (an integer tensor here needs a DequantizeLinear)."""
        a = self.act(name, node)
        if a.codes is not None:
            raise QirError(f"input '{name}' is an integer (quantized) tensor; {node.op} expects real "
                           "values: dequantize it first (DequantizeLinear)", where=node.where)
        return a

    def canonical(self, a: Act, layer: str) -> Act:
        """``a`` with its flat elements in ONNX order (undo a permuted flatten)."""
        if a.row_order is None:
            return a
        qshape, perm = a.unflat
        v = self.emit(ReshapeOp.create(operands=[a.value], result_types=[tensor_of(a.type, qshape)]), layer)
        inv = tuple(int(i) for i in np.argsort(perm))
        onnx_shape = tuple(qshape[i] for i in inv)
        v = self.emit(_transpose_op(v, inv, onnx_shape, a.type), layer)
        v = self.emit(ReshapeOp.create(operands=[v], result_types=[tensor_of(a.type, a.qshape)]), layer)
        return replace(a, value=v, row_order=None, unflat=None)

    def channels_last(self, a: Act, layer: str) -> Act:
        """``a`` (ONNX NC...) stored channels last: qir axes = ONNX spatial axes then the channel."""
        a = self.canonical(a, layer)
        want = tuple(range(1, len(a.shape))) + (0,)
        return self.permute(a, want, layer)

    def onnx_order(self, a: Act, layer: str) -> Act:
        a = self.canonical(a, layer)
        return self.permute(a, tuple(range(len(a.shape))), layer)

    def permute(self, a: Act, want: tuple[int, ...], layer: str) -> Act:
        if a.perm == want:
            return a
        # qir axis i must become ONNX axis want[i], currently at qir position perm.index(want[i])
        p = tuple(a.perm.index(w) for w in want)
        new_qshape = tuple(a.shape[w] for w in want)
        v = self.emit(_transpose_op(a.value, p, new_qshape, a.type), layer)
        return replace(a, value=v, perm=want)

    def set(self, name: str, r: Record) -> None:
        self.values[name] = r

    # -- emitting ops ----------------------------------------------------------------------
    def emit(self, op: Operation, layer: str) -> SSAValue:
        set_layer(op, layer_name(layer))
        self.block.add_op(op)
        return op.results[0]

    def quantize(self, v: SSAValue, t: Fixed, rounding: str, overflow: str, layer: str) -> SSAValue:
        shape = shape_of(v.type)
        return self.emit(QuantizeOp(v, tensor_of(t, shape), rounding, overflow), layer)

    def scale(self, v: SSAValue, s, st: Fixed | None, b, bt: Fixed | None, layer: str) -> SSAValue:
        """qir.scale with exact result type: y = x*s + b per channel (mantissas, None = absent)."""
        props = {}
        if s is not None:
            props |= {"scale": int_elements(np.asarray(s).reshape(-1)), "scale_type": fixed_type(st)}
        if b is not None:
            props |= {"bias": int_elements(np.asarray(b).reshape(-1)), "bias_type": fixed_type(bt)}
        t = op_result(ScaleOp, [v], props)
        return self.emit(ScaleOp.create(operands=[v], result_types=[tensor_of(t, shape_of(v.type))],
                                        properties=props), layer)

    def exact_op(self, cls, v: SSAValue, props: dict, out_shape, layer: str) -> SSAValue:
        t = op_result(cls, [v], props)
        return self.emit(cls.create(operands=[v], result_types=[tensor_of(t, out_shape)],
                                    properties=props), layer)

    # -- precision -------------------------------------------------------------------------
    def layer_precision(self, names, nodes=()) -> LayerPrecision:
        for key in [layer_name(n) for n in reversed(names)] + list(names) + list(nodes):
            if key in self.precision.layers:
                return self.precision.for_layer(key)
        return self.precision.default

    def float_type(self, lp: LayerPrecision, what: str, where: str) -> Fixed:
        t = getattr(lp, what)
        if t is None:
            raise QirError(f"this layer has float {what}s (no quantizer) and no {what} type is configured; "
                           "pass --precision 'fixed<W,I>' (precision=Fixed(W, I)) or set "
                           f"'{what}' in the precision configuration", where=where)
        return t

    def constants(self, values: np.ndarray, is_float: bool, lp: LayerPrecision, what: str,
                  where: str) -> tuple[np.ndarray, Fixed]:
        """Mantissas and type of a layer constant: exact if quantized, else per the precision."""
        if is_float:
            key = "bias" if what == "bias" else "weight"
            t = self.float_type(lp, key, where)
            return quantize_float(values, t), t
        try:
            return oq.exact_fixed(values, f"quantized {what}")
        except QirError as e:
            raise e.located(where) from None

    def cast_result(self, v: SSAValue, lp: LayerPrecision, layer: str) -> SSAValue:
        """A float layer's exact result cast to the configured result type (if any)."""
        if lp.result is None:
            return v
        return self.quantize(v, lp.result, lp.result_rounding, lp.result_overflow, layer)

    # -- pending linear ops ----------------------------------------------------------------
    def fusable(self, name: str) -> bool:
        return self.consumers.get(name, 0) == 1 and name not in self.g.outputs

    def emit_pending(self, p: Pending) -> Act:
        key = id(p)
        if key in self._emitted:
            return self._emitted[key][1]
        layer = p.names[-1]
        where = f"{self.g.file}: layer '{layer_name(layer)}'"
        lp = self.layer_precision(p.names, p.nodes)
        x = p.x
        w, wt = self.constants(p.w, p.float_w, lp, "weights", where)
        b = bt = None
        if p.b is not None:
            b, bt = self.constants(p.b, p.float_b, lp, "bias", where)
        props = {"weights": int_elements(w), "weight_type": fixed_type(wt)}
        if b is not None:
            props |= {"bias": int_elements(b), "bias_type": fixed_type(bt)}
        if p.kind == "dense":
            t, _ = dense_result(x.value, props)
            v = self.emit(DenseOp.create(operands=[x.value], result_types=[tensor_of(t, [w.shape[1]])],
                                         properties=props), layer)
            if p.shape != (w.shape[1],):
                v = self.emit(ReshapeOp.create(operands=[v], result_types=[tensor_of(t, p.shape)]), layer)
        else:
            c = p.conv
            props |= {"strides": _ints(c["strides"]), "dilations": _ints(c["dilations"]),
                      "pads": _ints(c["pads"]), "groups": IntegerAttr(c["groups"], i64)}
            out_shape = tuple(p.shape[i] for i in p.perm)
            v = self.exact_op(ConvOp, x.value, props, out_shape, layer)
        if p.float_w or p.float_b:
            if lp.accum is not None:
                v = self.quantize(v, lp.accum, lp.accum_rounding, lp.accum_overflow, layer)
            v = self.cast_result(v, lp, layer)
        a = Act(v, p.shape, p.perm)
        self._emitted[key] = (p, a)
        return a

    # -- the walk --------------------------------------------------------------------------
    def prefold(self) -> None:
        """Fold every node computed from constants only (weight-only subgraphs), in order."""
        g = self.g
        known = {k: Const(v, oq.is_int_array(v)) for k, v in g.consts.items()}
        self.values.update(known)
        for proto in g.nodes:
            kind = domain_kind(proto.domain)
            if kind is None or not can_fold(kind, proto.op_type):
                continue
            if not all((not i) or isinstance(self.values.get(i), Const) for i in proto.input):
                continue
            opset = g.opsets.get(proto.domain, g.opsets.get("", 13) if kind == "onnx" else 1)
            node = Node(proto, kind, g.where(proto), opset)
            self.import_node(node)
            self.folded.add(id(proto))

    def run(self) -> ModuleOp:
        g = self.g
        self.folded: set[int] = set()
        self.prefold()
        self.start_input()
        for proto in g.nodes:
            if id(proto) in self.folded:
                continue
            kind = domain_kind(proto.domain)
            opset = g.opsets.get(proto.domain, g.opsets.get("", 13) if kind == "onnx" else 1)
            node = Node(proto, kind or "?", g.where(proto), opset)
            if kind is None:
                raise QirError(f"unsupported op '{proto.op_type}' from unknown domain '{proto.domain}'; "
                               f"supported domains: ai.onnx, qonnx.custom_op.general, finn.custom_op.general, "
                               "onnx.brevitas, qonnx.custom_op.channels_last, com.microsoft (QGemm, QLinearAdd, "
                               "QLinearGlobalAveragePool)", where=node.where)
            try:
                self.import_node(node)
            except QirError as e:
                raise e.located(node.where) from None
            except (ValueError, TypeError, IndexError, KeyError, AttributeError, ZeroDivisionError,
                    OverflowError, VerifyException, DiagnosticException) as e:
                raise QirError(f"cannot import this node ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:200]}); check its attributes and inputs",
                               where=node.where) from None
        outs = []
        for name in g.outputs:
            r = self.values.get(name)
            if r is None:
                raise QirError(f"graph output '{name}' is not produced by any node", where=str(g.file))
            if isinstance(r, Const):
                raise QirError(f"graph output '{name}' is a constant (it does not depend on the input)",
                               where=str(g.file))
            a = self.act(name, Node(g.nodes[-1], "onnx", str(g.file), 13))
            a = self.onnx_order(a, name)
            outs.append(a.value)
        self.block.add_op(OutputOp(*outs))
        verify(self.module, str(g.file))
        return self.module

    def import_node(self, node: Node) -> None:
        if id(node.proto) == self.absorbed:
            return
        ins = [self.values.get(n) if n else None for n in node.inputs]
        for n, r in zip(node.inputs, ins):
            if n and r is None:
                self.get(n, node)  # raises the missing-input error
        present = [r for r in ins if r is not None]
        if all(isinstance(r, Const) for r in present) and can_fold(node.kind, node.op):
            exact = self.check_folded_quantizer(node)
            outs = fold(node.kind, node.proto, node.opset, [r.array if r is not None else None for r in ins],
                        [r.quantized if r is not None else False for r in ins], node.where)
            for name, (arr, q) in zip(node.proto.output, outs):
                if name:
                    self.set(name, Const(arr, q and exact))
            return
        handler = _HANDLERS.get((node.kind, node.op))
        if handler is None and node.op in _UNSUPPORTED_HINTS:
            raise QirError(f"unsupported op type '{node.op}': {_UNSUPPORTED_HINTS[node.op]}", where=node.where)
        if handler is None:
            raise QirError(f"unsupported op type '{node.op}'"
                           f"{'' if node.kind == 'onnx' else f' (domain {node.proto.domain})'}; supported: "
                           f"{', '.join(supported_ops())}", where=node.where)
        handler(self, node)

    def check_folded_quantizer(self, node: Node) -> bool:
        """Weights quantized with a non-power-of-two scale are not on a fixed-point grid: an
        error, or with ``approximate`` float weights typed by the precision configuration
        (returns False then)."""
        if node.op not in ("Quant", "IntQuant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear", "Trunc"):
            return True
        scale = self.const(node, 1, "scale")
        if oq.po2_exponents(scale) is None:
            if not self.approximate:
                raise QirError(_po2_message(scale, "weights"), where=node.where)
            return False
        return True

    # -- the input -------------------------------------------------------------------------
    def start_input(self) -> None:
        g = self.g
        name, shape = g.input_name, g.input_shape
        quant = self.input_quantizer()
        if self.input_type is not None:
            t, layer = self.input_type, name
            codes = None
        elif quant is not None:
            node, spec = quant
            t, layer, codes = spec[0], node.out, spec[3]
            if spec[2] is None:
                # a code range that is no fixed-point range (asymmetric zero point): the input
                # type covers it, and the quantizer is imported as ops (rounding + exact clip)
                layer, quant = name, None
            else:
                self.absorbed = id(node.proto)
        else:
            raise QirError(f"the model has no input quantizer (Quant/QuantizeLinear on input '{name}'); "
                           "pass --input-type 'fixed<W,I>' (input_type=Fixed(W, I)) with the fixed-point "
                           "type of the inputs", where=str(g.file))
        inp = InputOp("x", tensor_of(t, shape), layer=layer_name(layer))
        self.block.add_op(inp)
        a = Act(inp.result, shape, tuple(range(len(shape))))
        self.set(name, a)
        if quant is not None and self.input_type is None:
            self.set(quant[0].out, replace(a, codes=codes))

    def input_quantizer(self):
        """(node, (type, rounding, overflow, codes)) of a quantizer reading the input directly."""
        g = self.g
        users = [n for n in g.nodes if g.input_name in n.input]
        if len(users) != 1:
            return None
        proto = users[0]
        kind = domain_kind(proto.domain)
        if not ((kind == "qonnx" and proto.op_type in ("Quant", "IntQuant"))
                or (kind == "onnx" and proto.op_type == "QuantizeLinear")) or proto.input[0] != g.input_name:
            return None
        node = Node(proto, kind, g.where(proto), g.opsets.get(proto.domain, 1))
        for i in proto.input[1:]:
            if i and not isinstance(self.values.get(i), Const):
                return None
        spec = _input_spec(self, node)
        if spec is None or spec[1] is None:
            return None
        return node, spec


#: ops with a known reason and fix
_UNSUPPORTED_HINTS = {
    "DynamicQuantizeLinear": "dynamic quantization computes its scale from each input at run time, "
                             "which fixed-point hardware cannot; quantize statically (QDQ with "
                             "onnxruntime.quantization.quantize_static, power-of-two scales)",
    "Resize": "resizing/upsampling has no qir op yet",
    "Upsample": "resizing/upsampling has no qir op yet",
    "If": "control flow cannot be mapped to a fixed dataflow pipeline",
    "Loop": "control flow cannot be mapped to a fixed dataflow pipeline",
}


def _po2_message(scale, what: str) -> str:
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    return (f"the {what} scale {s[:4].tolist()}{'...' if s.size > 4 else ''} is not a power of two, so "
            "its values are not on a fixed-point grid; re-export with power-of-two scales (Brevitas "
            "*FixedPoint quantizers, ONNX Runtime with power-of-two calibration), or opt into an "
            "approximate rescale (approximate=True: multiplier M0*2^-n)")


# ------------------------------------------------------------------------------ helpers
def _ints(values) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def _transpose_op(v: SSAValue, perm, out_shape, t: Fixed) -> Operation:
    return TransposeOp.create(operands=[v], result_types=[tensor_of(t, out_shape)],
                              properties={"perm": _ints(perm)})


def _symbol(stem: str) -> str:
    name = re.sub(r"\W", "_", stem)
    return name if name and not name[0].isdigit() else f"model_{name}"


def _per_sample(c: np.ndarray, shape: tuple[int, ...], where_what: str) -> np.ndarray:
    """A constant broadcast against a per-sample tensor of ONNX shape ``shape`` (batch axis
    first in ONNX), returned with exactly ``shape``."""
    c = np.asarray(c)
    full = (1,) + tuple(shape)
    try:
        b = np.broadcast_shapes(c.shape, full)
    except ValueError:
        raise QirError(f"{where_what} of shape {c.shape} does not broadcast against {full}") from None
    if b != full:
        raise QirError(f"{where_what} of shape {c.shape} would change the tensor shape {full} to {b}")
    return np.broadcast_to(c, full)[0]


def _channel_vector(c: np.ndarray, shape, perm, what: str) -> np.ndarray | None:
    """The per-channel vector (qir last axis) of a per-sample constant, or None if it varies along
    other axes."""
    full = _per_sample(c, shape, what)
    ch = perm[-1] if perm else 0
    moved = np.moveaxis(full, ch, -1).reshape(-1, shape[ch] if shape else 1)
    if not np.all(moved == moved[:1]):
        return None
    return moved[0].astype(np.float64)


# ------------------------------------------------------------------------------ quantizer specs
def _quantizer_spec(imp: Importer, node: Node):
    """(lo, hi, e, rounding, codes, scale) of an activation quantizer: output mantissas clipped to
    [lo, hi] on the grid 2^e (e None: a non-power-of-two ``scale``, approximate mode), the qir
    rounding mode (None: no ap_fixed mode gives this rounding, e.g. CEIL or an odd zero point;
    the node becomes a table), and for QuantizeLinear the (scale, zero point, type) of its codes.
    None for a 1-bit signed (bipolar) Quant."""
    if node.op in ("Quant", "IntQuant"):
        scale = imp.const(node, 1, "scale")
        zp = imp.const(node, 2, "zero point")
        bits = _scalar_int(imp.const(node, 3, "bitwidth"), "bitwidth", node)
        signed, narrow = bool(node.attr("signed", 1)), bool(node.attr("narrow", 0))
        mode = str(node.attr("rounding_mode", "ROUND")).upper()
        e = _tensor_exponent(scale, node, imp.approximate)
        z = _scalar_int(zp, "zero point", node)
        if bits == 1 and signed:
            return None
        lo, hi = oq.int_range(bits, signed, narrow)
        rnd = oq.QONNX_ROUNDING.get(mode)
        if rnd is not None and z != 0 and not (mode == "FLOOR" or (rnd == "rnd_conv" and z % 2 == 0)):
            rnd = None  # R(u + z) - z != R(u): rounding depends on the zero point
        return (lo - z, hi - z, e, rnd, None, _scalar_scale(scale))
    if node.op == "QuantizeLinear":
        scale = imp.const(node, 1, "scale")
        e = _tensor_exponent(scale, node, imp.approximate)
        lo, hi, dtype, z = _ql_zero_point(imp, node)
        return (lo - z, hi - z, e, "rnd_conv", (_scalar_scale(scale), z, dtype), _scalar_scale(scale))
    raise QirError(f"internal: no quantizer spec for {node.op}")


def _scalar_int(v, what: str, node: Node) -> int:
    a = np.asarray(v).reshape(-1)
    if a.size == 0 or not np.all(a == a[0]) or float(a[0]) != int(a[0]):
        raise QirError(f"{what} must be one integer for the whole tensor, got {a[:4].tolist()}",
                       where=node.where)
    return int(a[0])


def _scalar_scale(scale) -> float:
    return float(np.asarray(scale, dtype=np.float32).reshape(-1)[0])


def _tensor_exponent(scale, node: Node, approximate: bool = False) -> int | None:
    """The exponent of a per-tensor power-of-two scale (None: another scale, with approximate)."""
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.all(s == s[0]) or not s[0] > 0:
        raise QirError(f"per-channel or non-positive activation scales {s[:4].tolist()} are not supported; "
                       "the activation quantizer must use one positive scale per tensor", where=node.where)
    e = oq.po2_exponents(s)
    if e is None:
        if approximate:
            return None
        raise QirError(_po2_message(s, "activation"), where=node.where)
    if not np.all(e == e[0]):
        raise QirError(f"per-channel activation scales {s[:4].tolist()}... are not supported; the "
                       "activation quantizer must use one power-of-two scale per tensor", where=node.where)
    return int(e[0])


def _ql_zero_point(imp: Importer, node: Node):
    names = node.inputs
    if len(names) > 2 and names[2]:
        zp = imp.const(node, 2, "zero point")
        dtype = str(zp.dtype)
        z = _scalar_int(zp.astype(np.int64), "zero point", node)
    else:
        to = node.attr("output_dtype", 0) or onnx.TensorProto.UINT8
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(to)) if to not in (
            onnx.TensorProto.INT4, onnx.TensorProto.UINT4) else ("int4" if to == onnx.TensorProto.INT4 else "uint4")
        z = 0
    lo, hi = oq.ql_range(dtype)
    return lo, hi, dtype, z


def _spec_type(spec) -> tuple:
    """Complete a quantizer spec to (type, rounding, overflow, codes) for input detection."""
    lo, hi, e, rnd, codes, _ = spec
    if rnd is None or e is None:
        return (None, None, None, codes)
    ft = oq.fixed_type_of_codes(lo, hi, e)
    if ft is None:
        return (Fixed.for_range(lo, hi, -e), rnd, None, codes)
    return (ft[0], rnd, ft[1], codes)


def _input_spec(imp: Importer, node: Node):
    spec = _quantizer_spec(imp, node)
    return None if spec is None else _spec_type(spec)


def _approx(value, bits: int) -> tuple[np.ndarray, int]:
    """(M0, n): M0 * 2^-n nearest to ``value`` (a positive scalar or vector), one n for all
    elements, chosen so that the smallest keeps ``bits`` significant bits (relative error at
    most 2^-bits for every element)."""
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    _, ex = np.frexp(v.min())
    n = bits - int(ex)
    return np.rint(np.ldexp(v, n)).astype(np.int64), n


def _multiply(imp: "Importer", v: SSAValue, factor, layer: str) -> SSAValue:
    """v * factor per channel (last axis): exact for dyadic factors, else M0*2^-n (approximate)."""
    f = np.asarray(factor, dtype=np.float64).reshape(-1)
    try:
        mant, t = oq.exact_fixed(f, "rescale factor", max_width=64)
        exact = t.width <= max(imp.approx_bits, 32)
    except QirError:
        exact = False
    if not exact:
        if not imp.approximate:
            raise QirError(_po2_message(f, "rescale"))
        mant, n = _approx(f, imp.approx_bits)
        t = Fixed.for_range(int(mant.min()), int(mant.max()), n)
    return imp.scale(v, mant, t, None, None, layer)


def _approx_codes(imp: "Importer", x: Act, lo: int, hi: int, scale: float, rnd: str, layer: str) -> SSAValue:
    """Integer codes clip(R(x / scale), lo, hi) with 1/scale ≈ M0*2^-n (approximate mode)."""
    v = _multiply(imp, x.value, 1.0 / scale, layer)
    return _apply_quantizer(imp, replace(x, value=v), lo, hi, 0, rnd, layer)


def _apply_quantizer(imp: Importer, x: Act, lo: int, hi: int, e: int | None, rnd: str, layer: str,
                     scale: float | None = None) -> SSAValue:
    """Round ``x`` to the grid 2^e with ``rnd`` and clip the mantissa to [lo, hi] (exact).  With a
    non-power-of-two ``scale`` (e None; approximate=True): codes = clip(R(x * M0*2^-n)) with
    M0*2^-n ≈ 1/scale, then codes * S0*2^-m with S0*2^-m ≈ scale (each to APPROX_BITS bits)."""
    if e is None:
        codes = _approx_codes(imp, x, lo, hi, scale, rnd, layer)
        return _multiply(imp, codes, scale, layer)
    ft = oq.fixed_type_of_codes(lo, hi, e)
    if ft is not None:
        return imp.quantize(x.value, ft[0], rnd, ft[1], layer)
    # round into a type wide enough for every input, then clip exactly with relu/scale ops
    in_t = x.type
    frac = -e
    wide = Fixed.for_range(min(in_t.min_int >> max(in_t.frac - frac, 0) << max(frac - in_t.frac, 0), lo) - 1,
                           max((in_t.max_int >> max(in_t.frac - frac, 0) << max(frac - in_t.frac, 0)) + 1, hi),
                           frac)
    v = imp.quantize(x.value, wide, rnd, "sat", layer)
    v = _clip(imp, v, lo, hi, frac, layer)
    return imp.quantize(v, Fixed.for_range(lo, hi, frac), "trn", "sat", layer)


def _clip(imp: Importer, v: SSAValue, lo: int, hi: int, frac: int, layer: str) -> SSAValue:
    """min(max(v, lo), hi) on mantissas of grid 2^-frac: lo + relu(v - lo), then
    hi - relu(hi - that); scale ops with exact types."""
    ct = Fixed.for_range(min(lo, -hi, 0), max(hi, -lo, 0, hi - lo), frac)
    one = Fixed(2, 2, True)

    def const(c):
        return np.array([c * (1 << (ct.frac - frac))]) if ct.frac >= frac else None

    v = imp.scale(v, None, None, const(-lo), ct, layer)
    v = imp.emit(ReluOp.create(operands=[v], result_types=[v.type]), layer)
    v = imp.scale(v, np.array([-1]), one, const(hi - lo), ct, layer)
    v = imp.emit(ReluOp.create(operands=[v], result_types=[v.type]), layer)
    return imp.scale(v, np.array([-1]), one, const(hi), ct, layer)


def _lut(imp: Importer, x: Act, fn, layer: str, what: str, where: str, out_t: Fixed | None = None) -> SSAValue:
    """An elementwise function of a narrow input as an exact table (qir.lut)."""
    in_t = x.type
    if in_t.width > LUT_MAX_INPUT_WIDTH:
        raise QirError(f"{what} on a {in_t} input needs a table of 2^{in_t.width} entries; quantize its "
                       f"input to at most {LUT_MAX_INPUT_WIDTH} bits first (a Quant/QuantizeLinear before "
                       "it, or a narrower --precision result type)", where=where)
    codes = np.arange(in_t.min_int, in_t.max_int + 1, dtype=np.int64)
    real = in_t.to_real(codes)
    y = np.asarray(fn(real), dtype=np.float64)
    if out_t is None:
        mant, out_t = oq.exact_fixed(y, f"{what} results")
        if out_t.width > 32:
            raise QirError(f"{what} results are not on a narrow fixed-point grid (need {out_t.width} bits)",
                           where=where)
    else:
        mant = quantize_float(y, out_t)
    return imp.emit(LutOp.create(operands=[x.value], result_types=[tensor_of(out_t, shape_of(x.value.type))],
                                 properties={"table": int_elements(mant)}), layer)


# ------------------------------------------------------------------------------ handlers: plumbing
@onnx_handler("Identity", "Dropout")
def _identity(imp: Importer, node: Node) -> None:
    imp.set(node.out, imp.get(node.inputs[0], node))
    if len(node.proto.output) > 1 and node.proto.output[1]:
        raise QirError("Dropout with a mask output is not supported (inference graphs have none)")


@onnx_handler("Cast")
def _cast(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    to = node.attr("to")
    if to in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT32,
              onnx.TensorProto.INT64):
        imp.set(node.out, r)
        return
    raise QirError(f"Cast to {onnx.TensorProto.DataType.Name(to)} of a computed tensor is not supported")


@onnx_handler("Shape")
def _shape(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    shape = np.asarray((1,) + tuple(r.shape), dtype=np.int64)
    imp.set(node.out, Const(shape[node.attr("start", 0):node.attr("end", None)], True))


def _reshape_to(imp: Importer, node: Node, r, target: tuple[int, ...]) -> None:
    """Any reshape of a per-sample tensor to per-sample shape ``target``."""
    if tuple(target) == tuple(r.shape):
        imp.set(node.out, r)
        return
    a = imp.act(node.inputs[0], node) if not isinstance(r, Act) else r
    size = int(np.prod(a.shape))
    nonunit_in = [d for d in a.shape if d != 1]
    nonunit_out = [d for d in target if d != 1]
    if nonunit_in == nonunit_out and a.row_order is None:
        # only unit axes change: the qir value keeps its element order if axes stay in order
        kept = [i for i, d in enumerate(a.shape) if d != 1]
        if [a.perm.index(i) for i in kept] == sorted(a.perm.index(i) for i in kept) or len(kept) <= 1:
            out_perm = tuple(range(len(target)))
            v = a.value
            qtarget = tuple(target)
            if shape_of(v.type) != qtarget:
                v = imp.emit(ReshapeOp.create(operands=[v], result_types=[tensor_of(a.type, qtarget)]), node.out)
            imp.set(node.out, Act(v, tuple(target), out_perm, a.codes, unit=a.unit))
            return
    if len(nonunit_out) <= 1 and len(a.shape) > 1 and a.perm != tuple(range(len(a.shape))):
        # flatten of a permuted (channels-last) tensor: keep the qir order, remember the permutation
        onnx_index = np.arange(size).reshape(a.shape)
        row_order = np.transpose(onnx_index, a.perm).reshape(-1)
        v = imp.emit(ReshapeOp.create(operands=[a.value], result_types=[tensor_of(a.type, (size,))]), node.out)
        if target != (size,):
            v = imp.emit(ReshapeOp.create(operands=[v], result_types=[tensor_of(a.type, tuple(target))]), node.out)
        imp.set(node.out, Act(v, tuple(target), tuple(range(len(target))), a.codes, row_order, (a.qshape, a.perm),
                              a.unit))
        return
    a = imp.onnx_order(a, node.out)
    v = imp.emit(ReshapeOp.create(operands=[a.value], result_types=[tensor_of(a.type, tuple(target))]), node.out)
    imp.set(node.out, Act(v, tuple(target), tuple(range(len(target))), a.codes, unit=a.unit))


def _flat_target(r_shape, axis: int) -> tuple[int, ...]:
    full = (1,) + tuple(r_shape)
    axis = axis % len(full) if axis else 0
    if axis == 0:
        raise QirError("Flatten with axis 0 merges the batch axis into the features; only axis >= 1 is supported")
    left = int(np.prod(full[1:axis]))
    right = int(np.prod(full[axis:]))
    return (left, right) if axis > 1 else (right,)


@onnx_handler("Flatten")
def _flatten(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    _reshape_to(imp, node, r, _flat_target(r.shape, node.attr("axis", 1)))


@onnx_handler("Reshape")
def _reshape(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    shape = [int(v) for v in (imp.const(node, 1, "shape").reshape(-1) if len(node.inputs) > 1
                              else node.attr("shape"))]
    if not shape:
        raise QirError("Reshape to a scalar drops the batch axis; not supported")
    # the first target axis is the batch axis (exports carry 1, -1, 0 or their export batch size)
    size = int(np.prod(r.shape))
    if len(shape) == 1:
        raise QirError(f"Reshape to {shape} merges the batch axis into the features; not supported")
    rest = list(shape[1:])
    if not node.attr("allowzero", 0):
        rest = [r.shape[i] if d == 0 and i < len(r.shape) else d for i, d in enumerate(rest)]
    if rest.count(-1) > 1 or (shape[0] == -1 and -1 in rest):
        raise QirError(f"Reshape target {shape} has more than one unknown (-1) dimension")
    if -1 in rest:
        known = int(np.prod([d for d in rest if d != -1]))
        if known <= 0 or size % known:
            raise QirError(f"cannot reshape per-sample shape {r.shape} to {shape}")
        rest[rest.index(-1)] = size // known
    if int(np.prod(rest)) != size or min(rest, default=1) < 1:
        raise QirError(f"cannot reshape per-sample shape {r.shape} to {shape} (element counts differ)")
    _reshape_to(imp, node, r, tuple(rest))


def _axes(imp: Importer, node: Node, rank: int) -> list[int] | None:
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(v) for v in imp.const(node, 1, "axes").reshape(-1)]
    else:
        axes = node.attr("axes")
        if axes is None:
            return None
    return [a % rank for a in axes]


@onnx_handler("Squeeze")
def _squeeze(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    full = (1,) + tuple(r.shape)
    axes = _axes(imp, node, len(full))
    if axes is None:
        axes = [i for i, d in enumerate(full) if d == 1 and i > 0]
    if 0 in axes:
        raise QirError("Squeeze of the batch axis is not supported")
    if any(full[a] != 1 for a in axes):
        raise QirError(f"Squeeze axes {axes} of shape {full} are not all of size 1")
    _reshape_to(imp, node, r, tuple(d for i, d in enumerate(full) if i not in axes and i > 0))


@onnx_handler("Unsqueeze")
def _unsqueeze(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(v) for v in imp.const(node, 1, "axes").reshape(-1)]
    else:
        axes = list(node.attr("axes") or [])
    full = (1,) + tuple(r.shape)
    out_rank = len(full) + len(axes)
    axes = [a % out_rank for a in axes]
    if 0 in axes:
        raise QirError("Unsqueeze in front of the batch axis is not supported")
    out, it = [], iter(full)
    for i in range(out_rank):
        out.append(1 if i in axes else next(it))
    _reshape_to(imp, node, r, tuple(out[1:]))


@onnx_handler("Transpose")
def _transpose(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    a = imp.act(node.inputs[0], node) if not isinstance(r, Act) else r
    a = imp.canonical(a, node.out)
    rank = len(a.shape) + 1
    perm = node.attr("perm") or list(reversed(range(rank)))
    if perm[0] != 0:
        raise QirError(f"Transpose perm {list(perm)} moves the batch axis; not supported")
    p = [int(v) - 1 for v in perm[1:]]  # new ONNX axis j = old ONNX axis p[j]
    inv = list(np.argsort(p))
    new_perm = tuple(int(inv[q]) for q in a.perm)
    new_shape = tuple(a.shape[q] for q in p)
    imp.set(node.out, Act(a.value, new_shape, new_perm, a.codes, unit=a.unit))


# ------------------------------------------------------------------------------ handlers: linear
def _weights_2d(imp: Importer, node: Node, index: int, what: str) -> Const:
    r = imp.get(node.inputs[index], node)
    if not isinstance(r, Const):
        raise QirError(f"{node.op} of two computed tensors (input '{node.inputs[index]}' is not a "
                       "constant) is not supported; only constant weights are")
    return r


def _dense_input(imp: Importer, node: Node, name: str) -> Act:
    a = imp.float_act(name, node)
    nonunit = [d for d in a.shape if d != 1]
    if len(nonunit) > 1:
        raise QirError(f"{node.op} on a per-sample shape {a.shape} (more than one non-unit axis) is not "
                       "supported; flatten the features first")
    if len(a.shape) != 1:
        size = int(np.prod(a.shape))
        if a.row_order is None and shape_of(a.value.type) != (size,):
            v = imp.emit(ReshapeOp.create(operands=[a.value], result_types=[tensor_of(a.type, (size,))]), node.out)
            a = Act(v, (size,), (0,), a.codes, unit=a.unit)
        else:
            a = replace(a, shape=(size,), perm=(0,))
    return a


def _new_dense(imp: Importer, node: Node, x: Act, w: np.ndarray, float_w: bool, b, float_b: bool,
               out_shape=None) -> Pending:
    if x.row_order is not None:
        w = w[x.row_order]
        x = replace(x, row_order=None, unflat=None)
    n_out = w.shape[1]
    shape = out_shape or (n_out,)
    return Pending("dense", x, w.astype(np.float64), None if b is None else b.astype(np.float64),
                   float_w, float_b, shape, tuple(range(len(shape))), (node.out,), (node.name,))


@onnx_handler("MatMul")
def _matmul(imp: Importer, node: Node) -> None:
    w = _weights_2d(imp, node, 1, "weights")
    if w.array.ndim != 2:
        raise QirError(f"MatMul weights of shape {w.array.shape} are not supported (need (K, N))")
    x = _dense_input(imp, node, node.inputs[0])
    if x.shape[0] != w.array.shape[0]:
        raise QirError(f"MatMul of {x.shape[0]} features with weights {w.array.shape}")
    r = imp.get(node.inputs[0], node)
    out_shape = tuple(r.shape[:-1]) + (w.array.shape[1],)
    imp.set(node.out, _new_dense(imp, node, x, w.array, not w.quantized, None, False, out_shape))


@onnx_handler("Gemm")
def _gemm(imp: Importer, node: Node) -> None:
    if node.attr("transA", 0):
        raise QirError("Gemm with transA=1 (transposed activations) is not supported")
    w = _weights_2d(imp, node, 1, "weights")
    arr = w.array.T if node.attr("transB", 0) else w.array
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    wq = w.quantized and (alpha == 1.0 or oq.is_po2(alpha))
    warr = arr.astype(np.float64) * np.float64(np.float32(alpha))
    x = _dense_input(imp, node, node.inputs[0])
    if x.shape[0] != warr.shape[0]:
        raise QirError(f"Gemm of {x.shape[0]} features with weights {warr.shape}")
    b, bq = None, True
    if len(node.inputs) > 2 and node.inputs[2]:
        c = imp.get(node.inputs[2], node)
        if not isinstance(c, Const):
            raise QirError("Gemm with a computed C input is not supported")
        b = _per_sample(c.array, (warr.shape[1],), "Gemm bias C").astype(np.float64) * np.float64(np.float32(beta))
        bq = c.quantized and (beta == 1.0 or oq.is_po2(beta))
    imp.set(node.out, _new_dense(imp, node, x, warr, not wq, b, not bq))


def _extend(imp: Importer, node: Node, p: Pending, scale=None, bias=None, float_s=False, float_b=False) -> Pending:
    """p followed by y*scale + bias (per output channel), as one pending op."""
    w, b = p.w, p.b
    fw, fb = p.float_w, p.float_b
    if scale is not None:
        w = w * scale
        b = None if b is None else b * scale
        fw, fb = fw or float_s, fb or float_s
    if bias is not None:
        b = bias if b is None else b + bias
        fb = fb or float_b
    return replace(p, w=w, b=b, float_w=fw, float_b=fb, names=p.names + (node.out,),
                   nodes=p.nodes + (node.name,))


def _affine_on_act(imp: Importer, node: Node, a: Act, scale, bias, float_s: bool, float_b: bool) -> None:
    """y = a*scale + bias per channel on an emitted tensor: one exact qir.scale (float
    constants typed by the precision configuration; a float one makes the result cast)."""
    a = imp.canonical(a, node.out)
    where = node.where
    lp = imp.layer_precision((node.out,), (node.name,))
    s = st = b = bt = None
    if scale is not None:
        s, st = imp.constants(scale, float_s, lp, "weights", where)
    if bias is not None:
        b, bt = imp.constants(bias, float_b, lp, "bias", where)
    v = imp.scale(a.value, s, st, b, bt, node.out)
    if float_s or float_b:
        v = imp.cast_result(v, lp, node.out)
    imp.set(node.out, Act(v, a.shape, a.perm))


def _binary_const(imp: Importer, node: Node):
    """(activation record, constant, constant-first) of a binary op with one constant input."""
    r0, r1 = imp.get(node.inputs[0], node), imp.get(node.inputs[1], node)
    if isinstance(r1, Const) and not isinstance(r0, Const):
        return r0, r1, False
    if isinstance(r0, Const) and not isinstance(r1, Const):
        return r1, r0, True
    return None


def _linear_const(imp: Importer, node: Node, scale_of, bias_of) -> None:
    """Mul/Div/Add/Sub by a per-channel constant on a pending op (fused) or an emitted tensor."""
    r, c, const_first = _binary_const(imp, node)
    name = node.inputs[1] if const_first else node.inputs[0]
    if isinstance(r, Act) and r.codes is not None:
        raise QirError(f"{node.op} on an integer (quantized) tensor is not supported; dequantize it first")
    vec = _channel_vector(c.array, r.shape, r.perm, f"{node.op} constant")
    if isinstance(r, Pending) and vec is not None and imp.fusable(name):
        scale, bias = scale_of(vec), bias_of(vec)
        float_c = not c.quantized and not (scale is not None and bias is None and oq.is_po2(scale))
        imp.set(node.out, _extend(imp, node, r, scale, bias, float_c, float_c))
        return
    a = imp.canonical(imp.act(name, node), node.out)
    if vec is None and len(a.shape) > 1:  # an ONNX (C, ...) tensor: per channel once channels last
        cl = tuple(range(1, len(a.shape))) + (0,)
        vec = _channel_vector(c.array, a.shape, cl, f"{node.op} constant")
        if vec is not None:
            a = imp.permute(a, cl, node.out)
    if vec is None:
        raise QirError(f"{node.op} by a constant that varies within a channel (shape {c.array.shape}) is "
                       "not supported; only per-tensor or per-channel constants are")
    scale, bias = scale_of(vec), bias_of(vec)
    float_c = not c.quantized and not (scale is not None and bias is None and oq.is_po2(scale))
    _affine_on_act(imp, node, a, scale, bias, float_c, float_c)


def _two_acts(imp: Importer, node: Node) -> list[Act]:
    acts = [imp.float_act(n, node) for n in node.inputs]
    shape = acts[0].shape
    for a in acts[1:]:
        if a.shape != shape:
            raise QirError(f"{node.op} of tensors with shapes {[x.shape for x in acts]} (broadcasting "
                           "between computed tensors) is not supported")
    base = acts[0]
    out = []
    for a in acts:
        if a.row_order is not None and (base.row_order is None or not np.array_equal(a.row_order, base.row_order)):
            a = imp.canonical(a, node.out)
        out.append(imp.permute(a, base.perm, node.out) if a.row_order is None and base.row_order is None else a)
    return out


@onnx_handler("Add")
def _add(imp: Importer, node: Node) -> None:
    if _binary_const(imp, node) is not None:
        _linear_const(imp, node, lambda v: None, lambda v: v)
        return
    acts = _two_acts(imp, node)
    _sum(imp, node, [a.value for a in acts], acts[0])


def _sum(imp: Importer, node: Node, values: list[SSAValue], like: Act) -> None:
    probe = AddOp.create(operands=values, result_types=[values[0].type])
    lo, hi, frac = probe.exact_bounds()
    probe.erase()
    t = Fixed.for_range(lo, hi, frac)
    v = imp.emit(AddOp.create(operands=values, result_types=[tensor_of(t, like.qshape)]), node.out)
    imp.set(node.out, replace(like, value=v, codes=None))


@onnx_handler("Sub")
def _sub(imp: Importer, node: Node) -> None:
    bc = _binary_const(imp, node)
    if bc is not None:
        _, _, const_first = bc
        if const_first:  # c - x = x * -1 + c
            _linear_const(imp, node, lambda v: -np.ones_like(v), lambda v: v)
        else:
            _linear_const(imp, node, lambda v: None, lambda v: -v)
        return
    a, b = _two_acts(imp, node)
    neg = imp.scale(b.value, np.array([-1]), Fixed(2, 2, True), None, None, node.out)
    _sum(imp, node, [a.value, neg], a)


@onnx_handler("Mul")
def _mul(imp: Importer, node: Node) -> None:
    if _binary_const(imp, node) is None:
        raise QirError("Mul of two computed tensors is not supported; only multiplication by constants is")
    _linear_const(imp, node, lambda v: v, lambda v: None)


@onnx_handler("Div")
def _div(imp: Importer, node: Node) -> None:
    bc = _binary_const(imp, node)
    if bc is None or bc[2]:
        raise QirError("Div is only supported as division of a computed tensor by a constant")
    _linear_const(imp, node, lambda v: 1.0 / v, lambda v: None)


@onnx_handler("Neg")
def _neg(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    if isinstance(r, Pending) and imp.fusable(node.inputs[0]):
        imp.set(node.out, _extend(imp, node, r, -np.ones(r.channels), None))
        return
    a = imp.float_act(node.inputs[0], node)
    _affine_on_act(imp, node, a, np.array([-1.0]), None, False, False)


@onnx_handler("BatchNormalization")
def _batchnorm(imp: Importer, node: Node, channels_last: bool = False) -> None:
    """y = (x - mean) / sqrt(var + eps) * scale + bias per channel: folded into a preceding
    dense/conv, else one qir.scale; float (precision configuration) either way."""
    r = imp.get(node.inputs[0], node)
    gamma, beta, mean, var = (imp.const(node, i, w).astype(np.float64) for i, w in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    eps = float(np.float32(node.attr("epsilon", 1e-5)))
    a = (gamma / np.sqrt(var + eps))
    c = beta - mean * a
    ch = len(r.shape) - 1 if channels_last else 0
    if not r.shape or r.shape[ch] != a.shape[0]:
        raise QirError(f"BatchNormalization with {a.shape[0]} channels on a tensor of shape {r.shape}")
    if isinstance(r, Pending) and imp.fusable(node.inputs[0]) and r.perm[-1] == ch:
        imp.set(node.out, _extend(imp, node, r, a, c, True, True))
        return
    x = imp.canonical(imp.float_act(node.inputs[0], node), node.out)
    if len(x.shape) > 1:
        want = tuple(i for i in range(len(x.shape)) if i != ch) + (ch,)
        x = imp.permute(x, want, node.out)
    _affine_on_act(imp, node, x, a, c, True, True)


# ------------------------------------------------------------------------------ handlers: activations
@onnx_handler("Relu")
def _relu(imp: Importer, node: Node) -> None:
    a = imp.float_act(node.inputs[0], node)
    v = imp.emit(ReluOp.create(operands=[a.value], result_types=[a.value.type]), node.out)
    imp.set(node.out, replace(a, value=v))


@onnx_handler("LeakyRelu")
def _leaky_relu(imp: Importer, node: Node) -> None:
    a = imp.float_act(node.inputs[0], node)
    alpha = np.float32(node.attr("alpha", 0.01))
    lp = imp.layer_precision((node.out,), (node.name,))
    if oq.is_po2(alpha) or alpha == 0:
        am, at = oq.exact_fixed(np.array([alpha], dtype=np.float64), "alpha")
        is_float = False
    else:
        at = imp.float_type(lp, "weight", node.where)
        am, is_float = quantize_float(np.array([alpha], dtype=np.float64), at), True
    props = {"alpha": int_elements(am), "alpha_type": fixed_type(at)}
    v = imp.exact_op(LeakyReluOp, a.value, props, shape_of(a.value.type), node.out)
    if is_float:
        v = imp.cast_result(v, lp, node.out)
    imp.set(node.out, replace(a, value=v))


def _float_fn(fn):
    def run(x):
        return fn(x.astype(np.float32)).astype(np.float64)
    return run


def _selu(n: Node):
    a = np.float32(n.attr("alpha", 1.67326319217681884765625))
    g = np.float32(n.attr("gamma", 1.05070102214813232421875))
    return _float_fn(lambda x: np.where(x > 0, g * x, g * (a * np.exp(x) - a)))


def _elu(n: Node):
    a = np.float32(n.attr("alpha", 1.0))
    return _float_fn(lambda x: np.where(x > 0, x, a * (np.exp(x) - 1)))


def _hard_sigmoid(n: Node):
    a, b = np.float32(n.attr("alpha", 0.2)), np.float32(n.attr("beta", 0.5))
    return _float_fn(lambda x: np.clip(a * x + b, 0, 1))


#: elementwise float functions imported as tables (float32, as onnxruntime computes them)
_LUT_FUNCTIONS = {
    "Sigmoid": lambda n: _float_fn(lambda x: 1 / (1 + np.exp(-x))),
    "Tanh": lambda n: _float_fn(np.tanh),
    "Selu": _selu,
    "Elu": _elu,
    "HardSigmoid": _hard_sigmoid,
    "Softsign": lambda n: _float_fn(lambda x: x / (1 + np.abs(x))),
    "Softplus": lambda n: _float_fn(lambda x: np.log1p(np.exp(x))),
}


@onnx_handler(*_LUT_FUNCTIONS)
def _lut_activation(imp: Importer, node: Node) -> None:
    a = imp.float_act(node.inputs[0], node)
    lp = imp.layer_precision((node.out,), (node.name,))
    out_t = imp.float_type(lp, "result", node.where)
    v = _lut(imp, a, _LUT_FUNCTIONS[node.op](node), node.out, node.op, node.where, out_t)
    imp.set(node.out, replace(a, value=v))


@onnx_handler("Softmax", "LogSoftmax")
def _softmax(imp: Importer, node: Node) -> None:
    final = node.out in imp.g.outputs
    if final and node.op == "Softmax" and imp.softmax == "none":
        imp.set(node.out, imp.get(node.inputs[0], node))
        return
    if final and node.op == "Softmax" and imp.softmax == "table":
        from .softmax import build_softmax_table

        a = imp.float_act(node.inputs[0], node)
        axis = int(node.attr("axis", -1 if node.opset >= 13 else 1))
        if len(a.shape) != 1 or axis not in (-1, 1):
            raise QirError(f"softmax='table' supports a softmax over the features of a 1-D (per-sample) "
                           f"tensor, got shape {a.shape} and axis {axis}", where=node.where)
        lp = imp.layer_precision((node.out,), (node.name,))
        try:
            v = build_softmax_table(a.value, lambda op: imp.emit(op, node.out), lp.table, lp.result)
        except QirError as e:
            raise e.located(node.where) from None
        imp.set(node.out, replace(a, value=v))
        return
    if final and node.op == "Softmax":
        raise QirError("exact hardware softmax is not supported; pass --softmax table (softmax='table') for the "
                       "documented table approximation, or --softmax none (softmax='none') to strip the final "
                       "softmax and output the logits")
    raise QirError(f"{node.op} is only supported as the final node, where --softmax table approximates a "
                   "Softmax and --softmax none strips it")


@onnx_handler("Clip")
def _clip_node(imp: Importer, node: Node) -> None:
    a = imp.float_act(node.inputs[0], node)
    lo = imp.const(node, 1, "min") if len(node.inputs) > 1 and node.inputs[1] else node.attr("min")
    hi = imp.const(node, 2, "max") if len(node.inputs) > 2 and node.inputs[2] else node.attr("max")
    t = a.type
    lo_m = None if lo is None else float(np.asarray(lo).reshape(-1)[0]) * 2.0 ** t.frac
    hi_m = None if hi is None else float(np.asarray(hi).reshape(-1)[0]) * 2.0 ** t.frac
    for m, what in ((lo_m, "min"), (hi_m, "max")):
        if m is not None and m != int(m):
            raise QirError(f"Clip {what} is not on the input's grid ({t}); not supported")
    lo_i = t.min_int if lo_m is None else max(int(lo_m), t.min_int)
    hi_i = t.max_int if hi_m is None else min(int(hi_m), t.max_int)
    if lo_i == 0 and hi_i == t.max_int:
        v = imp.emit(ReluOp.create(operands=[a.value], result_types=[a.value.type]), node.out)
    else:
        v = _clip(imp, a.value, lo_i, hi_i, t.frac, node.out)
        v = imp.quantize(v, Fixed.for_range(lo_i, hi_i, t.frac), "trn", "sat", node.out)
    imp.set(node.out, replace(a, value=v))


# ------------------------------------------------------------------------------ handlers: quantizers
@onnx_handler("Quant", "IntQuant", domain="qonnx")
def _quant(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    spec = _quantizer_spec(imp, node)
    if spec is None or spec[3] is None:
        _quant_lut(imp, node, x)
        return
    lo, hi, e, rnd, _, s = spec
    v = _apply_quantizer(imp, x, lo, hi, e, rnd, node.out, s)
    imp.set(node.out, replace(x, value=v, codes=None))


def _quant_lut(imp: Importer, node: Node, x: Act) -> None:
    """Bipolar (1-bit signed), CEIL/UP rounding, or an odd zero point: the exact reference
    function of the (narrow) input as a table."""
    scale, zp = imp.const(node, 1, "scale"), imp.const(node, 2, "zero point")
    bits = _scalar_int(imp.const(node, 3, "bitwidth"), "bitwidth", node)
    signed, narrow = bool(node.attr("signed", 1)), bool(node.attr("narrow", 0))
    mode = str(node.attr("rounding_mode", "ROUND"))
    oq.np_round(np.zeros(1), mode)  # validates the mode name
    v = _lut(imp, x, lambda r: oq.int_quant(r, scale.reshape(-1)[0], zp.reshape(-1)[0], bits, signed, narrow, mode),
             node.out, f"Quant ({mode}, zero point {zp.reshape(-1)[0]}, {bits} bits)", node.where)
    imp.set(node.out, replace(x, value=v, codes=None))


@onnx_handler("BipolarQuant", domain="qonnx")
def _bipolar(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    scale = imp.const(node, 1, "scale")
    _tensor_exponent(scale, node)
    v = _lut(imp, x, lambda r: oq.bipolar_quant(r, scale.reshape(-1)[0]), node.out, "BipolarQuant", node.where)
    imp.set(node.out, replace(x, value=v))


@onnx_handler("Trunc", domain="qonnx")
def _trunc(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    scale, zp = imp.const(node, 1, "scale"), imp.const(node, 2, "zero point")
    e = _tensor_exponent(scale, node)
    z = _scalar_int(zp, "zero point", node)
    mode = str(node.attr("rounding_mode", "FLOOR")).upper()
    rnd = oq.qonnx_rounding(mode)
    if z != 0:
        raise QirError("Trunc with a nonzero zero point is not supported")
    in_bits = _scalar_int(imp.const(node, 3, "input bit width"), "input bit width", node)
    # y = rne(x/s): onto the input grid (exact when x is already on it)
    in_t = x.type
    grid = Fixed.for_range(min(in_t.min_int >> max(in_t.frac + e, 0), -1) - 1,
                           (in_t.max_int >> max(in_t.frac + e, 0)) + 1, -e) if in_t.frac + e > 0 else None
    v = x.value if grid is None else imp.quantize(x.value, grid, "rnd_conv", "sat", node.out)
    xv = replace(x, value=v)
    n_in = 6 if node.opset >= 2 else 5
    if len(node.inputs) != n_in:
        raise QirError(f"Trunc v{1 if n_in == 5 else 2} (domain opset {node.opset}) takes {n_in} inputs, this node "
                       f"has {len(node.inputs)}; set the domain's opset_import version to match")
    if n_in == 6:  # v2: out_scale, out_bw; keeps the magnitude
        out_scale = imp.const(node, 4, "output scale")
        out_bits = _scalar_int(imp.const(node, 5, "output bit width"), "output bit width", node)
        oe = _tensor_exponent(out_scale, node)
        signed, narrow = bool(node.attr("signed", 1)), bool(node.attr("narrow", 0))
        lo, hi = oq.int_range(out_bits, signed, narrow)
        v = _apply_quantizer(imp, xv, lo, hi, oe, rnd, node.out)
        imp.set(node.out, replace(x, value=v))
        return
    out_bits = _scalar_int(imp.const(node, 4, "output bit width"), "output bit width", node)
    k = in_bits - out_bits
    if k < 0:
        raise QirError(f"Trunc from {in_bits} to {out_bits} bits widens; not supported")
    # v1: R(y / 2^k) on the input scale: quantize to grid 2^(e+k), then scale by 2^-k
    t = xv.type
    lo = -((-t.min_int) >> max(k + e + t.frac, 0)) - 1
    hi = (t.max_int >> max(k + e + t.frac, 0)) + 1
    coarse = imp.quantize(xv.value, Fixed.for_range(lo, hi, -(e + k)), rnd, "sat", node.out)
    v = imp.scale(coarse, np.array([1]), Fixed(2, 2 - k, False) if k else Fixed(2, 2, False), None, None, node.out)
    imp.set(node.out, replace(x, value=v))


@onnx_handler("MultiThreshold", domain="qonnx")
def _multithreshold(imp: Importer, node: Node) -> None:
    """y = out_scale * #{j : x >= T[c, j]} + out_bias.  One threshold set and a narrow input: a
    table.  Otherwise, exactly, per threshold j: step_j = clip(x - T'[c, j] + lsb, 0, lsb) with T'
    the threshold rounded up to the input grid (qir.scale + saturating qir.quantize), then the
    sum of the steps (qir.add) and the output scale and bias (qir.scale)."""
    x = imp.float_act(node.inputs[0], node)
    t = imp.const(node, 1, "thresholds").astype(np.float32)
    if t.ndim != 2:
        raise QirError(f"MultiThreshold thresholds must have shape (C, B) or (1, B), got {t.shape}")
    out_scale = np.float32(node.attr("out_scale", 1.0))
    out_bias = np.float32(node.attr("out_bias", 0.0))
    if np.all(t == t[:1]) and x.type.width <= LUT_MAX_INPUT_WIDTH:
        row = t[0]

        def fn(r):
            cnt = np.count_nonzero(r.astype(np.float32)[:, None] >= row[None, :], axis=1).astype(np.float32)
            return (out_scale * cnt + out_bias).astype(np.float32)

        v = _lut(imp, x, fn, node.out, "MultiThreshold", node.where)
        imp.set(node.out, replace(x, value=v))
        return
    x = imp.canonical(x, node.out)
    if len(x.shape) > 1:
        ch = len(x.shape) - 1 if str(node.attr("data_layout", "NCHW")).endswith("C") else 0
        x = imp.permute(x, tuple(i for i in range(len(x.shape)) if i != ch) + (ch,), node.out)
    channels, in_t = x.qshape[-1], x.type
    if t.shape[0] not in (1, channels):
        raise QirError(f"MultiThreshold thresholds {t.shape} do not match {channels} channels")
    tm = np.ceil(np.ldexp(np.broadcast_to(t.astype(np.float64), (channels, t.shape[1])), in_t.frac))
    tm = np.clip(tm, in_t.min_int - 1, in_t.max_int + 1).astype(np.int64)
    step_t = Fixed(1, 1 - in_t.frac, False)  # {0, lsb}
    steps = []
    for j in range(t.shape[1]):
        bias = 1 - tm[:, j]
        v = imp.scale(x.value, None, None, bias, Fixed.for_range(int(bias.min()), int(bias.max()), in_t.frac),
                      node.out)
        steps.append(imp.quantize(v, step_t, "trn", "sat", node.out))
    if len(steps) > 1:
        probe = AddOp.create(operands=steps, result_types=[steps[0].type])
        lo, hi, frac = probe.exact_bounds()
        probe.erase()
        total = imp.emit(AddOp.create(operands=steps, result_types=[tensor_of(Fixed.for_range(lo, hi, frac), x.qshape)]),
                         node.out)
    else:
        total = steps[0]
    sm, st = oq.exact_fixed(np.array([np.ldexp(np.float64(out_scale), in_t.frac)]), "MultiThreshold out_scale")
    bm, bt = (None, None) if out_bias == 0 else oq.exact_fixed(np.array([np.float64(out_bias)]), "out_bias")
    v = imp.scale(total, sm, st, bm, bt, node.out)
    imp.set(node.out, replace(x, value=v))


@onnx_handler("QuantizeLinear")
def _quantize_linear(imp: Importer, node: Node) -> None:
    x = imp.float_act(node.inputs[0], node)
    spec = _quantizer_spec(imp, node)
    lo, hi, e, rnd, codes, s = spec
    if e is None:  # approximate: keep the integer codes (minus zero point), real = value * s
        v = _approx_codes(imp, x, lo, hi, s, rnd, node.out)
        imp.set(node.out, replace(x, value=v, codes=codes, unit=s))
        return
    v = _apply_quantizer(imp, x, lo, hi, e, rnd, node.out)
    imp.set(node.out, replace(x, value=v, codes=codes))


def _check_codes(imp: Importer, node: Node, a: Act, scale_idx: int, zp_idx: int, what: str):
    scale = imp.const(node, scale_idx, f"{what} scale")
    zp = imp.const(node, zp_idx, f"{what} zero point", default=np.int64(0))
    _tensor_exponent(scale, node, imp.approximate)
    sc = _scalar_scale(scale)
    z = _scalar_int(np.asarray(zp).astype(np.int64), f"{what} zero point", node)
    if a.codes is None:
        raise QirError(f"{what} '{node.inputs[0]}' is not an integer tensor from a QuantizeLinear")
    if a.codes[0] != sc or a.codes[1] != z:
        raise QirError(f"{what} scale/zero point ({sc}, {z}) differ from the ones it was quantized "
                       f"with {a.codes[:2]}; not supported")


@onnx_handler("DequantizeLinear")
def _dequantize_linear(imp: Importer, node: Node) -> None:
    r = imp.get(node.inputs[0], node)
    if isinstance(r, Pending):  # int32 accumulator (MatMulInteger/ConvInteger) times its scale
        scale = imp.const(node, 1, "scale").astype(np.float64)
        zp = imp.const(node, 2, "zero point", default=np.int64(0))
        if np.any(np.asarray(zp) != 0):
            raise QirError("DequantizeLinear of an accumulator with a nonzero zero point is not supported")
        vec = _channel_vector(scale, r.shape, r.perm, "scale")
        if oq.po2_exponents(vec) is None:
            raise QirError(_po2_message(vec, "accumulator"))
        imp.set(node.out, _extend(imp, node, r, vec, None))
        return
    a = imp.act(node.inputs[0], node)
    _check_codes(imp, node, a, 1, 2, "input")
    if a.unit != 1.0:  # integer codes with a non-power-of-two scale: times S0*2^-m ≈ scale
        a = imp.canonical(a, node.out)
        v = _multiply(imp, a.value, a.unit, node.out)
        imp.set(node.out, replace(a, value=v, codes=None, unit=1.0))
        return
    imp.set(node.out, replace(a, codes=None))


def _int_weights(imp: Importer, node: Node, w_idx: int, s_idx: int | None, zp_idx: int | None,
                 cout_axis: int) -> np.ndarray:
    """Real weights (w − zp)·s of an integer weight tensor (per output channel scales allowed)."""
    w = imp.const(node, w_idx, "weights").astype(np.int64)
    zp = imp.const(node, zp_idx, "weight zero point", default=np.int64(0)).astype(np.int64) if zp_idx is not None else 0
    shape = [1] * w.ndim
    if np.ndim(zp) == 1 and np.size(zp) > 1:
        shape[cout_axis] = np.size(zp)
        zp = np.reshape(zp, shape)
    real = (w - zp).astype(np.float64)
    if s_idx is not None:
        s = imp.const(node, s_idx, "weight scale").astype(np.float64)
        if oq.po2_exponents(s) is None:
            raise QirError(_po2_message(s, "weight"))
        if s.size > 1:
            shape = [1] * w.ndim
            shape[cout_axis] = s.size
            s = s.reshape(shape)
        real = real * s
    return real


@onnx_handler("QLinearMatMul")
def _qlinear_matmul(imp: Importer, node: Node) -> None:
    x = imp.act(node.inputs[0], node)
    _check_codes(imp, node, x, 1, 2, "input")
    xf = _dense_input_from(imp, node, replace(x, codes=None, unit=1.0))
    if _integer_requant(imp, node, x):
        w, k, _ = _int_weights_scaled(imp, node, x, 1)
        a = imp.emit_pending(_new_dense(imp, node, xf, w, False, None, False))
        _requantize_codes(imp, node, a, k, 6, 7)
        return
    w = _int_weights(imp, node, 3, 4, 5, 1)
    p = _new_dense(imp, node, xf, w, False, None, False)
    a = imp.emit_pending(p)
    _requantize_out(imp, node, a, 6, 7)


def _integer_requant(imp: Importer, node: Node, x: Act) -> bool:
    """QLinear* with a non-power-of-two scale somewhere (approximate mode): integer accumulator
    and one M0*2^-n requantization multiplier per output channel."""
    scales = [imp.const(node, i, "scale") for i in (1, 4, 6)]
    po2 = all(oq.po2_exponents(s) is not None for s in scales)
    if x.unit == 1.0 and po2:
        return False
    if not po2 and not imp.approximate:
        bad = next(s for s in scales if oq.po2_exponents(s) is None)
        raise QirError(_po2_message(bad, "requantization"))
    return True


def _int_weights_scaled(imp: Importer, node: Node, x: Act, cout_axis: int):
    """(integer weights w - zp, K, xs) for the integer path: x.value is the input code (minus zero
    point) times xs (sa when it holds real values, 1 when it holds codes), so value @ w is the
    integer accumulator times xs, and y = rne(acc * sa*sw/sy) = rne((value @ w) * K) with
    K = sa*sw / (sy*xs) per output channel."""
    w = _int_weights(imp, node, 3, None, 5, cout_axis)
    sa = float(np.asarray(imp.const(node, 1, "x scale"), dtype=np.float32).reshape(-1)[0])
    xs = sa if x.unit == 1.0 else 1.0
    sw = imp.const(node, 4, "weight scale").astype(np.float32).astype(np.float64).reshape(-1)
    sy = float(np.asarray(imp.const(node, 6, "output scale"), dtype=np.float32).reshape(-1)[0])
    return w, sa * sw / (sy * xs), xs


def _requantize_codes(imp: Importer, node: Node, a: Act, k, s_idx: int, zp_idx: int) -> None:
    """Output codes clip(rne(value * K) + zy) - zy with K ≈ M0*2^-n per channel; real = codes * sy."""
    sy = float(np.asarray(imp.const(node, s_idx, "output scale"), dtype=np.float32).reshape(-1)[0])
    names = node.inputs
    if len(names) > zp_idx and names[zp_idx]:
        zp = imp.const(node, zp_idx, "output zero point")
        dtype, z = str(zp.dtype), _scalar_int(zp.astype(np.int64), "output zero point", node)
    else:
        dtype, z = "uint8", 0
    lo, hi = oq.ql_range(dtype)
    v = _multiply(imp, a.value, np.broadcast_to(np.asarray(k, dtype=np.float64), (a.qshape[-1],)), node.out)
    v = _apply_quantizer(imp, replace(a, value=v), lo - z, hi - z, 0, "rnd_conv", node.out)
    imp.set(node.out, replace(a, value=v, codes=(sy, z, dtype), unit=sy))


def _dense_input_from(imp: Importer, node: Node, a: Act) -> Act:
    name = f"__qir_tmp_{node.out}"
    imp.values[name] = a
    try:
        return _dense_input(imp, node, name)
    finally:
        del imp.values[name]


def _requantize_out(imp: Importer, node: Node, a: Act, s_idx: int, zp_idx: int) -> None:
    scale = imp.const(node, s_idx, "output scale")
    e = _tensor_exponent(scale, node)
    names = node.inputs
    if len(names) > zp_idx and names[zp_idx]:
        zp = imp.const(node, zp_idx, "output zero point")
        dtype, z = str(zp.dtype), _scalar_int(zp.astype(np.int64), "output zero point", node)
    else:
        dtype, z = "uint8", 0
    lo, hi = oq.ql_range(dtype)
    v = _apply_quantizer(imp, a, lo - z, hi - z, e, "rnd_conv", node.out)
    imp.set(node.out, replace(a, value=v, codes=(float(2.0 ** e), z, dtype)))


def _integer_input(imp: Importer, node: Node, name: str):
    """MatMulInteger/ConvInteger input 0: the QuantizeLinear'd activation (its zero point must be
    the one given as input 2) and its value per code step (real values, or the codes themselves)."""
    x = imp.act(node.inputs[0], node)
    if x.codes is None:
        raise QirError(f"{node.op} input {name} is not an integer tensor from a QuantizeLinear")
    sa, za = x.codes[0], x.codes[1]
    zp = imp.const(node, 2, f"{name} zero point", default=np.int64(0)) if len(node.inputs) > 2 and node.inputs[2] else np.int64(0)
    if _scalar_int(np.asarray(zp).astype(np.int64), f"{name} zero point", node) != za:
        raise QirError(f"{node.op} {name} zero point differs from the QuantizeLinear's ({za})")
    return x, (sa if x.unit == 1.0 else 1.0)


@onnx_handler("MatMulInteger")
def _matmul_integer(imp: Importer, node: Node) -> None:
    x, xs = _integer_input(imp, node, "A")
    w = _int_weights(imp, node, 1, None, 3 if len(node.inputs) > 3 and node.inputs[3] else None, 1)
    xf = _dense_input_from(imp, node, replace(x, codes=None, unit=1.0))
    # the ONNX int32 result is sum (a - za)(b - zb) = (x.value / xs) @ (b - zb)
    imp.set(node.out, _new_dense(imp, node, xf, w / xs, False, None, False))


# ------------------------------------------------------------------------------ handlers: spatial
def _spatial_input(imp: Importer, node: Node, name: str, channels_last: bool, codes_ok: bool = False) -> Act:
    """The input of a spatial op stored channels last (qir layout), ONNX (C, spatial...) or, for
    the qonnx channels_last domain, (spatial..., C).  ``codes_ok``: integer tensors are fine
    (max pooling commutes with dequantization)."""
    a = imp.act(name, node) if codes_ok else imp.float_act(name, node)
    if len(a.shape) < 2:
        raise QirError(f"{node.op} needs a (channels, spatial...) input, got per-sample shape {a.shape}")
    if channels_last:
        return imp.onnx_order(a, node.out)
    return imp.channels_last(a, node.out)


def _window_pads(node: Node, spatial, window, strides, dilations) -> list[int]:
    n = len(spatial)
    auto = str(node.attr("auto_pad", "NOTSET"))
    if auto in ("NOTSET", ""):
        pads = list(node.attr("pads") or [0] * (2 * n))
        if len(pads) != 2 * n:
            raise QirError(f"pads {pads} do not match {n} spatial dims")
        return [int(p) for p in pads]
    if auto == "VALID":
        return [0] * (2 * n)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise QirError(f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    begin, end = [], []
    for size, k, st, d in zip(spatial, window, strides, dilations):
        out = -(-size // st)
        total = max((out - 1) * st + (k - 1) * d + 1 - size, 0)
        lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
        begin.append(lo)
        end.append(total - lo)
    return begin + end


def _spatial_out_shape(spatial, window, strides, dilations, pads) -> list[int]:
    n = len(spatial)
    out = [(spatial[i] + pads[i] + pads[n + i] - dilations[i] * (window[i] - 1) - 1) // strides[i] + 1
           for i in range(n)]
    if min(out, default=1) < 1:
        raise QirError(f"the window {list(window)} does not fit the (padded) input {list(spatial)}")
    return out


def _out_record_shape(spatial_out, channels: int, channels_last: bool):
    """(ONNX per-sample shape, perm) of a spatial op's result stored channels last."""
    n = len(spatial_out)
    if channels_last:
        return tuple(spatial_out) + (channels,), tuple(range(n + 1))
    return (channels,) + tuple(spatial_out), tuple(range(1, n + 1)) + (0,)


def _new_conv(imp: Importer, node: Node, x: Act, w_onnx: np.ndarray, float_w: bool, b, float_b: bool,
              channels_last: bool) -> Pending:
    """A pending qir.conv from ONNX weights (C_out, C_in/groups, k...)."""
    nd = w_onnx.ndim - 2
    spatial = x.qshape[:-1]
    c_in = x.qshape[-1]
    groups = int(node.attr("group", 1))
    if w_onnx.shape[1] * groups != c_in or w_onnx.shape[0] % groups:
        raise QirError(f"weights {w_onnx.shape} with group={groups} do not fit {c_in} input channels")
    window = list(w_onnx.shape[2:])
    kernel_shape = node.attr("kernel_shape")
    if kernel_shape and list(kernel_shape) != window:
        raise QirError(f"kernel_shape {list(kernel_shape)} differs from the weights {w_onnx.shape}")
    strides = list(node.attr("strides") or [1] * nd)
    dilations = list(node.attr("dilations") or [1] * nd)
    pads = _window_pads(node, spatial, window, strides, dilations)
    out = _spatial_out_shape(spatial, window, strides, dilations, pads)
    w = np.transpose(w_onnx.astype(np.float64), tuple(range(2, nd + 2)) + (1, 0))
    shape, perm = _out_record_shape(out, w_onnx.shape[0], channels_last)
    return Pending("conv", x, w, None if b is None else np.asarray(b, dtype=np.float64).reshape(-1),
                   float_w, float_b, shape, perm, (node.out,), (node.name,),
                   {"strides": strides, "dilations": dilations, "pads": pads, "groups": groups})


def _conv(imp: Importer, node: Node, channels_last: bool) -> None:
    w = imp.get(node.inputs[1], node)
    if not isinstance(w, Const):
        raise QirError("Conv with computed weights is not supported; only constant weights are")
    x = _spatial_input(imp, node, node.inputs[0], channels_last)
    if w.array.ndim != len(x.shape) + 1:
        raise QirError(f"Conv weights of shape {w.array.shape} do not match an input of shape {x.shape}")
    warr = w.array
    if channels_last:  # qonnx channels_last Conv: weights are channels last too (O, k..., I)
        warr = np.moveaxis(warr, -1, 1)
    b, fb = None, False
    if len(node.inputs) > 2 and node.inputs[2]:
        c = imp.get(node.inputs[2], node)
        if not isinstance(c, Const):
            raise QirError("Conv with a computed bias is not supported")
        b, fb = c.array, not c.quantized
    imp.set(node.out, _new_conv(imp, node, x, warr, not w.quantized, b, fb, channels_last))


@onnx_handler("Conv")
def _conv_nchw(imp: Importer, node: Node) -> None:
    _conv(imp, node, False)


@onnx_handler("Conv", domain="channels_last")
def _conv_nhwc(imp: Importer, node: Node) -> None:
    _conv(imp, node, True)


@onnx_handler("ConvInteger")
def _conv_integer(imp: Importer, node: Node) -> None:
    x, xs = _integer_input(imp, node, "x")
    w = _int_weights(imp, node, 1, None, 3 if len(node.inputs) > 3 and node.inputs[3] else None, 0)
    xf = imp.channels_last(replace(x, codes=None, unit=1.0), node.out)
    imp.set(node.out, _new_conv(imp, node, xf, w / xs, False, None, False, False))


@onnx_handler("QLinearConv")
def _qlinear_conv(imp: Importer, node: Node) -> None:
    x = imp.act(node.inputs[0], node)
    _check_codes(imp, node, x, 1, 2, "input")
    if _integer_requant(imp, node, x):
        w, k, xs = _int_weights_scaled(imp, node, x, 0)
        b = None
        if len(node.inputs) > 8 and node.inputs[8]:  # int32 at scale sa*sw: accumulator units
            b = imp.const(node, 8, "bias").astype(np.float64) * xs
        xf = imp.channels_last(replace(x, codes=None, unit=1.0), node.out)
        a = imp.emit_pending(_new_conv(imp, node, xf, w, False, b, False, False))
        _requantize_codes(imp, node, a, k, 6, 7)
        return
    w = _int_weights(imp, node, 3, 4, 5, 0)
    b = None
    if len(node.inputs) > 8 and node.inputs[8]:
        sx = float(np.asarray(imp.const(node, 1, "x scale")).reshape(-1)[0])
        ws = imp.const(node, 4, "weight scale").astype(np.float64).reshape(-1)
        b = imp.const(node, 8, "bias").astype(np.float64) * sx * ws  # int32 at scale sx*sw, zp 0
    xf = imp.channels_last(replace(x, codes=None), node.out)
    p = _new_conv(imp, node, xf, w, False, b, False, False)
    a = imp.emit_pending(p)
    _requantize_out(imp, node, a, 6, 7)


def _code_act(imp: Importer, node: Node, idx: int, s_idx: int, zp_idx: int, what: str) -> tuple[Act, float]:
    """An integer input (checked against its scale/zero point inputs) and its value step xs:
    value = (code - zp) * xs (xs = scale for real-valued storage, 1 for code storage)."""
    a = imp.act(node.inputs[idx], node)
    if a.codes is None:
        raise QirError(f"{what} '{node.inputs[idx]}' is not an integer tensor from a QuantizeLinear")
    scale = imp.const(node, s_idx, f"{what} scale")
    zp = imp.const(node, zp_idx, f"{what} zero point", default=np.int64(0))
    _tensor_exponent(scale, node, imp.approximate)
    sc = _scalar_scale(scale)
    z = _scalar_int(np.asarray(zp).astype(np.int64), f"{what} zero point", node)
    if a.codes[0] != sc or a.codes[1] != z:
        raise QirError(f"{what} scale/zero point ({sc}, {z}) differ from the ones it was quantized with "
                       f"{a.codes[:2]}; not supported")
    return a, (sc if a.unit == 1.0 else 1.0)


def _out_codes(imp: Importer, node: Node, a: Act, v: SSAValue, s_idx: int, zp_idx: int, default_dtype="uint8",
               zp_before_rounding: bool = False):
    """Round ``v`` (code units) to integer codes, clip to the output type minus its zero point.
    ``zp_before_rounding``: rne(v + zp) - zp (onnxruntime's contrib kernels add the zero point
    before rounding, which differs from rne(v) at ties when zp is odd)."""
    sy = _scalar_scale(imp.const(node, s_idx, "output scale"))
    if len(node.inputs) > zp_idx and node.inputs[zp_idx]:
        zp = imp.const(node, zp_idx, "output zero point")
        dtype, z = str(zp.dtype), _scalar_int(zp.astype(np.int64), "output zero point", node)
    else:
        dtype, z = default_dtype, 0
    lo, hi = oq.ql_range(dtype)
    if zp_before_rounding and z % 2:
        frac = max(elem(v.type).frac, 0)
        zm = z << frac  # the zero point on v's grid
        shifted = imp.scale(v, None, None, np.array([zm]), Fixed.for_range(min(zm, -zm), max(zm, -zm), frac), node.out)
        q = _apply_quantizer(imp, replace(a, value=shifted), lo, hi, 0, "rnd_conv", node.out)
        v = imp.scale(q, None, None, np.array([-z]), Fixed.for_range(min(z, -z), max(z, -z), 0), node.out)
    else:
        v = _apply_quantizer(imp, replace(a, value=v), lo - z, hi - z, 0, "rnd_conv", node.out)
    return replace(a, value=v, codes=(sy, z, dtype), unit=sy, row_order=a.row_order)


@onnx_handler("QLinearAdd", domain="ms")
def _qlinear_add(imp: Importer, node: Node) -> None:
    """C = sat(rne((A_real + B_real) / sc) + zc): both inputs scaled to output code units, added
    exactly, rounded once."""
    a, xa = _code_act(imp, node, 0, 1, 2, "A")
    b, xb = _code_act(imp, node, 3, 4, 5, "B")
    if a.shape != b.shape:
        raise QirError(f"QLinearAdd of shapes {a.shape} and {b.shape} (broadcasting) is not supported")
    a = imp.canonical(a, node.out)
    b = imp.permute(imp.canonical(b, node.out), a.perm, node.out)
    sa, sb = (_scalar_scale(imp.const(node, i, "scale")) for i in (1, 4))
    sc = _scalar_scale(imp.const(node, 6, "output scale"))
    va = _multiply(imp, a.value, sa / (sc * xa), node.out)
    vb = _multiply(imp, b.value, sb / (sc * xb), node.out)
    probe = AddOp.create(operands=[va, vb], result_types=[va.type])
    lo, hi, frac = probe.exact_bounds()
    probe.erase()
    s = imp.emit(AddOp.create(operands=[va, vb], result_types=[tensor_of(Fixed.for_range(lo, hi, frac), a.qshape)]),
                 node.out)
    imp.set(node.out, _out_codes(imp, node, a, s, 6, 7, zp_before_rounding=True))


@onnx_handler("QLinearGlobalAveragePool", domain="ms")
def _qlinear_gap(imp: Importer, node: Node) -> None:
    """y = sat(rne(sum(x - zx) * sx / (N * sy)) + zy): an exact window sum, then one factor."""
    a, xs = _code_act(imp, node, 0, 1, 2, "X")
    cl = bool(node.attr("channels_last", 0))
    x = imp.onnx_order(a, node.out) if cl else imp.channels_last(a, node.out)
    spatial = list(x.qshape[:-1])
    n = int(np.prod(spatial))
    props = {"kind": StringAttr("avg"), "window": _ints(spatial), "strides": _ints([1] * len(spatial)),
             "pads": _ints([0] * (2 * len(spatial))), "count": StringAttr("window"),
             "multiplier": int_elements(np.array([1])), "multiplier_type": fixed_type(Fixed(2, 2, False))}
    shape, perm = _out_record_shape([1] * len(spatial), x.qshape[-1], cl)
    qshape = tuple(shape[i] for i in perm)
    total = imp.exact_op(PoolOp, x.value, props, qshape, node.out)
    sx = _scalar_scale(imp.const(node, 1, "X scale"))
    sy = _scalar_scale(imp.const(node, 3, "output scale"))
    v = _multiply(imp, total, sx / (n * sy * xs), node.out)
    out = Act(v, shape, perm)
    imp.set(node.out, _out_codes(imp, node, out, v, 3, 4))


@onnx_handler("QGemm", domain="ms")
def _qgemm(imp: Importer, node: Node) -> None:
    """Y = alpha * (A - za)(B - zb) * sa*sb (+ C int32 at scale sa*sb); quantized to y_scale/zp when
    given, else real."""
    if node.attr("transA", 0):
        raise QirError("QGemm with transA=1 is not supported")
    a, xs = _code_act(imp, node, 0, 1, 2, "A")
    transb = bool(node.attr("transB", 0))
    w = _int_weights(imp, node, 3, None, 5, 0 if transb else 1)
    w = w.T if transb else w
    sa = _scalar_scale(imp.const(node, 1, "A scale"))
    sb = imp.const(node, 4, "B scale").astype(np.float32).astype(np.float64).reshape(-1)
    alpha = float(np.float32(node.attr("alpha", 1.0)))
    b = None
    if len(node.inputs) > 6 and node.inputs[6]:
        b = _per_sample(imp.const(node, 6, "C").astype(np.float64), (w.shape[1],), "QGemm C") * xs
    xf = _dense_input_from(imp, node, replace(a, codes=None, unit=1.0))
    acc = imp.emit_pending(_new_dense(imp, node, xf, w, False, b, False))  # = (acc_int + C) * xs
    factor = np.broadcast_to(alpha * sa * sb / xs, (w.shape[1],))
    if len(node.inputs) > 7 and node.inputs[7]:
        sy = _scalar_scale(imp.const(node, 7, "output scale"))
        _tensor_exponent(np.array([sy]), node, imp.approximate)
        v = _multiply(imp, acc.value, factor / sy, node.out)
        imp.set(node.out, _out_codes(imp, node, acc, v, 7, 8))
        return
    v = _multiply(imp, acc.value, factor, node.out)
    imp.set(node.out, replace(acc, value=v))


def _pool_params(node: Node, x: Act, window):
    nd = len(window)
    strides = list(node.attr("strides") or [1] * nd)
    dilations = list(node.attr("dilations") or [1] * nd)
    if any(d != 1 for d in dilations):
        raise QirError(f"pooling with dilations {dilations} is not supported")
    spatial = x.qshape[:-1]
    pads = _window_pads(node, spatial, window, strides, dilations)
    if node.attr("ceil_mode", 0):
        # ceil mode: extra end padding so the last partial window exists (it never lies fully in padding)
        for i in range(nd):
            size = spatial[i] + pads[i] + pads[nd + i]
            rem = (size - window[i]) % strides[i]
            if rem and (size - window[i]) // strides[i] * strides[i] + strides[i] < spatial[i] + pads[i]:
                pads[nd + i] += strides[i] - rem
    return strides, pads


def _pool(imp: Importer, node: Node, kind: str, channels_last: bool, global_: bool) -> None:
    x = _spatial_input(imp, node, node.inputs[0], channels_last, codes_ok=kind == "max")
    spatial = list(x.qshape[:-1])
    window = spatial if global_ else list(node.attr("kernel_shape"))
    if len(window) != len(spatial):
        raise QirError(f"kernel_shape {window} does not match {len(spatial)} spatial dims")
    if global_:
        strides, pads = [1] * len(window), [0] * (2 * len(window))
    else:
        strides, pads = _pool_params(node, x, window)
    out = _spatial_out_shape(spatial, window, strides, [1] * len(window), pads)
    shape, perm = _out_record_shape(out, x.qshape[-1], channels_last)
    qshape = tuple(shape[i] for i in perm)
    props = {"kind": StringAttr(kind), "window": _ints(window), "strides": _ints(strides), "pads": _ints(pads)}
    if kind == "max":
        v = imp.emit(PoolOp.create(operands=[x.value], result_types=[tensor_of(x.type, qshape)], properties=props),
                     node.out)
        imp.set(node.out, Act(v, shape, perm, x.codes, unit=x.unit))
        return
    from qir.dialect import window_geometry

    area = int(np.prod(window))
    include_pad = bool(node.attr("count_include_pad", 0)) or not any(pads)
    geo = window_geometry(tuple(spatial), window, strides, (1,) * len(window), pads)
    counts = np.ones((), dtype=np.int64)
    for _, mask in geo:
        counts = np.multiply.outer(counts, mask.sum(axis=1))
    used = [area] if include_pad else sorted({int(c) for c in np.unique(counts)})
    mult = np.array([1.0 / area]) if include_pad else np.array([1.0 / k for k in range(1, area + 1)])
    exact = all(oq.is_po2(1.0 / k) for k in used)
    lp = imp.layer_precision((node.out,), (node.name,))
    if exact:
        if not include_pad:
            mult = np.array([1.0 / k if k in used else 0.0 for k in range(1, area + 1)])
        mm, mt = oq.exact_fixed(mult, "average pooling multipliers")
    else:
        mt = imp.float_type(lp, "weight", node.where)
        mm = quantize_float(mult, mt)
    props |= {"count": StringAttr("window" if include_pad else "valid"),
              "multiplier": int_elements(mm), "multiplier_type": fixed_type(mt)}
    v = imp.exact_op(PoolOp, x.value, props, qshape, node.out)
    if not exact:
        v = imp.cast_result(v, lp, node.out)
    imp.set(node.out, Act(v, shape, perm))


@onnx_handler("MaxPool")
def _maxpool(imp: Importer, node: Node) -> None:
    if len(node.proto.output) > 1 and node.proto.output[1]:
        raise QirError("MaxPool with an Indices output is not supported")
    _pool(imp, node, "max", False, False)


@onnx_handler("MaxPool", domain="channels_last")
def _maxpool_nhwc(imp: Importer, node: Node) -> None:
    _pool(imp, node, "max", True, False)


@onnx_handler("AveragePool")
def _avgpool(imp: Importer, node: Node) -> None:
    _pool(imp, node, "avg", False, False)


@onnx_handler("GlobalAveragePool")
def _global_avgpool(imp: Importer, node: Node) -> None:
    _pool(imp, node, "avg", False, True)


@onnx_handler("GlobalMaxPool")
def _global_maxpool(imp: Importer, node: Node) -> None:
    _pool(imp, node, "max", False, True)


@onnx_handler("BatchNormalization", domain="channels_last")
def _batchnorm_nhwc(imp: Importer, node: Node) -> None:
    _batchnorm(imp, node, channels_last=True)


@onnx_handler("Concat")
def _concat(imp: Importer, node: Node) -> None:
    acts = [imp.float_act(n, node) for n in node.inputs]
    rank = len(acts[0].shape) + 1
    axis = int(node.attr("axis")) % rank
    if axis == 0:
        raise QirError("Concat along the batch axis is not supported")
    base = imp.canonical(acts[0], node.out)
    acts = [base] + [imp.permute(imp.canonical(a, node.out), base.perm, node.out) for a in acts[1:]]
    qaxis = base.perm.index(axis - 1)
    shape = list(base.shape)
    shape[axis - 1] = sum(a.shape[axis - 1] for a in acts)
    qshape = tuple(shape[i] for i in base.perm)
    values = [a.value for a in acts]
    probe = ConcatOp.create(operands=values, result_types=[values[0].type],
                            properties={"axis": IntegerAttr(qaxis, i64)})
    lo, hi, frac = probe.exact_bounds()
    probe.erase()
    t = Fixed.for_range(lo, hi, frac)
    v = imp.emit(ConcatOp.create(operands=values, result_types=[tensor_of(t, qshape)],
                                 properties={"axis": IntegerAttr(qaxis, i64)}), node.out)
    imp.set(node.out, Act(v, tuple(shape), base.perm))


@onnx_handler("Pad")
def _pad(imp: Importer, node: Node) -> None:
    a = imp.canonical(imp.float_act(node.inputs[0], node), node.out)
    mode = str(node.attr("mode", "constant"))
    if mode != "constant":
        raise QirError(f"Pad mode {mode!r} is not supported (only constant zero padding)")
    if len(node.inputs) > 1 and node.inputs[1]:
        pads = [int(v) for v in imp.const(node, 1, "pads").reshape(-1)]
    else:
        pads = [int(v) for v in node.attr("pads")]
    if len(node.inputs) > 2 and node.inputs[2] and np.any(imp.const(node, 2, "constant value") != 0):
        raise QirError("Pad with a nonzero constant value is not supported")
    rank = len(a.shape) + 1
    if len(node.inputs) > 3 and node.inputs[3]:
        axes = [int(v) % rank for v in imp.const(node, 3, "axes").reshape(-1)]
        full = [0] * (2 * rank)
        for i, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[i], pads[len(axes) + i]
        pads = full
    if len(pads) != 2 * rank or pads[0] or pads[rank] or min(pads) < 0:
        raise QirError(f"Pad {pads} pads the batch axis or is negative; not supported")
    begin, end = pads[1:rank], pads[rank + 1:]
    qpads = [begin[p] for p in a.perm] + [end[p] for p in a.perm]
    shape = tuple(d + b + e for d, b, e in zip(a.shape, begin, end))
    qshape = tuple(shape[p] for p in a.perm)
    v = imp.emit(PadOp.create(operands=[a.value], result_types=[tensor_of(a.type, qshape)],
                              properties={"pads": _ints(qpads)}), node.out)
    imp.set(node.out, Act(v, shape, a.perm))


# ------------------------------------------------------------------------------ entry point
def import_onnx(path: "str | Path | onnx.ModelProto", *, input_type: Fixed | None = None, softmax: str = "keep",
                precision: PrecisionConfig | Fixed | None = None, approximate: bool | int = False) -> ModuleOp:
    """Import a QONNX, QDQ or float ONNX model into one ``qir.model`` (see the module docstring)."""
    if softmax not in SOFTMAX_MODES:
        raise QirError(f"softmax must be one of {', '.join(SOFTMAX_MODES)}, got {softmax!r}")
    if input_type is not None and not isinstance(input_type, Fixed):
        raise QirError(f"input_type must be a Fixed (e.g. Fixed.parse('fixed<16,6>')), got {input_type!r}")
    if approximate is not False and not (approximate is True or (isinstance(approximate, int) and 2 <= approximate <= 48)):
        raise QirError(f"approximate must be False, True or a number of significant bits (2..48), got {approximate!r}")
    if isinstance(precision, Fixed):
        precision = PrecisionConfig.from_type(precision)
    elif precision is not None and not isinstance(precision, PrecisionConfig):
        raise QirError(f"precision must be a Fixed or a PrecisionConfig, got {precision!r}")
    graph = prepare(path if isinstance(path, onnx.ModelProto) else Path(path))
    return Importer(graph, input_type, softmax, precision, approximate).run()
