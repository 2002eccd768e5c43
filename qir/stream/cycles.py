"""Cycle model of a stream graph's handshakes (a chain: ``simulate``; a DAG with fork, join and
FIFO stages: ``simulate_dag``), for report.json's ``ii_cycles`` and
``latency_cycles`` (and checked against the RTL by ``qir sim``).

Each stage is modelled by the same equations as its generator (``rtl/stream_window.py``,
``stream_map``, ``stream_collect``, ``stream_mvu``, ``stream_join``; the graph:
``qir.stream.graph.stage_graph``): per cycle the valids are computed from the source forward,
the readies from the sink backward, then every stage's registers update.  The source offers a
beat every cycle, the sink is always ready (full rate).  ``latency``: edges from the one at
which the first input beat of the first image is accepted to the first edge at which the first
output beat of that image is valid (0 = the same cycle).  ``ii``: edges between the acceptances
of the first beats of consecutive images, in steady state."""
from __future__ import annotations

from collections import deque


def steady_ii(firsts_in: list[int], firsts_out: list[int]) -> int:
    """The II from the cycles of the first input beats and the first output beats of consecutive
    images: the largest interval after the first on either side.  The input side alone
    under-states it when a slow stage sits behind deep buffering (a folded layer with latency > II
    after a flatten: the input runs ahead for many images before it is throttled)."""
    ii = 0
    for t in (firsts_in, firsts_out):
        iis = [b - a for a, b in zip(t, t[1:])]
        ii = max([ii] + (iis[1:] or iis))
    return ii


class _Window:
    def __init__(self, g):
        self.g, self.py, self.px, self.ov = g, 0, 0, False
        # the geometry's row / column flags (interior, emit), constants of the stage
        self.rows = tuple((g.interior_row(y), g.emit_row(y)) for y in range(g.Hp))
        self.cols = tuple((g.interior_col(x), g.emit_col(x)) for x in range(g.Wp))

    def flags(self):
        (ir, er), (ic, ec) = self.rows[self.py], self.cols[self.px]
        return ir and ic, er and ec

    def out_valid(self, in_valid):
        return self.ov

    def in_ready(self, out_ready):
        interior, emit = self.flags()
        return interior and (not emit or not self.ov or out_ready)

    def step(self, in_valid, out_ready):
        interior, emit = self.flags()
        adv = (not interior or in_valid) and (not emit or not self.ov or out_ready)
        if out_ready:
            self.ov = False
        if adv:
            if emit:
                self.ov = True
            self.px += 1
            if self.px == self.g.Wp:
                self.px = 0
                self.py = (self.py + 1) % self.g.Hp


class _Map:
    """``stream_map.MapStage``: ``info`` = latency, or (latency, ii) for a body with folded layers
    (``qir.rtl.top``'s cooldown: after an accepted beat, in_ready is low for ii - 1 enabled
    cycles)."""

    def __init__(self, info):
        latency, self.ii = info if isinstance(info, tuple) else (info, 1)
        # the valid shift register (v[0] = the newest stage): a deque shifts in O(1), a folded
        # body's pipeline is II + 1 stages long (``fold_auto.stream_timing_nodes``)
        self.v = deque([False] * latency, maxlen=latency)
        self.cool = 0

    def out_valid(self, in_valid):
        return self.v[-1] if self.v else in_valid

    def in_ready(self, out_ready):
        ce = (not self.v[-1] or out_ready) if self.v else out_ready
        return ce and self.cool == 0

    def step(self, in_valid, out_ready):
        if self.v and (not self.v[-1] or out_ready):
            take = in_valid and self.cool == 0
            self.v.appendleft(take)  # maxlen: drops v[-1]
            if self.ii > 1:
                self.cool = self.ii - 1 if take else max(self.cool - 1, 0)


class _Collect:
    def __init__(self, n):
        self.n, self.count, self.ov = n, 0, False

    def out_valid(self, in_valid):
        return self.ov if self.n > 1 else in_valid

    def in_ready(self, out_ready):
        if self.n == 1:
            return out_ready
        return self.count != self.n - 1 or not self.ov or out_ready

    def step(self, in_valid, out_ready):
        if self.n == 1:
            return
        take = in_valid and self.in_ready(out_ready)
        if out_ready:
            self.ov = False
        if take:
            if self.count == self.n - 1:
                self.count, self.ov = 0, True
            else:
                self.count += 1


class _StreamMvu:
    """``stream_mvu.StreamMvuStage``: ``info`` = (beats per tensor, cycles per beat).  A beat is
    held for its cycles (the next one is taken in the last), each cycle's ROM word is summed one
    cycle later, the output register is set with the last word's sums and held until taken; all
    of it advances only with ce = ~out_valid | out_ready."""

    def __init__(self, info):
        self.n, self.cpb = info
        self.full, self.k, self.a, self.v1, self.final1, self.ov = False, 0, 0, False, False, False

    def out_valid(self, in_valid):
        return self.ov

    def in_ready(self, out_ready):
        return (not self.ov or out_ready) and (not self.full or self.k == self.cpb - 1)

    def step(self, in_valid, out_ready):
        if self.ov and not out_ready:
            return
        take = in_valid and self.in_ready(out_ready)
        words = self.n * self.cpb
        v1, final1 = self.full, self.full and self.a == words - 1
        if self.full:
            self.a = (self.a + 1) % words
            done = self.k == self.cpb - 1
            self.k = 0 if done else self.k + 1
            if done:
                self.full = False
        if take:
            self.full, self.k = True, 0
        self.ov = (self.ov and not out_ready) or (self.v1 and self.final1)
        self.v1, self.final1 = v1, final1


