"""``qir-lower-conv``: ``qir.conv`` and average ``qir.pool`` -> ``qir.cmvm`` on the flattened tensor.

Both ops are linear maps of the whole input tensor plus a constant, so each becomes

    %flat = qir.reshape %x          (L x C -> L*C, pure wiring)
    %y    = qir.cmvm %flat          (one constant matrix (in elements, out elements))
    %out  = qir.reshape %y          (back to (out spatial..., C_out))

The matrix holds, for every output position p and output channel o, the kernel taps that meet
the input there: entry [(p*s - pb + t*d, g*Cg + i), (p, o)] = W[t, i, o] (g the group of o), on
the result grid (bias aligned as ``ConvOp.folded`` does); taps in the zero padding are simply
missing, so border positions see fewer terms.  Average pooling puts the multiplier for the
window's element count on every valid tap of its channel.  The values are exactly the op's
(the result type is kept), and ``qir-lower-cmvm`` then turns the matrix into one shared adder
graph per layer: common subexpressions are shared across the output channels of a position
and across positions.

An element-wise ``qir.quantize`` / ``qir.relu`` chain that is the conv's only user is moved in
front of the closing reshape (they commute with it), so ``qir-lower-cmvm`` can fuse it into the
adder graph's epilogue as it does for dense layers.

Scaling: the matrix has (input elements) x (output elements) entries of which only
taps x C_in/groups per output are non-zero; the IR stores it densely, which is fine for the
small fully-unrolled nets this architecture targets (KERAS_conv1d_small: 40 x 30 entries per
layer) but grows quadratically with the feature-map size.

``style``: the ``qir.cmvm`` style, or ``auto`` (``po2``/``ternary``/``cmvm`` from the weights,
as ``qir-lower-dense{style=auto}``); a ``style`` attribute on the op (from the precision
configuration) takes precedence.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, TensorType, i32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qir.dialect import (
    CMVM_STYLES,
    CmvmOp,
    ConvOp,
    PoolOp,
    QuantizeOp,
    ReluOp,
    ReshapeOp,
    elem,
    int_elements,
    int_values,
    shape_of,
    window_taps,
)
from qir.errors import QirError
from qir.ir import layer_of, reuse_of, set_layer, style_of

#: Largest flattened matrix (input elements x output elements) the pass builds; beyond it the
#: dense IR constant itself would take gigabytes, so the layer is rejected with a named error.
MAX_MATRIX_ENTRIES = 1 << 24


def _check_size(op: Operation, n_in: int, n_out: int) -> None:
    if n_in * n_out > MAX_MATRIX_ENTRIES:
        where = f"layer '{layer_of(op)}'" if layer_of(op) else f"'{op.name}'"
        raise QirError(f"qir-lower-conv: {where} would become a {n_in} x {n_out} constant matrix "
                       f"(more than {MAX_MATRIX_ENTRIES} entries); the fully unrolled architecture "
                       "supports small feature maps only")


def conv_matrix(op: ConvOp) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) of ``op`` on its result grid: out_flat = in_flat @ matrix + offset."""
    in_shape, out_shape = shape_of(op.input.type), shape_of(op.output.type)
    _check_size(op, prod(in_shape), prod(out_shape))
    in_sp, c_in = in_shape[:-1], in_shape[-1]
    out_sp, c_out = out_shape[:-1], out_shape[-1]
    w, off, frac = op.folded()
    scale = 1 << (elem(op.output.type).frac - frac)
    groups = op.groups.value.data
    cg, og = c_in // groups, c_out // groups
    m = np.zeros((prod(in_shape), prod(out_shape)), dtype=object)
    # W[t, i, o] feeds input channel (o // og) * cg + i
    ch = (np.arange(c_out) // og)[None, :] * cg + np.arange(cg)[:, None]  # (cg, c_out)
    cols = np.broadcast_to(np.arange(c_out)[None, :], (cg, c_out))
    wo = w.astype(object) * scale
    for p, t, src in window_taps(op.geometry(), int_values(op.strides), int_values(op.dilations),
                           int_values(op.pads), out_sp):
        row0 = int(np.ravel_multi_index(src, in_sp)) * c_in
        col0 = int(np.ravel_multi_index(p, out_sp)) * c_out if out_sp else 0
        m[row0 + ch, col0 + cols] += wo[t]
    offset = np.tile(np.asarray(off, dtype=object) * scale, prod(out_sp))
    return m, offset


def avg_pool_matrix(op: PoolOp) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) of an average ``op`` on its result grid."""
    in_shape, out_shape = shape_of(op.input.type), shape_of(op.output.type)
    _check_size(op, prod(in_shape), prod(out_shape))
    in_sp, c = in_shape[:-1], in_shape[-1]
    out_sp = out_shape[:-1]
    frac = elem(op.input.type).frac + op.multiplier_type.spec.frac
    scale = 1 << (elem(op.output.type).frac - frac)
    mult, counts = op.multipliers(), op.counts()
    window = int_values(op.window)
    m = np.zeros((prod(in_shape), prod(out_shape)), dtype=object)
    chans = np.arange(c)
    for p, _, src in window_taps(op.geometry(), int_values(op.strides), (1,) * len(window),
                           int_values(op.pads), out_sp):
        row0 = int(np.ravel_multi_index(src, in_sp)) * c
        col0 = int(np.ravel_multi_index(p, out_sp)) * c
        m[row0 + chans, col0 + chans] += int(mult[int(counts[p])]) * scale
    return m, np.zeros(prod(out_shape), dtype=object)


def _auto_style(matrix) -> str:
    from qir.lowering.lower_cmvm import auto_style

    return auto_style(matrix)


def _single_user(value: SSAValue) -> Operation | None:
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


def _flat(t: TensorType) -> TensorType:
    return TensorType(t.element_type, [prod(shape_of(t))])


@dataclass(frozen=True)
class LowerConv(ModulePass):
    name = "qir-lower-conv"
    style: str = "auto"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        choices = CMVM_STYLES + ("auto",)
        if self.style not in choices:
            raise QirError(f"qir-lower-conv: unknown style {self.style!r}; use one of {', '.join(choices)}")
        for o in list(op.walk()):
            if isinstance(o, ConvOp):
                self._lower(o, *conv_matrix(o))
            elif isinstance(o, PoolOp) and o.kind.data == "avg":
                self._lower(o, *avg_pool_matrix(o))

    def _lower(self, op: ConvOp | PoolOp, matrix: np.ndarray, offset: np.ndarray) -> None:
        layer = layer_of(op)
        in_t, out_t = elem(op.input.type), elem(op.output.type)
        new: list[Operation] = []
        flat_in = ReshapeOp.build(operands=[op.input], result_types=[_flat(op.input.type)])
        new.append(set_layer(flat_in, layer))
        style = style_of(op) or self.style  # a user's per-layer hint (precision configuration) first
        if style not in CMVM_STYLES + ("auto",):
            raise QirError(f"qir-lower-conv: layer {layer!r} has style {style!r}; use one of "
                           f"{', '.join(CMVM_STYLES + ('auto',))}")
        if style == "auto":
            style = _auto_style(matrix)
        cm = CmvmOp.build(
            operands=[flat_in.output], result_types=[_flat(op.output.type)],
            properties={"matrix": int_elements(matrix), "offset": int_elements(offset),
                        "shift": IntegerAttr(out_t.frac - in_t.frac, i32), "style": StringAttr(style)})
        if reuse_of(op) > 1:  # folded (issue 12): the same product over R cycles
            from qir.lowering.lower_dense import folded

            cm = folded(cm, reuse_of(op), op.attributes["impl"].data if "impl" in op.attributes else None)
        new.append(set_layer(cm, layer))
        # move a following element-wise relu/quantize chain before the closing reshape
        value, last, moved = cm.output, op.output, []
        user = _single_user(op.output)
        while isinstance(user, (ReluOp, QuantizeOp)):
            flat_t = _flat(user.output.type)
            if isinstance(user, ReluOp):
                e = ReluOp.build(operands=[value], result_types=[flat_t])
            else:
                e = QuantizeOp.build(operands=[value], result_types=[flat_t],
                                     properties={"rounding": user.rounding, "overflow": user.overflow})
            new.append(set_layer(e, layer_of(user)))
            moved.append(user)
            value, last = e.results[0], user.results[0]
            user = _single_user(user.results[0])
        back = ReshapeOp.build(operands=[value], result_types=[last.type])
        new.append(set_layer(back, layer_of(moved[-1]) if moved else layer))
        Rewriter.insert_op(new, InsertPoint.before(op))
        last.replace_all_uses_with(back.output)
        for e in reversed(moved):
            Rewriter.erase_op(e)
        Rewriter.erase_op(op)
