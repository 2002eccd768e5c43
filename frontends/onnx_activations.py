"""ONNX activation handlers: Relu, LeakyRelu, Clip, the float functions imported as tables (Sigmoid,
Tanh, Selu, Elu, HardSigmoid, Softsign, Softplus) and the final Softmax/LogSoftmax.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from qir.dialect import LeakyReluOp, ReluOp, fixed_type, int_elements, shape_of
from qir.errors import QirError
from qir.fixed import Fixed
from qir.precision import DEFAULT_TABLE_INPUT, quantize_float

from . import onnx_quant as oq
from .common import exact_fixed
from .onnx_importer import Importer
from .onnx_qspec import clip_exact, lut_op
from .onnx_records import Node, onnx_handler


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
        am, at = exact_fixed(np.array([alpha], dtype=np.float64), "alpha")
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
    # as in the Keras frontend: the table's index is the input rounded (rnd_conv) and saturated to
    # the configuration's `table` type (default DEFAULT_TABLE_INPUT), whatever the input's width
    table_t = lp.table or DEFAULT_TABLE_INPUT
    x = imp.quantize(a.value, table_t, "rnd_conv", "sat", node.out)
    v = lut_op(imp, replace(a, value=x), _LUT_FUNCTIONS[node.op](node), node.out, node.op, node.where, out_t)
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
        v = clip_exact(imp, a.value, lo_i, hi_i, t.frac, node.out)
        v = imp.quantize(v, Fixed.for_range(lo_i, hi_i, t.frac), "trn", "sat", node.out)
    imp.set(node.out, replace(a, value=v))