def model_stage(kind: str, info):
    return {"window": _Window, "map": _Map, "collect": _Collect, "stream_mvu": _StreamMvu}[kind](info)


def simulate(stages: list[tuple[str, object]], beats_in: int, beats_out: int, images: int = 4,
             max_cycles: int = 10_000_000) -> tuple[int, int]:
    """(latency, ii) of the chain ``stages`` [(kind, info)] at full rate."""
    models = [model_stage(k, i) for k, i in stages]
    sent = got = 0
    t_in, t_out = [], []
    total_in = beats_in * images
    for cyc in range(max_cycles):
        valid = sent < total_in
        valids = [valid]
        for s in models:
            valids.append(s.out_valid(valids[-1]))
        readies = [True]
        for s in reversed(models):
            readies.append(s.in_ready(readies[-1]))
        readies.reverse()  # readies[k] = ready at stage k's input; readies[-1] = sink
        if valid and readies[0]:
            if sent % beats_in == 0:
                t_in.append(cyc)
            sent += 1
        if valids[-1]:
            if got % beats_out == 0:
                t_out.append(cyc)
            got += 1
        for k, s in enumerate(models):
            s.step(valids[k], readies[k + 1])
        if got == beats_out * images:
            break
    else:
        raise RuntimeError("stream timing model did not finish")
    return t_out[0] - t_in[0], steady_ii(t_in, t_out)


# ------------------------------------------------------------------ DAGs (fork / join / fifo)
class _Fork:
    """Per-output taken flags (``stream_join.ForkStage``)."""

    def __init__(self, n):
        self.taken = [False] * n

    def out_valids(self, iv):
        return [iv[0] and not t for t in self.taken]

    def in_readies(self, iv, ors):
        return [all(t or r for t, r in zip(self.taken, ors))]

    def step(self, iv, ors):
        if iv[0] and self.in_readies(iv, ors)[0]:
            self.taken = [False] * len(self.taken)
        else:
            ov = self.out_valids(iv)
            self.taken = [t or (v and r) for t, v, r in zip(self.taken, ov, ors)]


class _Join:
    """Both-valid map (``stream_join.JoinStage``); ``info`` as ``_Map``'s (a folded body's ii)."""

    def __init__(self, info):
        self.m = _Map(info)

    def out_valids(self, iv):
        return [self.m.out_valid(iv[0] and iv[1])]

    def in_readies(self, iv, ors):
        ce = self.m.in_ready(ors[0])
        return [ce and iv[1], ce and iv[0]]

    def step(self, iv, ors):
        self.m.step(iv[0] and iv[1], ors[0])


class _Fifo:
    """Amaranth ``SyncFIFOBuffered`` of ``depth``: an inner queue of depth - 1 read through a
    registered output (depth 1: one register, alternately full and empty)."""

    def __init__(self, depth):
        self.depth, self.inner, self.rrdy, self.level = depth, 0, False, 0

    def out_valids(self, iv):
        return [self.level == 1] if self.depth == 1 else [self.rrdy]

    def in_readies(self, iv, ors):
        return [self.level == 0] if self.depth == 1 else [self.inner != self.depth - 1]

    def step(self, iv, ors):
        w = iv[0] and self.in_readies(iv, ors)[0]
        r = self.out_valids(iv)[0] and ors[0]
        if self.depth == 1:
            self.level = 1 if w else (0 if r else self.level)
            return
        inner_read = self.inner != 0 and (not self.rrdy or ors[0])
        self.inner += int(w) - int(inner_read)
        if inner_read:
            self.rrdy = True
        elif ors[0]:
            self.rrdy = False


