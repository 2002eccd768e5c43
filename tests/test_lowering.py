"""Passes preserve semantics: the interpreter gives identical mantissas before and after the
default pipeline, on corner inputs (every input at its min or max) and random ones."""
import numpy as np
import pytest
from qir.lowering import DEFAULT_PIPELINE
from xdsl.dialects.builtin import StringAttr

from qir.dialect import (
    DenseOp,
    InputOp,
    OutputOp,
    QuantizeOp,
    ReluOp,
    dense_bounds,
    fixed_type,
    int_elements,
    tensor_of,
)
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed
from qir.flow import run_passes
from qir.interp import evaluate, output_types
from qir.ir import get_model, new_model, parse_module, print_module


def random_mlp(rng, sizes, in_t, wbits, rounding="rnd_conv", ovf="sat", act_t=Fixed(6, 0, False)):
    module, model, block = new_model("mlp")
    x = InputOp("x", tensor_of(in_t, [sizes[0]]))
    block.add_op(x)
    v, t = x.result, in_t
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        wt = Fixed(wbits, int(rng.integers(-1, 3)))
        bt = Fixed(wbits + 2, int(rng.integers(-2, 3)))
        w = rng.integers(wt.min_int, wt.max_int + 1, size=(n_in, n_out))
        w[rng.random(w.shape) < 0.2] = 0
        b = rng.integers(bt.min_int, bt.max_int + 1, size=n_out)
        pf = t.frac + wt.frac
        frac = max(pf, bt.frac)
        wo = w.astype(object) * (1 << (frac - pf))
        bo = b.astype(object) * (1 << (frac - bt.frac))
        lo, hi = dense_bounds(t, wo, bo)
        res_t = Fixed.for_range(int(lo.min()), int(hi.max()), frac)
        d = DenseOp.build(operands=[v], result_types=[tensor_of(res_t, [n_out])],
                          properties={"weights": int_elements(w), "weight_type": fixed_type(wt),
                                      "bias": int_elements(b), "bias_type": fixed_type(bt)},
                          attributes={"layer": StringAttr(f"fc{k}")})
        block.add_op(d)
        v, t = d.output, res_t
        if k < len(sizes) - 2:
            r = ReluOp.build(operands=[v], result_types=[v.type], attributes={"layer": StringAttr(f"act{k}")})
            q = QuantizeOp(r.output, tensor_of(act_t, [n_out]), rounding, ovf, layer=f"act{k}")
            block.add_ops([r, q])
            v, t = q.output, act_t
    block.add_op(OutputOp(v))
    module.verify()
    return module


def corner_inputs(rng, t: Fixed, n_in: int, n_random=200):
    corners = np.array([[t.min_int] * n_in, [t.max_int] * n_in, [0] * n_in,
                        [t.min_int, t.max_int] * (n_in // 2) + [t.min_int] * (n_in % 2)])
    rand = rng.integers(t.min_int, t.max_int + 1, size=(n_random, n_in))
    return np.concatenate([corners, rand])


@pytest.mark.parametrize("seed", range(6))
def test_default_pipeline_preserves_semantics(seed):
    rng = np.random.default_rng(seed)
    in_t = [Fixed(16, 6), Fixed(8, 0, False), Fixed(4, 4), Fixed(12, -2)][seed % 4]
    rounding = ROUNDING_MODES[seed % len(ROUNDING_MODES)]
    ovf = OVERFLOW_MODES[seed % len(OVERFLOW_MODES)]
    sizes = [int(rng.integers(2, 12)) for _ in range(4)]
    net = random_mlp(rng, sizes, in_t, int(rng.integers(2, 9)), rounding, ovf)
    x = corner_inputs(rng, in_t, sizes[0])
    (ref_t, _), = output_types(get_model(net))
    ref = ref_t.to_real(evaluate(net, [x]).outputs[0])
    lowered = parse_module(print_module(net))  # through text, as qir-opt would see it
    run_passes(lowered, DEFAULT_PIPELINE)
    ops = [op.name for op in get_model(lowered).block.ops]
    # the default lowers every dense layer to an adder graph and pipelines by adder depth
    assert "qir.dense" not in ops and ops.count("qir.addergraph") == 3 and ops.count("qir.reg") >= 1
    (got_t, _), = output_types(get_model(lowered))
    got = got_t.to_real(evaluate(lowered, [x]).outputs[0])
    assert np.array_equal(ref, got)
