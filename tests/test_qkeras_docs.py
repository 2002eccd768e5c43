"""The QKeras documentation's models (tests/qkeras_doc_models.py) through the real frontend and
``--io stream``: quantized_ulaw kernels (examples/example_cifar10_po2.py), reduced-size replicas
compiled and simulated bit-exact (the full-size runs are bench/heldout.py's ``qk_*`` variants)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from qir.frontends.keras import import_keras
from qir.frontends.keras_quantizers import resolve_activation, resolve_quantizer
from qkeras_doc_models import DOC_MODELS
from sim_checks import sim_ok

from qir.dialect import DenseOp, elements_to_numpy
from qir.errors import QirError
from qir.fixed import Fixed
from qir.flow import compile_model
from qir.ir import get_model, layer_of


def test_ulaw_kernel_values():
    """docs/quantizer_semantics.md §1.5 by hand: ulaw(4,0,1) maps -1, -.5, -.2, 0, .2, .5, 1 through
    hard_sigmoid*8 -> 0, 2, 3.2->3, 4, 4.8->5, 6, 8 -> r = -1, -.5, -.25, 0, .25, .5, 1 -> sign(r)
    ln(1+255|r|)/ln 256, clipped to [-7/8, 7/8]; the values are float32 (what QKeras multiplies by)."""
    q = resolve_quantizer("quantized_ulaw(4,0,1)").for_kernel()
    got = q.quantize_weights(np.array([-1, -.5, -.2, 0, .2, .5, 1], dtype=np.float32))
    mid = np.log(1 + 255 * .25) / np.log(256)
    assert np.allclose(got, [-.875, -.875, -mid, 0, mid, .875, .875], rtol=0, atol=1e-6)
    assert np.all(got.astype(np.float32) == got)
    # integer=1 doubles the range; symmetric=0 allows -1 * 2^integer
    q2 = resolve_quantizer("quantized_ulaw(4,1,0)")
    assert q2.quantize_weights(np.array([-4.0, 4.0], dtype=np.float32)).tolist() == [-2.0, 1.75]


def test_ulaw_activation_rejected_with_fix():
    with pytest.raises(QirError, match="not supported as an activation.*fixed-point grid.*kernel/bias"):
        resolve_activation("quantized_ulaw(4,0,1)").steps()


def test_cifar10_po2_ulaw_dense_imports_exact(tmp_path):
    """The example's final QDense (kernel quantized_ulaw(4,0,1)) imports with its float32 codebook
    values as exact constants, no option needed."""
    write, _, _ = DOC_MODELS["cifar10_po2"]
    js = write(tmp_path, scale=32, hw=24)
    net = import_keras(js, input_type=Fixed(8, 0, False), softmax="none")
    op = next(o for o in get_model(net).block.ops if isinstance(o, DenseOp) and layer_of(o) == "dense")
    w = np.unique(np.abs(op.weight_type.spec.to_real(elements_to_numpy(op.weights))))
    mid = np.float32(np.log(np.float32(64.75)) / np.log(np.float32(256)))
    assert set(w.tolist()) <= {0.0, float(mid), 0.875} and float(mid) in w.tolist()


@pytest.mark.parametrize("spec", ["quantized_relu_po2(4,4)", "quantized_po2(4)", "quantized_relu_po2(3)"])
def test_po2_activation_on_wide_input(spec):
    """examples/example_mnist_po2.py puts quantized_relu_po2(4,4) on a conv accumulator (fixed<19,4>
    there): too wide for a table, so it becomes a qir.steps compare chain, equal to the QKeras
    formula on every code tried (all thresholds +-1, the ends, random codes)."""
    from test_frontend_keras_layers import run_steps

    in_t = Fixed(22, 5)
    q = resolve_activation(spec)
    steps = q.steps()
    rng = np.random.default_rng(0)
    codes = rng.integers(in_t.min_int, in_t.max_int + 1, 3000)
    # around each power-of-two midpoint 2^(k+1/2), where the exponent changes
    mids = np.round(np.ldexp(np.sqrt(2.0), np.arange(-9, 6)) * 2.0 ** in_t.frac).astype(np.int64)
    near = (mids[:, None] + np.arange(-2, 3)[None, :]).ravel()
    codes = np.concatenate([codes, near, -near, [in_t.min_int, in_t.max_int, 0, 1, -1]])
    codes = codes[(codes >= in_t.min_int) & (codes <= in_t.max_int)]
    x = in_t.to_real(codes)[None, :]
    got = run_steps(steps, x, in_t)[0]
    want = q.quantize_weights(x[0].astype(np.float32))
    assert np.array_equal(got, want)


#: name -> (compile options, reduced-size writer kwargs)
SMALL = {
    "cifar10_po2": ({"input_type": Fixed(8, 0, False)}, {"scale": 32, "hw": 24}),
    "mnist_bn": ({"input_type": Fixed(8, 0, False), "precision": Fixed(16, 6)}, {"scale": 16, "hw": 28}),
    "mnist_po2": ({"input_type": Fixed(8, 0, False)}, {"scale": 8, "hw": 12}),
    "readme_cnn": ({"input_type": Fixed(9, 1)}, {"scale": 6, "hw": 10}),
    "qenergy784": ({"input_type": Fixed(9, 1)}, {"scale": 10, "n_in": 64}),
}


@pytest.mark.sim
@pytest.mark.parametrize("name", sorted(SMALL))
def test_doc_models_stream_bit_exact(tmp_path, name):
    """Reduced replicas of the documented models, ``--io stream`` with a LUT budget that forces
    folding, bit-exact in Icarus (full rate and random stalls)."""
    opts, kw = SMALL[name]
    write, shape, _ = DOC_MODELS[name]
    js = write(tmp_path / "m", **kw)
    out = tmp_path / "out"
    compile_model(js, out, io="stream", softmax="none", max_luts=20000, **opts)
    n_in = kw.get("n_in")
    shp = (n_in,) if n_in else (kw["hw"], kw["hw"], shape[-1])
    x = np.random.default_rng(1).uniform(-1, 1, size=(4, *shp))
    sim_ok(out, x, tmp_path, "icarus", "--quantize-inputs", timeout=900)


@pytest.mark.sim
def test_steps_parallel_bit_exact(tmp_path):
    """qir.steps (relu_po2 on the conv accumulators of example_mnist_po2) in the parallel
    design: the compare chains bit-exact in Icarus, the lowered IR keeps them."""
    js = DOC_MODELS["mnist_po2"][0](tmp_path / "m", scale=8, hw=12)
    out = tmp_path / "out"
    compile_model(js, out, io="parallel", softmax="none", input_type=Fixed(8, 0, False))
    assert (out / "lowered.mlir").read_text().count("qir.steps") == 2
    sim_ok(out, np.random.default_rng(4).uniform(0, 1, size=(8, 12, 12, 1)), tmp_path, "icarus", "--quantize-inputs",
           timeout=900)


def test_worker_converted_pieces_leave_no_unused_elaboratable(tmp_path):
    """Regression: a parallel design big enough for worker processes (rtl/separate.py) converts
    its pieces in forked workers; the parent's copies of the pieces' submodules (here the input
    table's ``Memory`` of rtl/lut.py) are never elaborated there, and Amaranth used to warn
    ``UnusedElaboratable ... created but never used`` at the end of every such compile."""
    js = DOC_MODELS["mnist_po2"][0](tmp_path / "m", scale=8, hw=12)
    env = {**__import__("os").environ, "QIR_RTL_JOBS": "2"}
    r = subprocess.run([sys.executable, "-m", "qir.cli", "compile", str(js), "-o", str(tmp_path / "out"),
                        "--softmax", "none", "--input-type", "ufixed<8,0>", "--quiet"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "UnusedElaboratable" not in r.stderr and "never used" not in r.stderr
    assert "qir.lut" in (tmp_path / "out" / "lowered.mlir").read_text()