def _freeze(v):
    if isinstance(v, (list, tuple, deque)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if hasattr(v, "__dict__") and not isinstance(v, type) and type(v).__module__ == __name__:
        return (type(v).__name__,) + tuple((k, _freeze(x)) for k, x in sorted(vars(v).items()))
    return id(v)  # a constant of the stage (its window geometry)


def _state(models) -> tuple:
    """Every stage model's registers, hashable (``simulate_dag(steady=True)``)."""
    return tuple(_freeze(m) for m in models)


class _One:
    """A one-input, one-output stage model in the DAG interface."""

    def __init__(self, s):
        self.s = s

    def out_valids(self, iv):
        return [self.s.out_valid(iv[0])]

    def in_readies(self, iv, ors):
        return [self.s.in_ready(ors[0])]

    def step(self, iv, ors):
        self.s.step(iv[0], ors[0])


#: ``simulate_dag`` walks a chain of one-input stages on their scalar valid/ready (False: the DAG
#: walk for every graph; tests compare the two)
CHAIN_FAST = True

#: ``simulate_dag(steady=True)``: the most images fed before the II is taken as it stands
STEADY_MAX_IMAGES = 64


def simulate_dag(nodes: list[tuple[str, object, list[tuple[int, int]]]], n_out: list[int], beats_in: int,
                 beats_out: int, images: int = 4, max_cycles: int = 10_000_000,
                 ready=None, valid=None, steady: bool = False):
    """(latency, ii) of a stream DAG at full rate (or with the ``valid(cycle)`` / ``ready(cycle)``
    patterns).  ``nodes`` in topological order: (kind, info, inputs) with inputs [(node, port)],
    node -1 = the model input; ``n_out[k]`` output ports of node k; the last node's port 0 is the
    model output.  Raises RuntimeError on a deadlock (no beat moves for 100000 cycles).
    ``steady``: feed images until the model's state at the start of an image repeats (from then
    on it is periodic; at most ``STEADY_MAX_IMAGES``): stages that buffer whole images (a collect,
    a folded map's pipeline) let the input run ahead of a slower stage for several images first.
    Returns (latency, ii, images fed); ii = the largest interval between image starts after the
    first, as a bench measures it over at least that many images (fewer may show a smaller one)."""
    if steady:
        images = STEADY_MAX_IMAGES
    seen: set = set()
    models = []
    for kind, info, _ in nodes:
        models.append({"fork": _Fork, "join": _Join, "fifo": _Fifo}[kind](info) if kind in ("fork", "join", "fifo")
                      else _One(model_stage(kind, info)))
    sent = got = 0
    t_in, t_out = [], []
    total_in = beats_in * images
    idle = 0
    # the per-cycle walk with its loop constants bound once (the planner runs it many times); a
    # chain (every stage one input from the stage before, one output) walks the stage models'
    # scalar valid/ready directly: the same equations, without the DAG's per-port lists
    chain = CHAIN_FAST and all(isinstance(m, _One) for m in models) and all(
        list(ins) == [(k - 1, 0)] for k, (_, _, ins) in enumerate(nodes)) and all(n == 1 for n in n_out)
    ins_of = [list(ins) for _, _, ins in nodes]
    fwd = list(zip(ins_of, [m.out_valids for m in models]))
    bwd = list(zip(reversed(range(len(nodes))), reversed(ins_of), [m.in_readies for m in reversed(models)]))
    steps = [m.step for m in models]
    c_ov = [m.s.out_valid for m in models] if chain else None
    c_ir = [m.s.in_ready for m in reversed(models)] if chain else None
    c_st = [m.s.step for m in models] if chain else None
    for cyc in range(max_cycles):
        src_valid = sent < total_in and (valid is None or valid(cyc))
        snk_ready = ready is None or ready(cyc)
        if chain:
            vals = []  # vals[k]: stage k's input valid
            out_v = src_valid
            for out_valid in c_ov:
                vals.append(out_v)
                out_v = out_valid(out_v)
            rds = []  # rds[j]: the output ready of stage n - 1 - j
            src_ready = snk_ready
            for in_ready in c_ir:
                rds.append(src_ready)
                src_ready = in_ready(src_ready)
        else:
            ov: list[list[bool]] = []
            iv: list[list[bool]] = []
            for ins, out_valids in fwd:
                v = [src_valid if n < 0 else ov[n][p] for n, p in ins]
                iv.append(v)
                ov.append(out_valids(v))
            ors = [[False] * n for n in n_out]
            ors[-1][0] = snk_ready
            src_ready = False
            for k, ins, in_readies in bwd:
                for (n, p), r in zip(ins, in_readies(iv[k], ors[k])):
                    if n < 0:
                        src_ready = r
                    else:
                        ors[n][p] = r
            out_v = ov[-1][0]
        moved = False
        if src_valid and src_ready:
            if sent % beats_in == 0:
                t_in.append(cyc)
                if steady:
                    key = _state(models)
                    if key in seen:  # periodic from here: this image is the last one fed
                        total_in = sent + beats_in
                        images = len(t_in)
                    seen.add(key)
            sent += 1
            moved = True
        if out_v and snk_ready:
            if got % beats_out == 0:
                t_out.append(cyc)
            got += 1
        if chain:
            for step, a, b in zip(c_st, vals, reversed(rds)):
                step(a, b)
        else:
            for step, i, o in zip(steps, iv, ors):
                step(i, o)
        if got == beats_out * images:
            break
        idle = 0 if moved or (out_v and snk_ready) else idle + 1
        if idle > 100_000:
            raise RuntimeError(f"stream deadlock: {sent} input beats taken, {got} output beats given")
    else:
        raise RuntimeError("stream timing model did not finish")
    ii = steady_ii(t_in, t_out)
    return (t_out[0] - t_in[0], ii, len(t_in)) if steady else (t_out[0] - t_in[0], ii)
