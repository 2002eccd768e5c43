"""The notebook workflow on the bundled QKeras jet tagger, as a script (each block is a cell).

    .venv/bin/python examples/notebook/workflow.py [OUTDIR] [--fast]

Convert, predict on float data, look at every layer, profile the precision, compare, compile,
simulate.  ``--fast`` builds with multipliers (``qir-lower-dense{style=mac}``) instead of adder
graphs and simulates 20 vectors; tests/test_examples.py runs it that way.
"""
import sys
from pathlib import Path

import numpy as np

import qir

root = Path(__file__).resolve().parents[2]
model_dir = root / "tests" / "data" / "qkeras_3layer"  # the repository's one copy of the jet tagger
here = root / "examples" / "jet_tagger"
args = [a for a in sys.argv[1:] if not a.startswith("--")]
fast = "--fast" in sys.argv
out = Path(args[0]) if args else Path("out/notebook")

# %% Convert: the model has no input quantizer, so say the input type; strip the final softmax.
design = qir.convert(model_dir / "qkeras_3layer.json", input_type="fixed<16,6>", softmax="none")
print(design)
for row in qir.layer_summary(design):
    print(f"  {row['layer']:<8} result {row['result']:<12} weight {row.get('weight', '-')}")

# %% Predict on real float data (not on the input grid): rounded to nearest (ties to even) and
# saturated to fixed<16,6>; the counts say how far the data was from the grid.
x_grid = np.load(here / "x.npy")[:200]
x = x_grid + np.random.default_rng(0).uniform(-2e-4, 2e-4, size=x_grid.shape)  # < half a step (2^-11)
y = design.predict(x)
print(design.last_quantization.summary("x"))
print("argmax agreement with the on-grid data:",
      np.mean(np.argmax(y, 1) == np.argmax(design.predict(x_grid), 1)))

# %% Every layer's output
for name, v in design.trace(x).items():
    print(f"  {name:<8} {v.shape}  range [{v.min():.4g}, {v.max():.4g}]")

# %% Compare with a source, layer by layer.  With Keras installed, pass the live model:
#    design.compare(keras_model, x).  Here: the trace of the on-grid data as a {layer: array}
#    reference, which the perturbed float data reproduces exactly after input quantization.
print(design.compare(design.trace(x_grid), x))

# %% Profile: value ranges against each layer's fixed-point type, overflow counts, plots
prof = design.profile(x, out / "profile", formats=("png",))
print(prof)

# %% Build and simulate
pipeline = "qir-infer-widths,qir-lower-dense{style=mac},qir-pipeline" if fast else None
report = design.compile(out / "rtl", pipeline=pipeline)
print(f"compiled: top {report['top']}, latency {report['latency_cycles']} cycles")
n = 20 if fast else 200
y_rtl = design.simulate(x[:n], simulator="icarus" if fast else "verilator")
assert np.array_equal(y_rtl, y[:n])
print(f"RTL = reference on {n} vectors")
print(design.report()["estimate"]["luts_estimate"], "LUTs (estimate)")
