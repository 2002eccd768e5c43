"""The numpy reference interpreter: the semantic ground truth of the ``qir`` dialect.

Every value is an integer numpy array of mantissas with a leading batch axis, shape
``(N, *tensor shape)``; the real value of a mantissa ``n`` of type ``fixed<W,I>`` is
``n * 2**(I-W)``.  Arrays are int64 while the type is at most 62 bits wide and Python-int object
arrays beyond, so nothing here can overflow.  RTL is checked against this module, never the
other way round.

Each op's semantics is one function registered with ``@impl(OpClass)``; a new op adds one.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from qir.dialect import (
    AddOp,
    CmvmOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    InputOp,
    LeakyReluOp,
    LutOp,
    ModelOp,
    OutputOp,
    PadOp,
    PoolOp,
    QuantizeOp,
    RegOp,
    ReluOp,
    ReshapeOp,
    ScaleOp,
    TransposeOp,
    elem,
    elements_to_numpy,
    int_values,
    shape_of,
)
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


def _matvec(x: np.ndarray, m: np.ndarray, out_t: Fixed) -> np.ndarray:
    """x @ m on integer mantissas, exact.  int64 is safe when the (verified exact) result type
    fits 62 bits: every partial sum lies within the interval bounds of the full sum, because
    every term's interval contains 0."""
    if out_t.width <= 62 and x.dtype != object and m.dtype != object:
        return x.astype(np.int64) @ m.astype(np.int64)
    return x.astype(object) @ m.astype(object)


@impl(DenseOp)
def _dense(op: DenseOp, args):
    w, off, frac, _ = op.folded()  # bias aligned to the products (or w scaled to the bias)
    out_t = elem(op.output.type)
    acc = _matvec(args[0], w, out_t) + np.asarray(off, dtype=object if out_t.width > 62 else np.int64)
    return _regrid(acc, frac, out_t)


@impl(CmvmOp)
def _cmvm(op: CmvmOp, args):
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


# ------------------------------------------------------- spatial, elementwise and shape ops
def _work(x: np.ndarray, out_t: Fixed) -> np.ndarray:
    """The input as int64 when the (exact, verified) result fits 62 bits, else Python ints.
    Intermediate sums of terms whose ranges contain 0 stay within the result's bounds."""
    return x.astype(object) if out_t.width > 62 or x.dtype == object else x.astype(np.int64)


def _consts(values, out_t: Fixed) -> np.ndarray:
    return np.asarray(values, dtype=object if out_t.width > 62 else np.int64)


def _windows(x: np.ndarray, window, strides, dilations, pads, fill) -> np.ndarray:
    """All windows of a (N, spatial..., C) array padded with ``fill``: shape
    (N, out spatial..., C, window...), tap t of dim d at input p*s - pb + t*dl."""
    n = len(window)
    width = [(0, 0)] + [(pads[d], pads[n + d]) for d in range(n)] + [(0, 0)]
    if any(pads):
        xp = np.pad(x, width, constant_values=fill) if x.dtype != object else _pad_object(x, width, fill)
    else:
        xp = x
    span = [dl * (k - 1) + 1 for k, dl in zip(window, dilations)]
    v = np.lib.stride_tricks.sliding_window_view(xp, span, axis=tuple(range(1, n + 1)))
    out_sl = (slice(None),) + tuple(slice(None, None, s) for s in strides) + (slice(None),)
    tap_sl = tuple(slice(None, None, dl) for dl in dilations)
    return v[out_sl + tap_sl]


def _pad_object(x: np.ndarray, width, fill) -> np.ndarray:
    out = np.full(tuple(s + a + b for s, (a, b) in zip(x.shape, width)), fill, dtype=object)
    out[tuple(slice(a, a + s) for s, (a, _) in zip(x.shape, width))] = x
    return out


@impl(ConvOp)
def _conv(op: ConvOp, args):
    out_t = elem(op.output.type)
    w, off, frac = op.folded()  # w: (kernel..., C_in/groups, C_out)
    x = _work(args[0], out_t)
    win = _windows(x, w.shape[:-2], int_values(op.strides), int_values(op.dilations), int_values(op.pads), 0)
    n, out_sp, c_in = x.shape[0], win.shape[1:-1 - (w.ndim - 2)], x.shape[-1]
    g = op.groups.value.data
    ci, co = c_in // g, w.shape[-1] // g
    # (N, P, C, taps...) -> (N, P, taps, G, ci)
    win = win.reshape((n, -1, c_in) + w.shape[:-2])
    win = np.moveaxis(win, 2, -1).reshape(n, win.shape[1], -1, g, ci)
    wk = _consts(w, out_t).reshape(-1, ci, g, co)  # (taps, ci, G, co)
    if x.dtype == object:
        acc = np.einsum("npkgi,kigo->npgo", win, wk.astype(object), optimize=False)
    else:
        acc = np.einsum("npkgi,kigo->npgo", win, wk)
    acc = acc.reshape((n,) + tuple(out_sp) + (g * co,)) + _consts(off, out_t)
    return _regrid(acc, frac, out_t)


@impl(PoolOp)
def _pool(op: PoolOp, args):
    in_t, out_t = elem(op.input.type), elem(op.output.type)
    window = int_values(op.window)
    nw = len(window)
    taps = tuple(range(-nw, 0))
    if op.kind.data == "max":
        win = _windows(args[0], window, int_values(op.strides), (1,) * nw, int_values(op.pads), in_t.min_int)
        return mantissa_array(win.max(axis=taps), out_t.width)
    x = _work(args[0], out_t)
    win = _windows(x, window, int_values(op.strides), (1,) * nw, int_values(op.pads), 0)
    m = _consts(op.multipliers(), out_t)[op.counts()]  # per output position
    acc = win.sum(axis=taps) * m[None, ..., None]
    return _regrid(acc, in_t.frac + op.multiplier_type.spec.frac, out_t)


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
    mants = []
    for (port, t, _), x in zip(input_types(model), inputs):
        mants.append(t.from_real(x, f"{what} for input '{port}'"))
    ev = evaluate(model, mants)
    outs = [t.to_real(y) for (t, _), y in zip(output_types(model), ev.outputs)]
    return outs, ev


def write_trace(ev: Evaluation, directory: str | Path) -> list[Path]:
    """One ``<layer>.npy`` (real values, float64) per source layer, in DIR (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (t, mant) in ev.layer_outputs().items():
        p = d / f"{name.replace('/', '_')}.npy"
        np.save(p, t.to_real(mant))
        written.append(p)
    return written
