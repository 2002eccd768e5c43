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
- ``target-ii=N`` (FINN's SetFolding idea): every unpinned layer is folded as far as the target
  allows (``beats x R <= N``) without slowing the pipeline, where the pipeline's II is the stream
  cycle model's (``qir.stream.cycles``; a window and the folded map after it stall each other),
  and never to an R that is bigger and slower than a smaller one (``Planner``).  A target below
  what a layer at R = 1 (or a pinned layer, or a stage that cannot fold: a window walking its
  padded map, the input beats) needs, or below the cycle model's II of the fastest folding, is
  one error naming it.
- ``max-luts=M``: the fastest such configuration (the smallest layer target, found by bisection)
  whose summed layer estimate (``qir.folding.estimate``, LUTs; R = 1 priced by the adder-graph
  search) is at most M; one error when even the most folded configuration does not fit.

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
                from qir.stream.geometry import WindowGeometry

                steps = WindowGeometry(op).steps
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


#: the unfolded (R = 1) layer's LUTs are the adder-graph search's own figure (``qir report``'s
#: adder LUTs after lowering) for layers with at most this many weights; larger layers keep
#: ``qir.folding.estimate``'s rough figure (the search would take minutes, and at that size R = 1
#: is only chosen when the rough figure is already below the folded alternative)
EXACT_R1_MAX_WEIGHTS = 1 << 16
#: the rough R = 1 figure is within this factor of the searched one (measured: 0.6 - 0.8 on
#: KERAS_conv1d, bench/README.md); beyond it the comparison needs no search
ROUGH_R1_TOLERANCE = 3.0
#: small R always considered beside the largest allowed one (candidates of the dominance rule)
SMALL_REUSE = (1, 2, 3, 4)

_UNFOLDED: dict = {}   # content key -> searched unfolded adder graph (shared by plan and summary)


def unfolded_graph(op, style: str | None):
    """The searched adder graph (``qir.lowering.adder_graph.build``, what ``qir-lower-cmvm``
    builds) of an unfolded ``qir.dense`` in an adder-graph style, or None (xnor/mac, a conv, a
    layer above ``EXACT_R1_MAX_WEIGHTS`` weights or ``qir.folding.DIGITSERIAL_MAX_DIGITS`` CSD
    digits); cached by content."""
    from qir.dialect import DenseOp

    if not isinstance(op, DenseOp) or style in ("xnor", "mac"):
        return None
    w = op.folded()[0]
    from qir.folding import DIGITSERIAL_MAX_DIGITS, digits_at_most

    if w.size > EXACT_R1_MAX_WEIGHTS or not digits_at_most(w, DIGITSERIAL_MAX_DIGITS):
        return None  # priced rough, R = 1 and the folds alike (``luts_at``)
    from qir.lowering.lower_cmvm import auto_style, graph_for
    from qir.lowering.lower_dense import cmvm_from_dense

    from qir.dialect import elements_to_numpy

    cm = cmvm_from_dense(op, style or auto_style(w))
    try:
        m = elements_to_numpy(cm.matrix)
        key = (cm.style.data, str(cm.input.type), m.shape, m.tobytes(), elements_to_numpy(cm.offset).tobytes())
        if key not in _UNFOLDED:
            _UNFOLDED[key] = graph_for(cm)
    finally:
        cm.erase()  # built only to be searched: drop its use of the layer's input
    return _UNFOLDED[key]


def unfolded_luts(op, style: str | None) -> int | None:
    """The searched adder graph's LUTs (``qir report``'s figure after ``qir-lower-cmvm``, without
    the epilogue that every R has) of an unfolded ``qir.dense`` in an adder-graph style, or None
    (``unfolded_graph``: the estimate's own figure then)."""
    from qir.folding import LUT_PER_ADDER_BIT

    g = unfolded_graph(op, style)
    return None if g is None else int(round(g.lut_bits() * LUT_PER_ADDER_BIT))


def stream_timing_nodes(module: ModuleOp, ii_of) -> tuple | None:
    """(nodes, n_out, beats_in, beats_out) of the stream model in ``module`` for
    ``qir.stream.cycles.simulate_dag``, before lowering: the stage graph ``rtl.stream_top`` builds
    (``qir.stream.graph.stage_graph``: windows, maps, collects, joins, forks, FIFOs at the
    unbounded depth the generator sizes them to; a collect that ``qir-stream-mvu`` will turn into
    a ``qir.stream_mvu`` as one), a map's II = ``ii_of(map op)`` (its folded layers' largest R),
    its latency II + 1 (the II does not depend on it).  None for a parallel model."""
    from qir.dialect import DenseOp, ModelOp
    from qir.dialect.stream_ops import is_stream_model
    from qir.stream.graph import stage_graph

    model = next((m for m in module.ops if isinstance(m, ModelOp)), None)
    if model is None or not is_stream_model(model):
        return None
    from qir.lowering.stream_mvu import stream_dense

    streamed = {id(col): d for d in model.walk() if isinstance(d, DenseOp) and (col := stream_dense(d)) is not None}

    def stream_mvu_r(col):
        d = streamed.get(id(col))
        return None if d is None else max(1, ii_of(d))

    def timing(op):
        ii = ii_of(op)
        return (ii + 1, ii) if ii > 1 else (1, 1)

    g = stage_graph(model, timing=timing, streamed=stream_mvu_r, registers=False)
    return g.timing_nodes(g.unbounded_depths())


_SIMULATED: dict = {}  # timing-graph content -> the cycle model's steady II (``simulated_ii``)
#: cycle-model results kept across planners (``--max-luts`` reruns the planner with a lower budget)
SIMULATED_MAX = 512


def _info_key(info):
    if isinstance(info, (int, tuple, str)):
        return info
    return (type(info).__name__, tuple(sorted((k, repr(v)) for k, v in vars(info).items())))


def simulated_ii(t: tuple) -> int:
    """The steady II of ``qir.stream.cycles.simulate_dag`` on timing nodes ``t``
    (``stream_timing_nodes``), remembered by the graph's content: each run is a cycle-by-cycle
    walk of several images, and the planner's bisections and ``--max-luts``'s reruns ask for the
    same graphs again."""
    nodes, n_out, beats_in, beats_out = t
    key = (tuple((kind, _info_key(info), tuple(tuple(i) for i in ins)) for kind, info, ins in nodes),
           tuple(n_out), beats_in, beats_out)
    if key not in _SIMULATED:
        from qir.stream.cycles import simulate_dag

        if len(_SIMULATED) >= SIMULATED_MAX:
            _SIMULATED.pop(next(iter(_SIMULATED)))
        _SIMULATED[key] = simulate_dag(*t, steady=True)[1]
    return _SIMULATED[key]


def same_work_reuse(op, r: int) -> int:
    """The smallest R that does the same work per cycle as ``r`` (``qir.folding.fold_shape``: S
    inputs x G outputs per cycle, so at least ceil(n_in / S) x ceil(n_out / G) cycles): the same
    arithmetic in fewer cycles and ROM words, so every R between it and ``r`` is dominated (the
    estimate is a saw-tooth between these points)."""
    from qir.folding import fold_shape

    n_out = op.weights.get_shape()[-1]
    n_in = max_reuse(op) // max(n_out, 1)
    sh = fold_shape(n_in, n_out, r)
    return min(r, -(-n_in // sh.S) * -(-n_out // sh.G))


def candidates(op, allowed: int) -> list[int]:
    """R's worth pricing for a layer that may take up to ``allowed``: 1 .. 4, the powers of two,
    ``allowed`` itself, the smallest R with its products per cycle (``same_work_reuse``) and the
    smallest with its inputs per cycle folding over inputs only (the estimate is not monotone in
    the products: output groups add registers), and for each of those the smallest R with its
    digit-serial digits (``qir.digitserial.digit_shape``).  Largest first."""
    n_out = op.weights.get_shape()[-1]
    n_in = max_reuse(op) // max(n_out, 1)
    cut = min(allowed, n_in)
    cs = set(SMALL_REUSE) | {1 << k for k in range(allowed.bit_length())} | {
        allowed, same_work_reuse(op, allowed), -(-n_in // -(-n_in // cut))}
    from qir.dialect import elem
    from qir.digitserial import digit_shape

    bits = elem(op.input.type).width  # digit-serial: the smallest R with the same digits
    cs |= {digit_shape(bits, r)[0] for r in list(cs) if r >= 2}
    return sorted((r for r in cs if 1 <= r <= allowed), reverse=True)


class Planner:
    """R per layer for a target II, and the summed estimate of a choice (cached per (op, R)).

    Three rules (issue #12):

    - *dominance*: a layer never gets an R that is bigger and slower than a smaller R: among the
      candidates up to the largest R the target allows (``SMALL_REUSE`` and that R), the one with
      the fewest estimated LUTs, the smaller R on a tie (``best_reuse``; the candidates:
      ``candidates``); R = 1 is priced by the
      adder-graph search where that can matter (``unfolded_luts``);
    - *II*: the II of a choice is the cycle model's (``qir.stream.cycles``, the model ``qir sim``
      checks the RTL against), not max(beats x R): a window and the folded map after it stall
      each other, and a window over a padded map walks more steps than it emits.  ``for_target``
      plans every layer for a layer target N' (beats x R <= N') and lowers N' until the cycle
      model's II meets the target;
    - ``for_max_luts``: the smallest layer target whose summed estimate fits (the fastest fitting
      configuration: the cycle model's II rises with N').
    """

    def __init__(self, layers: list[Layer], floor: int, why: str, module: ModuleOp | None = None):
        self.layers, self.floor, self.why, self.module = layers, floor, why, module
        self._cache: dict[tuple[int, int], dict] = {}
        self._plans: dict[int, list[int]] = {}
        self._ii: dict[tuple[int, ...], int] = {}
        self._searched: dict[tuple[int, int], int] = {}   # (layer op, R) -> searched-scale LUTs
        self._digit_bits: dict[tuple[int, int], int] = {}  # (layer op, digit bits) -> graph LUT bits

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

    def luts_at(self, lay: Layer, r: int, against: int | None = None) -> int:
        """The layer's LUTs at R; at R = 1 the searched adder graph's figure when ``against``
        (a folded alternative's LUTs) is within ``ROUGH_R1_TOLERANCE`` of the rough one (or
        always when ``against`` is None).  The adder-graph folds are priced on the same scale
        whenever the R = 1 graph can be searched: digit-serial as the searched graph re-costed at
        the digit width (``qir.folding.digitserial_searched``), a multiplexed graph as the searched
        graph x ``MUXGRAPH_FACTOR`` (``qir.folding.muxgraph_searched``); where R = 1 is priced
        rough (``against`` beyond the tolerance of the rough R = 1 figure), they are too."""
        est = self.estimate(lay, r)
        rough = int(est["lut"])
        if r != 1 and est.get("impl") in ("digitserial", "muxgraph"):
            r1 = int(self.estimate(lay, 1)["lut"])
            if against is not None and not r1 / ROUGH_R1_TOLERANCE <= against <= r1 * ROUGH_R1_TOLERANCE:
                return rough  # R = 1 is priced rough here too (no search): the same scale
            key = (id(lay.op), r)
            if key not in self._searched:  # the same answer for every layer target (bisection step)
                self._searched[key] = self._fold_searched(lay, est, rough)
            return self._searched[key]
        if r != 1 or (against is not None and not rough / ROUGH_R1_TOLERANCE <= against <= rough * ROUGH_R1_TOLERANCE):
            return rough
        exact = unfolded_luts(lay.op, lay.style)
        return rough if exact is None else exact

    def _fold_searched(self, lay: Layer, est: dict, rough: int) -> int:
        """A digit-serial / multiplexed-graph fold priced from the searched R = 1 graph
        (``luts_at``); the digit graph's LUT bits are re-derived once per digit width."""
        g = unfolded_graph(lay.op, lay.style)
        if g is None:
            return rough
        from qir.folding import digitserial_searched, muxgraph_searched

        if est["impl"] == "muxgraph":
            return int(muxgraph_searched(est, g)["lut"])
        key = (id(lay.op), est["digit_bits"])
        if key not in self._digit_bits:
            from qir.digitserial import digit_graph

            self._digit_bits[key] = digit_graph(g, est["digit_bits"]).lut_bits()
        return int(digitserial_searched(est, g, bits=self._digit_bits[key])["lut"])

    def best_reuse(self, lay: Layer, allowed: int) -> int:
        """The fewest-LUT R among the candidates up to ``allowed`` (smaller R on a tie): R's that
        are bigger and slower than another candidate are dropped."""
        cands = candidates(lay.op, allowed)
        rough_top = int(self.estimate(lay, cands[0])["lut"])
        top = rough_top if cands[0] == 1 else self.luts_at(lay, cands[0], against=rough_top)
        best, best_luts = cands[0], top
        for r in cands[1:]:  # one tolerance reference for every candidate: one pricing scale
            luts = self.luts_at(lay, r, against=rough_top)
            if luts <= best_luts:
                best, best_luts = r, luts
        return best

    def _layer_plan(self, ii: int) -> list[int]:
        """R per layer for the layer target ``ii`` (beats x R <= ii, dominance rule)."""
        if ii not in self._plans:
            out = []
            for lay in self.layers:
                if lay.pinned is not None:
                    out.append(lay.pinned)
                else:
                    out.append(self.best_reuse(lay, max(1, min(lay.max_reuse, ii // lay.beats))))
            self._plans[ii] = out
        return self._plans[ii]

    def _check_target(self, ii: int) -> None:
        if ii < self.floor:
            raise QirError(f"qir-fold-auto: target II {ii} cycles is impossible: {self.why} "
                           f"(give target-ii={self.floor} or more)")
        for lay in self.layers:
            if lay.pinned is not None and lay.beats * lay.pinned > ii:
                raise QirError(f"qir-fold-auto: target II {ii} cycles is impossible: layer '{lay.name}' is "
                               f"pinned at reuse {lay.pinned} and takes {lay.beats * lay.pinned} cycles per "
                               "image (lower its reuse in the precision configuration or raise the target)")
            if lay.pinned is None and lay.beats > ii:
                raise QirError(f"qir-fold-auto: target II {ii} cycles is impossible: layer '{lay.name}' "
                               f"processes {lay.beats} beats per image, so it needs {lay.beats} cycles even "
                               f"unfolded (give target-ii={self.min_ii()} or more)")

    def for_target(self, ii: int) -> list[int]:
        """R per layer whose cycle-model II is at most ``ii``: the layer plan for ``ii``, else for
        the largest layer target N' < ii that meets it (bisection); one error naming the closest
        achievable II when not even the fastest plan meets it."""
        self._check_target(ii)
        rs = self._layer_plan(ii)
        if self.ii(rs) <= ii:
            return rs
        lo, hi = max([1] + [lay.beats * (lay.pinned or 1) for lay in self.layers]), ii - 1
        fastest = self.ii(self._layer_plan(lo))
        if fastest > ii:
            raise QirError(f"qir-fold-auto: target II {ii} cycles is impossible: even the fastest folding has "
                           f"an II of {fastest} cycles in the stream cycle model (a window and the map it feeds "
                           f"stall each other; give target-ii={fastest} or more)")
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.ii(self._layer_plan(mid)) <= ii:
                lo = mid
            else:
                hi = mid - 1
        # then fold each layer back up to its plan for the full target where the cycle model
        # still meets it (the layers that do not stall anything keep their fold)
        rs, full = list(self._layer_plan(lo)), rs
        for k in range(len(rs)):
            if full[k] != rs[k]:
                trial = rs[:k] + [full[k]] + rs[k + 1:]
                if self.ii(trial) <= ii:
                    rs = trial
        return rs

    def min_ii(self) -> int:
        return max([self.floor] + [lay.beats * (lay.pinned or 1) for lay in self.layers])

    def max_ii(self) -> int:
        return max([self.min_ii()] + [lay.beats * (lay.pinned or lay.max_reuse) for lay in self.layers])

    def luts(self, rs: list[int], budget: int | None = None) -> int:
        """Summed LUTs of choice ``rs`` (R = 1 and digit-serial layers: the searched figure).  With
        ``budget``: when even the rough R = 1 / digit-serial figures divided by
        ``ROUGH_R1_TOLERANCE`` exceed it, that lower bound (the choice does not fit either way, no
        search needed)."""
        rough = [int(self.estimate(lay, r)["lut"]) for lay, r in zip(self.layers, rs)]
        searched = [r == 1 or self.estimate(lay, r).get("impl") in ("digitserial", "muxgraph")
                    for lay, r in zip(self.layers, rs)]
        if budget is not None:
            low = sum(v / ROUGH_R1_TOLERANCE if s else v for v, s in zip(rough, searched))
            if low > budget:
                return int(low)
        return sum(self.luts_at(lay, r) if s else v for lay, r, v, s in zip(self.layers, rs, rough, searched))

    def for_max_luts(self, budget: int) -> tuple[int, list[int]]:
        """(II, R per layer): the smallest layer target whose choice fits ``budget`` (bisection: the
        estimate falls as the target rises), and its cycle-model II."""
        lo, hi = self.min_ii(), self.max_ii()
        best = self._layer_plan(hi)
        if self.luts(best, budget) > budget:
            raise QirError(f"qir-fold-auto: max-luts={budget} is impossible: even folded as far as each layer "
                           f"can be (II {hi} cycles) the layers are estimated at {self.luts(best)} LUTs")
        while lo < hi:
            mid = (lo + hi) // 2
            if self.luts(self._layer_plan(mid), budget) <= budget:
                hi = mid
            else:
                lo = mid + 1
        rs = self._layer_plan(lo)
        if self.ii(rs) > lo:  # the plan stalls: the plan that meets lo in the cycle model, if it fits
            try:
                alt = self.for_target(lo)
            except QirError:
                alt = None
            if alt is not None and self.ii(alt) < self.ii(rs) and self.luts(alt, budget) <= budget:
                rs = alt
        return self.ii(rs), rs

    def layer_ii(self, rs: list[int]) -> int:
        """max(beats x R) and the unfoldable stages: the II if no stage ever stalled another."""
        return max([self.floor] + [lay.beats * r for lay, r in zip(self.layers, rs)])

    def ii(self, rs: list[int]) -> int:
        """The II of choice ``rs``: the stream cycle model's (``stream_timing_nodes``), or
        ``layer_ii`` for a parallel model or a stream model without windows (a chain of maps and
        collects runs at its slowest stage)."""
        base = self.layer_ii(rs)
        if self.module is None:
            return base
        key = tuple(rs)
        if key not in self._ii:
            by_op = {id(lay.op): r for lay, r in zip(self.layers, rs)}
            streamed_ids = {id(lay.op) for lay in self.layers if getattr(lay, "beat", None)}
            from qir.dialect import ConvOp, DenseOp

            def ii_of(stage):
                if isinstance(stage, DenseOp):  # a dense the stream_mvu takes: cycles per beat
                    return by_op.get(id(stage), 1)
                return max([by_op.get(id(o), 1) for o in stage.model().walk() if isinstance(o, (DenseOp, ConvOp))
                            and id(o) not in streamed_ids] + [1])

            t = stream_timing_nodes(self.module, ii_of)
            if t is None or not any(k == "window" for k, _, _ in t[0]):
                self._ii[key] = base
            else:
                self._ii[key] = max(base, simulated_ii(t))
        return self._ii[key]


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
        plan = Planner(layers, floor, why, op)
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
    plan = Planner(layers, floor, why, module)
    rows = []
    for lay in layers:
        r = reuse_of(lay.op)
        est = dict(plan.estimate(lay, r))
        if r == 1 or est.get("impl") in ("digitserial", "muxgraph"):  # the searched graph's figure (``luts_at``)
            est["lut"] = plan.luts_at(lay, r)
        rows.append({"layer": lay.name, "beats": lay.beats, "reuse": r, "cycles": lay.beats * r,
                     "implementation": est.get("implementation", est.get("style")),
                     "estimate": {k: v for k, v in est.items() if k not in ("implementation", "style")}})
    rs = [row["reuse"] for row in rows]
    return {"ii_cycles_estimate": plan.ii(rs), "ii_cycles_layers": plan.layer_ii(rs), "luts_estimate": plan.luts(rs),
            "layers": rows}
