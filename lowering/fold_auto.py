"""``qir-fold-auto{reuse=R target-ii=N max-luts=M}``: choose the reuse factor R of every dense/conv layer.

A layer op (``qir.dense``, ``qir.conv``; in a stream model the ``qir.dense`` kernel inside a
``qir.map`` body) with ``reuse = R : i64`` computes its products over R cycles with about 1/R
of the arithmetic (issue #12; the folded hardware and its cost are ``qir.folding``).  This pass
runs before lowering and writes that attribute; a layer that already has one (a ``reuse`` key in
the precision configuration, or a previous ``net.mlir``) is *pinned* and kept as it is.

Cycles of a layer per image: ``beats x R`` in a stream model (``beats`` = the beats its map
processes per image: the output positions of a conv, 1 for a dense layer after a flatten), ``R``
in a parallel model (the whole design's II becomes the largest R).

- ``reuse=R``: every unpinned layer gets R (at most ``max_reuse``, its inputs x outputs: beyond
  it a fold only adds idle cycles).
- ``target-ii=N`` (FINN's SetFolding idea): every unpinned layer gets the largest R with
  ``beats x R <= N``: the slowest layer meets the target and every other layer is folded as far as
  it can be without slowing the pipeline.  A target below what a layer at R = 1 (or a pinned
  layer, or a stage that cannot fold: a window walking its padded map, the input beats) needs is
  one error naming it.
- ``max-luts=M``: the fastest such configuration (the smallest II, found by bisection over the
  target II) whose summed layer estimate (``qir.folding.estimate``, LUTs) is at most M; one
  error when even the most folded configuration does not fit.

Without options the pass does nothing.  ``qir compile --reuse/--target-ii/--max-luts`` set the
options; the compile flow copies the chosen R back onto ``net.mlir`` and lists every layer's R,
implementation and estimate in ``report.json: folding`` (``folding_summary``).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from qir.errors import QirError
from qir.ir import layer_of, reuse_of, style_of


def pinned_reuse(op: Operation) -> int | None:
    """R of a layer op that has a ``reuse`` attribute (pinned), None when it has none."""
    return reuse_of(op) if "reuse" in op.attributes else None


@dataclass
class Layer:
    """One foldable op: its beats per image, resolved style, largest useful R and pin."""

    op: Operation
    beats: int
    style: str | None
    max_reuse: int
    pinned: int | None
    beat: int | None = None  # a dense consuming a flattened stream beat by beat (qir-stream-mvu): C

    @property
    def name(self) -> str:
        return layer_of(self.op) or self.op.name


def _resolved_style(op) -> str | None:
    """The style for ``qir.folding.estimate``: the user's ``style`` attribute, ``xnor`` where
    ``qir-lower-dense{style=auto}`` will build xnor (the value-set proof), else None (the
    estimate picks from the weights)."""
    from qir.dialect import DenseOp

    style = style_of(op)
    if style not in (None, "auto"):
        return style
    if isinstance(op, DenseOp):
        from qir.lowering.xnor import xnor_plan

        if not isinstance(xnor_plan(op), str):
            return "xnor"
    return None


def max_reuse(op) -> int:
    """The largest useful R of a layer: one product per cycle (``qir.folding.fold_shape`` folds
    over inputs and outputs): rows x columns of its per-beat matrix (a conv's taps x input
    channels x output channels)."""
    from qir.dialect import ConvOp

    shape = op.weights.get_shape()
    rows = prod(shape[:-1])
    return max(1, rows * (op.groups.value.data if isinstance(op, ConvOp) else 1) * shape[-1])


def _beats(t) -> int:
    from qir.dialect import shape_of

    return max(1, prod(shape_of(t)[:-1]))


def foldable_layers(module: ModuleOp) -> tuple[list[Layer], int, str]:
    """(layers, floor, floor_reason): every dense/conv op with its beats per image, and the
    cycles per image of the stages that cannot fold (1 in a parallel model)."""
    from qir.dialect import ConvOp, DenseOp, ModelOp, shape_of
    from qir.dialect.stream_ops import JoinOp, MapOp, WindowOp, is_stream_model

    layers: list[Layer] = []
    floor, why = 1, "one input per clock"

    def add(op, beats):
        from qir.lowering.stream_mvu import stream_dense

        col = stream_dense(op)
        if col is not None:  # R = cycles per beat of the flattened stream (qir.folding.stream_fold)
            c, n_out = shape_of(col.input.type)[-1], shape_of(op.output.type)[0]
            layers.append(Layer(op, _beats(col.input.type), _resolved_style(op), c * n_out, pinned_reuse(op), c))
            return
        layers.append(Layer(op, beats, _resolved_style(op), max_reuse(op), pinned_reuse(op)))

    for model in (m for m in module.ops if isinstance(m, ModelOp)):
        if not is_stream_model(model):
            for op in model.walk():
                if isinstance(op, (DenseOp, ConvOp)):
                    add(op, 1)
            continue
        for op in model.block.ops:
            if op.name == "qir.input":
                n = _beats(op.results[0].type)
                if n > floor:
                    floor, why = n, f"the input stream has {n} beats per image"
            elif isinstance(op, WindowOp):
                from qir.dialect import int_values, shape_of

                sp, pads = shape_of(op.input.type)[:-1], int_values(op.pads)
                steps = prod(s + pads[d] + pads[len(sp) + d] for d, s in enumerate(sp))
                if steps > floor:
                    floor, why = steps, f"the window of layer '{layer_of(op)}' walks {steps} steps per image"
            elif isinstance(op, (MapOp, JoinOp)):
                beats = _beats(op.operands[0].type)
                for inner in op.model().walk():
                    if isinstance(inner, (DenseOp, ConvOp)):
                        add(inner, beats)
                if not any(isinstance(i, (DenseOp, ConvOp)) for i in op.model().walk()) and beats > floor:
                    floor, why = beats, f"stage '{layer_of(op)}' takes {beats} beats per image"
    return layers, floor, why


class Planner:
    """R per layer for a target II, and the summed estimate of a choice (cached per (op, R))."""

    def __init__(self, layers: list[Layer], floor: int, why: str):
        self.layers, self.floor, self.why = layers, floor, why
        self._cache: dict[tuple[int, int], dict] = {}

    def estimate(self, lay: Layer, r: int) -> dict:
        key = (id(lay.op), r)
        if key not in self._cache:
            try:
                from qir.folding import estimate
            except ImportError:
                raise QirError("qir-fold-auto: target-ii/max-luts need the folded-layer cost model "
                               "(qir.folding.estimate), which this build of qir lacks") from None
            self._cache[key] = estimate(lay.op, r, lay.style, beat=lay.beat)
        return self._cache[key]

    def for_target(self, ii: int) -> list[int]:
        if ii < self.floor:
            raise QirError(f"qir-fold-auto: target II {ii} cycles is impossible: {self.why} "
                           f"(give target-ii={self.floor} or more)")
        out = []
        for lay in self.layers:
            if lay.pinned is not None:
                if lay.beats * lay.pinned > ii:
                    raise QirError(f"qir-fold-auto: target II {ii} cycles is impossible: layer '{lay.name}' is "
                                   f"pinned at reuse {lay.pinned} and takes {lay.beats * lay.pinned} cycles per "
                                   "image (lower its reuse in the precision configuration or raise the target)")
                out.append(lay.pinned)
            elif lay.beats > ii:
                raise QirError(f"qir-fold-auto: target II {ii} cycles is impossible: layer '{lay.name}' "
                               f"processes {lay.beats} beats per image, so it needs {lay.beats} cycles even "
                               f"unfolded (give target-ii={self.min_ii()} or more)")
            else:
                out.append(max(1, min(lay.max_reuse, ii // lay.beats)))
        return out

    def min_ii(self) -> int:
        return max([self.floor] + [lay.beats * (lay.pinned or 1) for lay in self.layers])

    def max_ii(self) -> int:
        return max([self.min_ii()] + [lay.beats * (lay.pinned or lay.max_reuse) for lay in self.layers])

    def luts(self, rs: list[int]) -> int:
        return sum(int(self.estimate(lay, r)["lut"]) for lay, r in zip(self.layers, rs))

    def for_max_luts(self, budget: int) -> tuple[int, list[int]]:
        """The smallest target II whose choice fits ``budget`` (bisection: the estimate falls as
        the target II rises)."""
        lo, hi = self.min_ii(), self.max_ii()
        best = self.for_target(hi)
        if self.luts(best) > budget:
            raise QirError(f"qir-fold-auto: max-luts={budget} is impossible: even folded as far as each layer "
                           f"can be (II {hi} cycles) the layers are estimated at {self.luts(best)} LUTs")
        while lo < hi:
            mid = (lo + hi) // 2
            if self.luts(self.for_target(mid)) <= budget:
                hi = mid
            else:
                lo = mid + 1
        return lo, self.for_target(lo)

    def ii(self, rs: list[int]) -> int:
        return max([self.floor] + [lay.beats * r for lay, r in zip(self.layers, rs)])


@dataclass(frozen=True)
class FoldAuto(ModulePass):
    """``reuse``: R for every unpinned layer; ``target_ii`` (``target-ii``) / ``max_luts``
    (``max-luts``): choose R per layer (module docstring).  0 = not given."""

    name = "qir-fold-auto"
    reuse: int = 0
    target_ii: int = 0
    max_luts: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        given = [k for k, v in (("reuse", self.reuse), ("target-ii", self.target_ii), ("max-luts", self.max_luts))
                 if v]
        for k, v in (("reuse", self.reuse), ("target-ii", self.target_ii), ("max-luts", self.max_luts)):
            if v < 0:
                raise QirError(f"qir-fold-auto: {k}={v}: give a positive number")
        if not given:
            return
        if len(given) > 1:
            raise QirError(f"qir-fold-auto: give one of reuse, target-ii, max-luts (got {', '.join(given)})")
        layers, floor, why = foldable_layers(op)
        plan = Planner(layers, floor, why)
        if self.reuse:
            rs = [lay.pinned or min(self.reuse, lay.max_reuse) for lay in layers]
        elif self.target_ii:
            rs = plan.for_target(self.target_ii)
        else:
            rs = plan.for_max_luts(self.max_luts)[1]
        for lay, r in zip(layers, rs):
            lay.op.attributes["reuse"] = IntegerAttr(r, i64)


def folding_summary(module: ModuleOp) -> dict:
    """``report.json: folding``: per foldable op its layer, beats per image, reuse, cycles per
    image, implementation and estimate (``qir.folding.estimate``), and the II the folded layers
    allow.  Run on the module right after ``qir-fold-auto``."""
    layers, floor, why = foldable_layers(module)
    plan = Planner(layers, floor, why)
    rows = []
    for lay in layers:
        r = reuse_of(lay.op)
        est = plan.estimate(lay, r)
        rows.append({"layer": lay.name, "beats": lay.beats, "reuse": r, "cycles": lay.beats * r,
                     "implementation": est.get("implementation", est.get("style")),
                     "estimate": {k: v for k, v in est.items() if k not in ("implementation", "style")}})
    rs = [row["reuse"] for row in rows]
    return {"ii_cycles_estimate": plan.ii(rs), "luts_estimate": plan.luts(rs), "layers": rows}
