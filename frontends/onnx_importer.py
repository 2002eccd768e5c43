"""The ONNX importer core: ``Importer`` walks the prepared graph node by node, folds constant
nodes, dispatches every other node to the handler registered for its op type, keeps pending
dense/conv layers open for following linear ops, and builds the model input and outputs.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation, SSAValue
from xdsl.utils.exceptions import DiagnosticException, VerifyException

from qir.dialect import (
    ConvOp,
    DenseOp,
    InputOp,
    OutputOp,
    QuantizeOp,
    ReshapeOp,
    ScaleOp,
    fixed_type,
    int_elements,
    shape_of,
    tensor_of,
)
from qir.errors import QirError
from qir.exact import dense_result
from qir.fixed import Fixed
from qir.ir import new_model, set_layer, verify
from qir.names import legalize
from qir.precision import LayerPrecision, PrecisionConfig, quantize_float

from . import onnx_quant as oq
from .common import exact_fixed, int_array
from .onnx_fold import can_fold, fold
from .onnx_graph import Graph, domain_kind
from .onnx_qspec import input_spec
from .onnx_records import (
    APPROX_BITS,
    HANDLERS,
    Act,
    Const,
    Node,
    Pending,
    Record,
    layer_name,
    po2_message,
    supported_ops,
    transpose_op,
)


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
        self.module, _, self.block = new_model(legalize(graph.file.stem, "model"))
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
        v = self.emit(transpose_op(v, inv, onnx_shape, a.type), layer)
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
        v = self.emit(transpose_op(a.value, p, new_qshape, a.type), layer)
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
        return self.emit(ScaleOp.exact([v], props), layer)

    def exact_op(self, cls, v: SSAValue, props: dict, out_shape, layer: str) -> SSAValue:
        """``cls`` on ``v`` with its exact result type (``cls.exact``)."""
        return self.emit(cls.exact([v], props, out_shape), layer)

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
            return exact_fixed(values, f"quantized {what}")
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
            props |= {"strides": int_array(c["strides"]), "dilations": int_array(c["dilations"]),
                      "pads": int_array(c["pads"]), "groups": IntegerAttr(c["groups"], i64)}
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
        handler = HANDLERS.get((node.kind, node.op))
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
                raise QirError(po2_message(scale, "weights"), where=node.where)
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
        spec = input_spec(self, node)
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
