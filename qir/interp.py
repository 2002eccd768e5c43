"""The numpy reference interpreter: the semantic ground truth of the ``qir`` dialect.

Every value is an integer numpy array of mantissas with a leading batch axis, shape
``(N, *tensor shape)``; the real value of a mantissa ``n`` of type ``fixed<W,I>`` is
``n * 2**(I-W)``.  Arrays are int64 while the type is at most 62 bits wide and Python-int object
arrays beyond, so nothing here can overflow.  RTL is checked against this module, never the
other way round.

Each op's semantics is one function registered with ``@impl(OpClass)``; a new op adds one.
``evaluate_op(op, args)`` runs one op (passes that evaluate chains of ops use it);
``evaluate`` runs a whole model.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from qir.dialect import (
    AdderGraphOp,
    AddOp,
    CmvmOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    DigitSerialOp,
    InputOp,
    LeakyReluOp,
    LutOp,
    ModelOp,
    MulOp,
    MuxGraphOp,
    MvuOp,
    OutputOp,
    PadOp,
    PoolOp,
    QuantizeOp,
    ReduceOp,
    RegOp,
    ReluOp,
    ReshapeOp,
    ScaleOp,
    StepsOp,
    ThresholdOp,
    TransposeOp,
    XnorOp,
    elem,
    elements_to_numpy,
    int_values,
    shape_of,
)
from qir.dialect.stream_ops import CollectOp, JoinOp, MapOp, StreamMvuOp, WindowOp
from qir.errors import QirError
from qir.fixed import Fixed, mantissa_array, requantize
from qir.ir import get_model, layer_of

Impl = Callable[[Operation, list[np.ndarray]], np.ndarray]
_IMPLS: dict[type[Operation], Impl] = {}


def impl(op_class: type[Operation]):
    def register(fn: Impl) -> Impl:
        _IMPLS[op_class] = fn
        return fn
    return register


def has_impl(op: Operation) -> bool:
    """Whether the interpreter defines ``op``'s semantics."""
    return type(op) in _IMPLS


