"""Plain Keras activation functions (by name) for the Keras/QKeras frontend: the exact ones
(linear, relu, softmax, QKeras's ``binary_tanh``) as steps, the float ones (sigmoid, tanh, ...)
as tables typed by the precision configuration.  Split from keras_quantizers.py."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qir.frontends.keras_steps import Affine, Positive, Relu, Softmax, Step, Table

from qir.errors import QirError
from qir.fixed import Fixed

F32 = np.float32


def _f32(fn):
    def run(v):
        with np.errstate(all="ignore"):
            return fn(np.asarray(v, dtype=F32)).astype(np.float64)
    return run


#: Keras activation functions evaluated by a table (float32 formulas, as Keras computes them).
KERAS_FUNCTIONS = {
    "sigmoid": _f32(lambda x: F32(1) / (F32(1) + np.exp(-x))),
    "tanh": _f32(np.tanh),
    "softsign": _f32(lambda x: x / (F32(1) + np.abs(x))),
    "softplus": _f32(lambda x: np.logaddexp(F32(0), x)),
    "elu": _f32(lambda x: np.where(x > 0, x, np.expm1(x))),
    "selu": _f32(lambda x: F32(1.0507009873554805) * np.where(x > 0, x, F32(1.6732632423543772) * np.expm1(x))),
    "swish": _f32(lambda x: x / (F32(1) + np.exp(-x))),
    "silu": _f32(lambda x: x / (F32(1) + np.exp(-x))),
    "exponential": _f32(np.exp),
}
_EXACT_KERAS = {"linear": [], "relu": [Relu()], "softmax": [Softmax()]}


@dataclass(frozen=True)
class FloatFunction(Step):
    """A Keras float activation computed by a table; its table index type and result type come
    from the precision configuration (resolved by the importer into a ``Table``)."""

    name: str

    def table(self, in_type: Fixed, out_type: Fixed) -> Table:
        return Table(self.name, KERAS_FUNCTIONS[self.name], in_type, out_type)


@dataclass(frozen=True)
class KerasActivation:
    """A plain Keras activation function by name."""

    name: str

    def steps(self) -> list[Step]:
        if self.name == "binary_tanh":  # the QKeras function: 2*rne(hard_sigmoid(x)) - 1, 0 -> -1
            return [Positive(), Affine(2.0, -1.0)]
        if self.name in _EXACT_KERAS:
            return list(_EXACT_KERAS[self.name])
        if self.name in KERAS_FUNCTIONS:
            return [FloatFunction(self.name)]
        from qir.frontends.keras_quantizers import supported_quantizers

        raise QirError(f"Keras activation {self.name!r} is not supported; supported: "
                       f"{', '.join([*_EXACT_KERAS, *KERAS_FUNCTIONS, 'binary_tanh'])} and the QKeras "
                       f"quantizers {', '.join(supported_quantizers())}")
