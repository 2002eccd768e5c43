"""Numerical profiling: each layer's weight and activation values against its fixed-point type.

What hls4ml's numerical profiling shows, on qir's own types: for every source layer

- **weights** (``qir.dense``/``qir.conv`` weights, ``qir.scale`` scales) and biases: their real
  values against the range and step of their type; ``at_limit`` counts values equal to the type's
  minimum or maximum (a float weight saturated by the precision configuration ends there);
- **activations**: the exact value that enters the layer's ``qir.quantize`` (its result cast, or
  a quantizer) against the quantize's output type, on the profiled inputs: ``overflow`` counts
  values outside the type's range (saturated or wrapped, as the op's overflow mode says),
  ``underflow`` counts non-zero values that became zero; a layer without a quantize (exact
  layers) is its output against its own type (no overflow possible);
- the **input**: how many values ``x`` had off the input grid (rounded, nearest even) and out of
  range (saturated).

``profile()`` writes one plot per layer (``<layer>.png``/``.svg``: histograms of log2|value| of
weights and activations, with the type's representable band [step, max] shaded) and the table as
``profile.csv``, ``profile.json`` and ``profile.txt``.  Without matplotlib only the table is
written (and ``Profile.plots`` is empty).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qir.errors import QirError
from qir.fixed import Fixed

PLOT_FORMATS = ("png", "svg")


@dataclass
class ValueStats:
    """Real values of one kind (weights, biases, activations) of one layer against a type."""

    type: str
    count: int
    min: float
    max: float
    type_min: float
    type_max: float
    step: float
    overflow: int = 0  #: outside the type's range (activations: saturated/wrapped by the quantize)
    underflow: int = 0  #: non-zero values that became zero
    at_limit: int = 0  #: values equal to the type's min or max
    mode: str = ""  #: the quantize's rounding/overflow modes


@dataclass
class LayerProfile:
    layer: str
    activation: ValueStats | None = None
    weight: ValueStats | None = None
    bias: ValueStats | None = None
    note: str = ""
    samples: dict = field(default_factory=dict, repr=False)  # kind -> real values (for plots)


@dataclass
class Profile:
    """The profiling result: one :class:`LayerProfile` per layer, the plots and table files."""

    model: str
    inputs: int
    layers: list[LayerProfile]
    plots: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    note: str = ""

    def rows(self) -> list[dict]:
        """The table: one row per layer and kind (activation, weight, bias)."""
        out = []
        for lp in self.layers:
            for kind in ("activation", "weight", "bias"):
                s = getattr(lp, kind)
                if s is not None:
                    out.append({"layer": lp.layer, "kind": kind, **asdict(s)})
        return out

    def __str__(self) -> str:
        head = (f"{'layer':<20} {'kind':<10} {'type':<14} {'min':>11} {'max':>11} {'type range':>23} "
                f"{'step':>9} {'overflow':>8} {'underflow':>9} {'at limit':>8}")
        lines = [f"qir profile: @{self.model}, {self.inputs} input vectors", head, "-" * len(head)]
        for r in self.rows():
            rng = f"[{r['type_min']:.6g}, {r['type_max']:.6g}]"
            lines.append(f"{r['layer']:<20} {r['kind']:<10} {r['type']:<14} {r['min']:>11.6g} {r['max']:>11.6g} "
                         f"{rng:>23} {r['step']:>9.3g} {r['overflow']:>8} {r['underflow']:>9} {r['at_limit']:>8}")
        total = sum(r["overflow"] for r in self.rows() if r["kind"] == "activation")
        lines.append(f"total activation overflows: {total}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    __repr__ = __str__


def _stats(values: np.ndarray, t: Fixed, **extra) -> ValueStats:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    lo, hi = t.min_int * t.lsb, t.max_int * t.lsb
    return ValueStats(str(t), int(v.size), float(v.min()) if v.size else 0.0, float(v.max()) if v.size else 0.0,
                      lo, hi, t.lsb, at_limit=int(np.count_nonzero((v == lo) | (v == hi))), **extra)


def _constants(op) -> list[tuple[str, np.ndarray, Fixed]]:
    """(kind, real values, type) of an op's weight-like and bias constants."""
    from qir.dialect import elem, elements_to_numpy

    out = []
    for prop, kind in (("weights", "weight"), ("scale", "weight"), ("bias", "bias")):
        attr = op.properties.get(prop)
        tattr = op.properties.get({"weights": "weight_type", "scale": "scale_type", "bias": "bias_type"}[prop])
        if attr is None or tattr is None:
            continue
        t = elem(tattr)
        out.append((kind, t.to_real(elements_to_numpy(attr).astype(np.float64)), t))
    return out