def evaluate_op(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """The result of one op for operand batches ``args`` (integer mantissa arrays with a leading
    batch axis), exactly as ``evaluate`` computes it inside a model."""
    fn = _IMPLS.get(type(op))
    if fn is None:
        raise QirError(f"{op.name} has no interpreter semantics")
    return fn(op, list(args))


def _matvec(x: np.ndarray, m: np.ndarray, out_t: Fixed) -> np.ndarray:
    """x @ m on integer mantissas, exact.  int64 is safe when the (verified exact) result type
    fits 62 bits: every partial sum lies within the interval bounds of the full sum, because
    every term's interval contains 0."""
    if out_t.width <= 62 and x.dtype != object and m.dtype != object:
        return x.astype(np.int64) @ m.astype(np.int64)
    return x.astype(object) @ m.astype(object)


@impl(DenseOp)
def _dense(op: DenseOp, args):
    w, off, frac = op.folded()  # bias aligned to the products (or w scaled to the bias)
    out_t = elem(op.output.type)
    acc = _matvec(args[0], w, out_t) + np.asarray(off, dtype=object if out_t.width > 62 else np.int64)
    return _regrid(acc, frac, out_t)


@impl(CmvmOp)
@impl(MvuOp)
def _cmvm(op: CmvmOp | MvuOp, args):
    """``qir.cmvm``; ``qir.mvu`` (the same product folded over reuse cycles) has the same numbers."""
    m, off = elements_to_numpy(op.matrix), elements_to_numpy(op.offset)
    out_t = elem(op.output.type)
    return mantissa_array(_matvec(args[0], m, out_t) + off, out_t.width)


def _regrid(acc: np.ndarray, frac: int, out_t: Fixed) -> np.ndarray:
    """Exact results with ``frac`` fractional bits, expressed on out_t's (finer or equal) grid."""
    shift = out_t.frac - frac
    return mantissa_array(acc * (1 << shift) if shift else acc, out_t.width)


@impl(ReluOp)
def _relu(op: ReluOp, args):
    return np.maximum(args[0], 0)


@impl(QuantizeOp)
def _quantize(op: QuantizeOp, args):
    return requantize(args[0], elem(op.input.type), elem(op.output.type),
                      op.rounding.data, op.overflow.data)


@impl(RegOp)
def _reg(op: RegOp, args):
    return args[0]


@impl(AdderGraphOp)
def _addergraph(op: AdderGraphOp, args):
    """The adder graph's sums (exact), then the fused relu/quantize epilogue if present."""
    acc_t = op.acc_spec
    acc = mantissa_array(op.graph().evaluate(args[0]), acc_t.width)
    if op.acc_type is None:
        return acc
    if op.relu.value.data:
        acc = np.maximum(acc, 0)
    return requantize(acc, acc_t, elem(op.output.type), op.rounding.data, op.overflow.data)


@impl(MuxGraphOp)
def _muxgraph(op: MuxGraphOp, args):
    """The R phase graphs of the multiplexed adder graph, each on its output columns (exact)."""
    return mantissa_array(op.graph().evaluate(args[0]), elem(op.output.type).width)


@impl(DigitSerialOp)
def _digitserial(op: DigitSerialOp, args):
    """The digit adder graph on every digit of the offset-binary input, shifted and summed, plus
    the offset (``qir.digitserial.evaluate``: exact; equal to x @ W + offset)."""
    from qir.digitserial import evaluate

    y = evaluate(op.graph(), elements_to_numpy(op.offset), op.x_min, op.n_bits, op.D, op.k, args[0])
    return mantissa_array(y, elem(op.output.type).width)


@impl(XnorOp)
def _xnor(op: XnorOp, args):
    """Popcount of XNOR(input bit, weight bit) per output; with thresholds, the two codes."""
    return _popcount_out(op, np.asarray(args[0]), elements_to_numpy(op.weights).astype(np.int64))


def _popcount_out(op, x: np.ndarray, w: np.ndarray):
    """``qir.xnor``'s numbers (also the xnor ``qir.stream_mvu``'s): x (N, n_in), weight bits w
    (n_out, n_in)."""
    k = op.bit()
    raw = (x.astype(object) >> k) & 1 if x.dtype == object else (x.astype(np.int64) >> k) & 1
    b = (raw.astype(np.int64) == ((op.one.value.data >> k) & 1)).astype(np.int64)  # (N, n_in)
    p = b @ w.T + (1 - b) @ (1 - w).T
    out_t = elem(op.output.type)
    tt = op.threshold_table()
    if tt is None:
        return _regrid(p, 0, out_t)
    t, below, above = tt
    return mantissa_array(np.where(p >= t, above, below), out_t.width)


@impl(ThresholdOp)
def _threshold(op: ThresholdOp, args):
    """above[c] where x >= thresholds[c], else below[c] (channel = last axis)."""
    t, below, above = op.table()
    x = np.asarray(args[0])
    return mantissa_array(np.where(x >= t, above, below), elem(op.output.type).width)


# ------------------------------------------------------- spatial, elementwise and shape ops
def _work(x: np.ndarray, out_t: Fixed) -> np.ndarray:
    """The input as int64 when the (exact, verified) result fits 62 bits, else Python ints.
    Intermediate sums of terms whose ranges contain 0 stay within the result's bounds."""
    return x.astype(object) if out_t.width > 62 or x.dtype == object else x.astype(np.int64)


def _consts(values, out_t: Fixed) -> np.ndarray:
    return np.asarray(values, dtype=object if out_t.width > 62 else np.int64)


def _padded(x: np.ndarray, pads, fill) -> np.ndarray:
    """x (N, spatial..., C) with pads [begin.., end..] on the spatial axes, filled with ``fill``."""
    n = len(pads) // 2
    width = [(0, 0)] + [(pads[d], pads[n + d]) for d in range(n)] + [(0, 0)]
    if not any(pads):
        return x
    return np.pad(x, width, constant_values=fill) if x.dtype != object else _pad_object(x, width, fill)


def _pad_object(x: np.ndarray, width, fill) -> np.ndarray:
    out = np.full(tuple(s + a + b for s, (a, b) in zip(x.shape, width)), fill, dtype=object)
    out[tuple(slice(a, a + s) for s, (a, _) in zip(x.shape, width))] = x
    return out


def _taps(xp: np.ndarray, window, strides, dilations, out_sp):
    """(tap, view): for every kernel tap, the (N, out spatial..., C) input elements it meets."""
    for t in itertools.product(*map(range, window)):
        sl = tuple(slice(t[d] * dilations[d], t[d] * dilations[d] + (out_sp[d] - 1) * strides[d] + 1, strides[d])
                   for d in range(len(window)))
        yield t, xp[(slice(None),) + sl]


@impl(ConvOp)
def _conv(op: ConvOp, args):
    out_t = elem(op.output.type)
    w, off, frac = op.folded()  # w: (kernel..., C_in/groups, C_out)
    x = _work(args[0], out_t)
    nk = w.ndim - 2
    strides, dil = int_values(op.strides), int_values(op.dilations)
    out_sp = shape_of(op.output.type)[:-1]
    g = op.groups.value.data
    n, ci, co = x.shape[0], x.shape[-1] // g, w.shape[-1] // g
    # Exact in float64 (BLAS) when the result fits 53 bits: every product and every partial sum
    # lies within the verified result bounds, whatever the summation order.
    fast = out_t.width <= 53 and x.dtype != object
    dt = np.float64 if fast else x.dtype
    xp = _padded(x, int_values(op.pads), 0).astype(dt)
    wg = _consts(w, out_t).reshape(w.shape[:nk] + (ci, g, co)).transpose(tuple(range(nk)) + (nk + 1, nk, nk + 2))
    wg = wg.astype(dt)  # (kernel..., G, ci, co)
    acc = np.zeros((g, n * int(np.prod(out_sp)), co), dtype=dt)
    for t, v in _taps(xp, w.shape[:nk], strides, dil, out_sp):
        xs = v.reshape(-1, g, ci)
        if g == 1:
            acc[0] += xs[:, 0, :] @ wg[t][0]
        else:
            acc += np.matmul(xs.transpose(1, 0, 2), wg[t])
    if fast:
        acc = np.rint(acc).astype(np.int64)
    acc = acc.transpose(1, 0, 2).reshape((n,) + tuple(out_sp) + (g * co,)) + _consts(off, out_t)
    return _regrid(acc, frac, out_t)


@impl(PoolOp)
def _pool(op: PoolOp, args):
    in_t, out_t = elem(op.input.type), elem(op.output.type)
    window = int_values(op.window)
    ones = (1,) * len(window)
    out_sp = shape_of(op.output.type)[:-1]
    if op.kind.data == "max":
        xp = _padded(args[0], int_values(op.pads), in_t.min_int)  # padding never wins
        views = [v for _, v in _taps(xp, window, int_values(op.strides), ones, out_sp)]
        return mantissa_array(functools.reduce(np.maximum, views), out_t.width)
    xp = _padded(_work(args[0], out_t), int_values(op.pads), 0)
    total = sum(v for _, v in _taps(xp, window, int_values(op.strides), ones, out_sp))
    m = _consts(op.multipliers(), out_t)[op.counts()]  # per output position, by window count
    return _regrid(total * m[None, ..., None], in_t.frac + op.multiplier_type.spec.frac, out_t)


@impl(ScaleOp)
def _scale(op: ScaleOp, args):
    out_t = elem(op.output.type)
    s, t, frac = op.folded()
    return _regrid(_work(args[0], out_t) * _consts(s, out_t) + _consts(t, out_t), frac, out_t)


@impl(LeakyReluOp)
def _leaky_relu(op: LeakyReluOp, args):
    in_t, out_t, at = elem(op.input.type), elem(op.output.type), op.alpha_type.spec
    frac = in_t.frac + max(at.frac, 0)
    x = _work(args[0], out_t)
    a = _consts(elements_to_numpy(op.alpha), out_t)
    neg = x * a * (1 << (frac - in_t.frac - at.frac))
    return _regrid(np.where(x >= 0, x * (1 << (frac - in_t.frac)), neg), frac, out_t)


@impl(AddOp)
def _add(op: AddOp, args):
    out_t = elem(op.output.type)
    frac = max(elem(v.type).frac for v in op.inputs)
    acc = 0
    for v, x in zip(op.inputs, args):
        acc = acc + _work(x, out_t) * (1 << (frac - elem(v.type).frac))
    return _regrid(acc, frac, out_t)


@impl(ConcatOp)
def _concat(op: ConcatOp, args):
    out_t = elem(op.output.type)
    parts = [_regrid(_work(x, out_t), elem(v.type).frac, out_t) for v, x in zip(op.inputs, args)]
    return mantissa_array(np.concatenate(parts, axis=op.axis.value.data + 1), out_t.width)


@impl(ReshapeOp)
def _reshape(op: ReshapeOp, args):
    return args[0].reshape((args[0].shape[0],) + shape_of(op.output.type))


@impl(TransposeOp)
def _transpose(op: TransposeOp, args):
    return args[0].transpose((0,) + tuple(p + 1 for p in int_values(op.perm)))


@impl(PadOp)
def _pad(op: PadOp, args):
    x, pads = args[0], int_values(op.pads)
    n = x.ndim - 1
    width = [(0, 0)] + [(pads[d], pads[n + d]) for d in range(n)]
    return np.pad(x, width) if x.dtype != object else _pad_object(x, width, 0)


@impl(LutOp)
def _lut(op: LutOp, args):
    in_t, out_t = elem(op.input.type), elem(op.output.type)
    table = elements_to_numpy(op.table)
    return mantissa_array(table[np.asarray(args[0], dtype=np.int64) - in_t.min_int], out_t.width)


@impl(StepsOp)
def _steps(op: StepsOp, args):
    """values[number of thresholds <= x]."""
    t, v = elements_to_numpy(op.thresholds), elements_to_numpy(op.values)
    idx = np.searchsorted(t, np.asarray(args[0], dtype=np.int64), side="right")
    return mantissa_array(v[idx], elem(op.output.type).width)


@impl(MulOp)
def _mul(op: MulOp, args):
    """a * b (b broadcast numpy-style behind the batch axis), exact."""
    out_t = elem(op.output.type)
    a, b = _work(args[0], out_t), _work(args[1], out_t)
    rank_gap = a.ndim - b.ndim
    b = b.reshape((b.shape[0],) + (1,) * rank_gap + b.shape[1:])
    return _regrid(a * b, elem(op.lhs.type).frac + elem(op.rhs.type).frac, out_t)


@impl(ReduceOp)
def _reduce(op: ReduceOp, args):
    """sum / max / max |x| over ``axis`` with keepdims, exact."""
    out_t = elem(op.output.type)
    axis = op.axis.value.data + 1
    x = _work(args[0], out_t) if op.kind.data == "sum" else args[0]
    if op.kind.data == "sum":
        r = x.sum(axis=axis, keepdims=True)
    elif op.kind.data == "max":
        r = x.max(axis=axis, keepdims=True)
    else:
        r = np.abs(x.astype(object) if x.dtype == object else x.astype(np.int64)).max(axis=axis, keepdims=True)
    return _regrid(r, elem(op.input.type).frac, out_t)


class Evaluation:
    """Result of running a model: output mantissas, and every op's result by SSA value."""

    def __init__(self, model: ModelOp, values: dict[SSAValue, np.ndarray]):
        self.model = model
        self.values = values

    @property
    def outputs(self) -> list[np.ndarray]:
        return [self.values[v] for v in self.model.output().outs]

    def layer_outputs(self) -> dict[str, tuple[Fixed, np.ndarray]]:
        """Per source layer, the value its last op produced (its type and mantissas)."""
        last: dict[str, SSAValue] = {}
        for op in self.model.block.ops:
            name = layer_of(op)
            if name is not None and op.results:
                last[name] = op.results[0]
        return {name: (elem(v.type), self.values[v]) for name, v in last.items()}


def evaluate(model: ModelOp | ModuleOp, inputs: Sequence[np.ndarray]) -> Evaluation:
    """Run ``model`` on input mantissas, one array of shape (N, *input shape) per qir.input."""
    if isinstance(model, ModuleOp):
        model = get_model(model)
    ins = model.inputs()
    if len(inputs) != len(ins):
        raise QirError(f"model @{model.sym_name.data} has {len(ins)} inputs, got {len(inputs)} arrays")
    values: dict[SSAValue, np.ndarray] = {}
    for op in model.block.ops:
        if isinstance(op, InputOp):
            x = np.asarray(inputs[ins.index(op)])
            t, shape = elem(op.result.type), shape_of(op.result.type)
            if x.shape[1:] != shape:
                raise QirError(f"input '{op.port.data}' expects shape (N, {', '.join(map(str, shape))}),"
                               f" got {x.shape}")
            if x.size and (x.min() < t.min_int or x.max() > t.max_int):
                raise QirError(f"input '{op.port.data}': mantissas outside {t}")
            values[op.result] = mantissa_array(x, t.width)
            continue
        if isinstance(op, OutputOp):
            break
        fn = _IMPLS.get(type(op))
        if fn is None:
            raise QirError(f"the reference interpreter has no semantics for '{op.name}'")
        values[op.results[0]] = fn(op, [values[a] for a in op.operands])
    return Evaluation(model, values)


def input_types(model: ModelOp) -> list[tuple[str, Fixed, tuple[int, ...]]]:
    return [(op.port.data, elem(op.result.type), shape_of(op.result.type)) for op in model.inputs()]


def output_types(model: ModelOp) -> list[tuple[Fixed, tuple[int, ...]]]:
    return [(elem(v.type), shape_of(v.type)) for v in model.output().outs]


def evaluate_real(model: ModelOp | ModuleOp, inputs: Sequence[np.ndarray], what: str = "inputs"
                  ) -> tuple[list[np.ndarray], Evaluation]:
    """Run on real values (float64 on the input grid); returns real outputs and the evaluation."""
    if isinstance(model, ModuleOp):
        model = get_model(model)
    from qir.safety import check_inputs  # the checks of qir eval/sim's input loader

    ev = evaluate(model, check_inputs(list(inputs), input_types(model), what))
    outs = [t.to_real(y) for (t, _), y in zip(output_types(model), ev.outputs)]
    return outs, ev


def write_trace(ev: Evaluation, directory: str | Path) -> list[Path]:
    """One ``<layer>.npy`` (real values, float64) per source layer, in DIR (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (t, mant) in ev.layer_outputs().items():
        from qir.safety import atomic_save_npy

        p = atomic_save_npy(d / f"{name.replace('/', '_')}.npy", t.to_real(mant))
        written.append(p)
    return written


# ------------------------------------------------------------------------ stream-level ops
# qir.window / qir.map / qir.collect work on whole tensors here; beats only matter to hardware.
@impl(WindowOp)
def _window(op: WindowOp, args):
    x = np.asarray(args[0])
    window, strides, dil = int_values(op.window), int_values(op.strides), int_values(op.dilations)
    out_sp = shape_of(op.output.type)[:-1]
    xp = _padded(x, int_values(op.pads), op.fill.value.data)
    views = []
    for t in itertools.product(*map(range, window)):
        sl = tuple(slice(t[d] * dil[d], t[d] * dil[d] + (out_sp[d] - 1) * strides[d] + 1, strides[d])
                   for d in range(len(window)))
        views.append(xp[(slice(None),) + sl])  # (N, out spatial..., C)
    return np.concatenate(views, axis=-1)


@impl(MapOp)
def _map(op: MapOp, args):
    x = np.asarray(args[0])
    n, lead, c = x.shape[0], x.shape[1:-1], x.shape[-1]
    beats = x.reshape(-1, c)
    y = evaluate(op.model(), [beats]).outputs[0]
    return mantissa_array(y, elem(op.output.type).width).reshape((n, *lead, y.shape[-1]))


@impl(JoinOp)
def _join(op: JoinOp, args):
    a, b = np.asarray(args[0]), np.asarray(args[1])
    n, lead = a.shape[0], a.shape[1:-1]
    y = evaluate(op.model(), [a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])]).outputs[0]
    return mantissa_array(y, elem(op.output.type).width).reshape((n, *lead, y.shape[-1]))


@impl(CollectOp)
def _collect(op: CollectOp, args):
    x = np.asarray(args[0])
    return x.reshape(x.shape[0], -1)


@impl(StreamMvuOp)
def _stream_mvu(op: StreamMvuOp, args):
    """The numbers of ``qir.mvu`` on the flattened stream (beats only matter to hardware)."""
    x = np.asarray(args[0])
    if op.is_xnor:  # qir.xnor on the flattened stream, weights = matrix^T
        return _popcount_out(op, x.reshape(x.shape[0], -1), elements_to_numpy(op.matrix).astype(np.int64).T)
    return _cmvm(op, [x.reshape(x.shape[0], -1)])
