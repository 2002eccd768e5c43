"""Layer-level ops: ``qir.model``, ``qir.input``, ``qir.output``, ``qir.dense``, ``qir.relu``,
``qir.quantize``."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, StringAttr, SymbolNameConstraint, TensorType
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import HasParent, IsolatedFromAbove, IsTerminator, NoTerminator, Pure, SymbolOpInterface
from xdsl.utils.exceptions import VerifyException

from qir.dialect.types import (
    Elementwise,
    ExactResult,
    FixedType,
    LayerStage,
    UFixedType,
    _check_bounds,
    _check_in_type,
    _check_reuse,
    _layer,
    dense_bounds,
    elem,
    elements_to_numpy,
    fold_affine,
    shape_of,
    tree_levels,
)
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed


# ------------------------------------------------------------------------- layer-level ops
@irdl_op_definition
class ModelOp(IRDLOperation):
    name = "qir.model"
    sym_name = prop_def(SymbolNameConstraint())
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), SymbolOpInterface(), NoTerminator())
    assembly_format = "$sym_name attr-dict-with-keyword $body"

    def __init__(self, name: str, body):
        super().__init__(properties={"sym_name": StringAttr(name)}, regions=[body])

    @property
    def block(self):
        return self.body.block

    def inputs(self) -> list[InputOp]:
        return [op for op in self.block.ops if isinstance(op, InputOp)]

    def output(self) -> OutputOp:
        last = self.block.last_op
        assert isinstance(last, OutputOp)
        return last

    def verify_(self) -> None:
        last = self.body.block.last_op
        if not isinstance(last, OutputOp):
            raise VerifyException(f"qir.model @{self.sym_name.data} must end with qir.output")
        if not self.inputs():
            raise VerifyException(f"qir.model @{self.sym_name.data} has no qir.input")


@irdl_op_definition
class InputOp(IRDLOperation):
    name = "qir.input"
    port = prop_def(StringAttr)
    result = result_def(TensorType)
    traits = traits_def(HasParent(ModelOp))
    assembly_format = "$port attr-dict `:` type($result)"

    def __init__(self, port: str, t: TensorType, layer: str | None = None):
        attrs = {"layer": StringAttr(layer)} if layer else {}
        super().__init__(properties={"port": StringAttr(port)}, result_types=[t], attributes=attrs)

    def verify_(self) -> None:
        elem(self.result.type, "qir.input result")


@irdl_op_definition
class OutputOp(IRDLOperation):
    name = "qir.output"
    outs = var_operand_def(TensorType)
    traits = traits_def(IsTerminator(), HasParent(ModelOp))
    assembly_format = "$outs attr-dict `:` type($outs)"

    def __init__(self, *values):
        super().__init__(operands=[list(values)])

    def verify_(self) -> None:
        if not self.outs:
            raise VerifyException("qir.output needs at least one value")
        for v in self.outs:
            elem(v.type, "qir.output operand")


class WeightedLayerOp(ExactResult, IRDLOperation):
    """What the layer ops with weights declare alike (``qir.dense``, ``qir.conv``): ``weights``
    (mantissas) of ``weight_type``, an optional ``bias`` (one per output channel) of
    ``bias_type``; exact result type, a layer stage of its own."""

    input = operand_def(TensorType)
    weights = prop_def(DenseIntOrFPElementsAttr)
    weight_type = prop_def(base(FixedType) | base(UFixedType))
    bias = opt_prop_def(DenseIntOrFPElementsAttr)
    bias_type = opt_prop_def(base(FixedType) | base(UFixedType))
    output = result_def(TensorType)
    traits = traits_def(LayerStage(), Pure())

    def folded(self):
        """(weights, offset, frac): the weights and the bias on one integer grid whose products
        have ``frac`` fractional bits, aligned without loss (``fold_affine``)."""
        b = None if self.bias is None else elements_to_numpy(self.bias)
        bt = None if self.bias_type is None else self.bias_type.spec
        return fold_affine(elem(self.input.type).frac, elements_to_numpy(self.weights), self.weight_type.spec, b, bt)

    def levels(self) -> int:
        """Adder levels when not cut inside (``qir-pipeline{max-depth=N}``)."""
        return tree_levels(int(np.prod(shape_of(self.operands[0].type))))

    def _check_weights_bias(self, where: str, n_out: int) -> None:
        """Weights in their type; bias and its type together, ``n_out`` of them, in the type."""
        if (self.bias is None) != (self.bias_type is None):
            raise VerifyException(f"{where}: bias and its type go together")
        _check_in_type(elements_to_numpy(self.weights), self.weight_type.spec, f"{where} weights")
        if self.bias is not None:
            if tuple(self.bias.get_shape()) != (n_out,):
                raise VerifyException(f"{where}: bias shape {tuple(self.bias.get_shape())} != ({n_out},)")
            _check_in_type(elements_to_numpy(self.bias), self.bias_type.spec, f"{where} bias")


@irdl_op_definition
class DenseOp(WeightedLayerOp):
    """y = x @ (W * 2^-fw) + (b * 2^-fb), exact (the result type must hold every result);
    ``folded()``: the op as one integer matrix-vector product plus offset."""

    name = "qir.dense"
    assembly_format = (
        "$input `weights` `(` $weights `:` $weight_type `)` "
        "(`bias` `(` $bias^ `:` $bias_type `)`)? attr-dict `:` type($input) `->` type($output)"
    )

    def exact_bounds(self):
        """(lo, hi, frac) over every output, x anywhere in the input type's range."""
        w, off, frac = self.folded()
        lo, hi = dense_bounds(elem(self.input.type), w, off)
        return int(min(lo, default=0)), int(max(hi, default=0)), frac

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")  # a fixed-point input
        out_t = elem(self.output.type, f"{where} result")
        (n_in,), (n_out,) = shape_of(self.input.type), shape_of(self.output.type)
        wshape = tuple(self.weights.get_shape())
        if wshape != (n_in, n_out):
            raise VerifyException(f"{where}: weights shape {wshape} != ({n_in}, {n_out})")
        self._check_weights_bias(where, n_out)
        _check_reuse(self)
        _check_bounds(where, out_t, *self.exact_bounds())