def analyse(design, x, *, quantize: bool = True) -> Profile:
    """The per-layer statistics of ``design`` (a ``qir.api.Design``) on inputs ``x``."""
    from qir.dialect import InputOp, QuantizeOp, elem
    from qir.interp import evaluate
    from qir.ir import layer_of

    model = design.model
    port, in_t, _ = design._input()
    if quantize:
        mant = design.quantize(x)
        q = design.last_quantization
    else:
        mant = in_t.from_real(np.asarray(x), f"input '{port}'")
        q = None
    ev = evaluate(model, [mant])
    layers: dict[str, LayerProfile] = {}
    for op in model.block.ops:
        name = layer_of(op)
        if name is None or not op.results:
            continue
        lp = layers.setdefault(name, LayerProfile(name))
        if isinstance(op, InputOp):
            real = in_t.to_real(ev.values[op.result])
            lp.activation = _stats(real, in_t, overflow=q.saturated if q else 0, mode="rnd_conv, sat")
            lp.samples["activation"] = np.asarray(x, dtype=np.float64).reshape(-1) if quantize else real.reshape(-1)
            if q:
                lp.note = f"{q.rounded} of {q.count} inputs rounded to the grid, {q.saturated} saturated"
            continue
        for kind, vals, t in _constants(op):
            if getattr(lp, kind) is None:
                setattr(lp, kind, _stats(vals, t))
                lp.samples[kind] = vals.reshape(-1)
        if isinstance(op, QuantizeOp):
            src_t, dst_t = elem(op.input.type), elem(op.output.type)
            before = src_t.to_real(ev.values[op.input])
            after = dst_t.to_real(ev.values[op.output])
            lo, hi = dst_t.min_int * dst_t.lsb, dst_t.max_int * dst_t.lsb
            over = int(np.count_nonzero((before < lo) | (before > hi)))
            under = int(np.count_nonzero((before != 0) & (after == 0)))
            s = _stats(before, dst_t, overflow=over, underflow=under,
                       mode=f"{op.rounding.data}, {op.overflow.data}")
            s.at_limit = int(np.count_nonzero((after == lo) | (after == hi)))
            lp.activation = s
            lp.samples["activation"] = before.reshape(-1)
    # layers without a quantize: their output against their own type
    for name, (t, m) in ev.layer_outputs().items():
        lp = layers[name]
        if lp.activation is None:
            real = t.to_real(m)
            lp.activation = _stats(real, t, mode="exact")
            lp.samples["activation"] = real.reshape(-1)
    return Profile(design.name, int(mant.shape[0]), list(layers.values()))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "layer"


def _log2_abs(v: np.ndarray) -> np.ndarray:
    v = np.abs(np.asarray(v, dtype=np.float64))
    v = v[v > 0]
    return np.log2(v)


def _plot(lp: LayerProfile, path_stem: Path, formats) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "qir"  # deterministic SVG ids

    kinds = [k for k in ("weight", "bias", "activation") if getattr(lp, k) is not None]
    fig, axes = plt.subplots(len(kinds), 1, figsize=(7, 1.9 * len(kinds) + 0.8), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        s: ValueStats = getattr(lp, kind)
        vals = _log2_abs(lp.samples.get(kind, np.zeros(0)))
        top = math.log2(max(abs(s.type_min), abs(s.type_max))) if max(abs(s.type_min), abs(s.type_max)) > 0 else 0
        bottom = math.log2(s.step)
        ax.axvspan(bottom, top, color="0.85", label=f"{s.type}: step 2^{bottom:g} .. max 2^{top:.3g}")
        if vals.size:
            lo, hi = min(vals.min(), bottom) - 1, max(vals.max(), top) + 1
            ax.hist(vals, bins=np.linspace(lo, hi, 60), color="tab:blue" if kind == "activation" else "tab:orange")
        ax.axvline(top, color="tab:red", lw=1)
        ax.axvline(bottom, color="tab:green", lw=1)
        extra = f", overflow {s.overflow}, underflow {s.underflow}" if kind == "activation" else \
            f", at limit {s.at_limit}"
        ax.set_title(f"{lp.layer}: {kind} ({s.count} values{extra})", fontsize=9)
        ax.set_xlabel("log2 |value|", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    out = []
    for fmt in formats:
        p = path_stem.with_suffix(f".{fmt}")
        fig.savefig(p, format=fmt, dpi=90, metadata={"Date": None} if fmt == "svg" else None)
        out.append(p)
    plt.close(fig)
    return out


def profile(design, x, outdir: str | Path | None = None, *, formats=("png",), quantize: bool = True) -> Profile:
    """Analyse ``design`` on ``x`` and, when ``outdir`` is given, write the plots and tables."""
    formats = tuple(formats)
    bad = [f for f in formats if f not in PLOT_FORMATS]
    if bad or not formats:
        raise QirError(f"plot formats must be among {', '.join(PLOT_FORMATS)}, got {', '.join(formats) or 'none'}")
    prof = analyse(design, x, quantize=quantize)
    if outdir is None:
        return prof
    d = Path(outdir)
    if d.exists() and not d.is_dir():
        raise QirError("output path exists and is not a directory", where=str(d))
    d.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib  # noqa: F401
        have_plots = True
    except ImportError:
        have_plots = False
        prof.note = "matplotlib is not installed: no plots (pip install matplotlib)"
    if have_plots:
        for lp in prof.layers:
            prof.plots += _plot(lp, d / _safe(lp.layer), formats)
    rows = prof.rows()
    with open(d / "profile.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["layer"])
        w.writeheader()
        w.writerows(rows)
    (d / "profile.json").write_text(json.dumps({"model": prof.model, "inputs": prof.inputs, "layers": rows,
                                                "plots": [p.name for p in prof.plots]}, indent=1) + "\n")
    (d / "profile.txt").write_text(str(prof) + "\n")
    prof.files = [d / "profile.csv", d / "profile.json", d / "profile.txt"]
    return prof
