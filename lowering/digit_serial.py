"""A folded ``qir.mvu`` with ``impl = "digitserial"`` -> ``qir.digitserial`` (issue #12; called by
``qir-lower-cmvm``): the layer's constant adder graph searched once on a digit of every input
(input range [0, 2^k - 1], ``qir.digitserial.digit_shape``: D = ceil(n / k) <= R digits of
k = ceil(n / R) bits), so every adder is k + weight bits wide; the layer's offset (with the
offset-binary correction ``qir.digitserial.base_offset``) is added once by the accumulator.
"""
from __future__ import annotations

import numpy as np
from qir.lowering.adder_graph import build


def lower_mvu(mv, depth_slack: int = 1, target: str = "xilinx", digits: int | None = None):
    """A ``qir.mvu`` with ``impl = "digitserial"`` -> ``qir.digitserial`` (replaces it);
    ``digits`` (2 .. min(R, input bits)) overrides ``digit_shape``'s D (tests)."""
    from xdsl.rewriter import Rewriter

    from qir.dialect import DigitSerialOp, elem, elements_to_numpy, shape_of
    from qir.digitserial import digit_shape
    from qir.errors import QirError
    from qir.ir import layer_of
    from qir.progress import note

    in_t = elem(mv.input.type)
    (n_in,) = shape_of(mv.input.type)
    m = elements_to_numpy(mv.matrix)
    if in_t.width < 2:
        raise QirError(f"layer {layer_of(mv) or '?'}: a digit-serial fold needs an input of 2 or more bits, "
                       f"the input has {in_t.width}; use impl rom or muxgraph")
    D, k = digit_shape(in_t.width, digits or mv.R)
    note(f"digit-serial adder graph search: layer {layer_of(mv) or '?'} ({m.shape[0]}x{m.shape[1]}, "
         f"{D} digits of {k} bits)")
    g = build(m, np.zeros(m.shape[1], dtype=object), [0] * n_in, [(1 << k) - 1] * n_in,
              depth_slack=depth_slack, target=target)
    op = DigitSerialOp.of(mv.input, mv.output.type, g, elements_to_numpy(mv.offset), mv.shift, mv.style, mv.reuse,
                          D, {key: v for key, v in mv.attributes.items() if key == "layer"})
    Rewriter.replace_op(mv, op)
    return op