@irdl_op_definition
class ReluOp(IRDLOperation):
    name = "qir.relu"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    output = result_def(T)
    traits = traits_def(Elementwise(), Pure())
    assembly_format = "$input attr-dict `:` type($input)"

    def exact_spec(self) -> Fixed:
        """The input's element type (max(x, 0) fits x)."""
        return elem(self.input.type)

    def verify_(self) -> None:
        elem(self.input.type, f"{_layer(self)} input")


@irdl_op_definition
class QuantizeOp(IRDLOperation):
    """Re-grid to the result type: round dropped LSBs with ``rounding``, then ``overflow``."""

    name = "qir.quantize"
    input = operand_def(TensorType)
    rounding = prop_def(StringAttr)
    overflow = prop_def(StringAttr)
    output = result_def(TensorType)
    traits = traits_def(Elementwise(), Pure())
    assembly_format = (
        "$input `rounding` $rounding `overflow` $overflow attr-dict `:` type($input) `->` type($output)"
    )

    def __init__(self, value, t: TensorType, rounding: str, overflow: str, layer: str | None = None):
        attrs = {"layer": StringAttr(layer)} if layer else {}
        super().__init__(
            operands=[value], result_types=[t], attributes=attrs,
            properties={"rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        where = _layer(self)
        elem(self.input.type, f"{where} input")
        elem(self.output.type, f"{where} result")
        if shape_of(self.input.type) != shape_of(self.output.type):
            raise VerifyException(f"{where}: qir.quantize must keep the shape")
        if self.rounding.data not in ROUNDING_MODES:
            raise VerifyException(
                f"{where}: rounding {self.rounding.data!r} is not one of {', '.join(ROUNDING_MODES)}"
            )
        if self.overflow.data not in OVERFLOW_MODES:
            raise VerifyException(
                f"{where}: overflow {self.overflow.data!r} is not one of {', '.join(OVERFLOW_MODES)}"
            )


#: the ops of this module, registered with the dialect (qir.dialect.QIR)
OPS = (ModelOp, InputOp, OutputOp, DenseOp, ReluOp, QuantizeOp)
