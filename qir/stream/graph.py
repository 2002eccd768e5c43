"""The stage graph of a stream model: the one builder of what ``rtl/stream_top.py`` builds and what
``qir-fold-auto`` plans with.

A stream-level ``qir.model`` is a DAG of stages from its one input to its one output: a
``qir.window``, ``qir.map``, ``qir.join``, ``qir.collect`` or ``qir.stream_mvu`` per op, a *fork*
for a value with several users (per-output taken flags), and in front of a join input whose
branch arrives early a *FIFO* of at least ``min_depth`` beats (``geometry.fifo_depth``: the least
that no valid/ready pattern can deadlock).  ``stage_graph`` builds it once, in the order and with
the fork ports the generator uses; ``StageGraph.timing_nodes`` is its form for the cycle model
(``qir.stream.cycles.simulate_dag``) and ``size_fifos`` adds the FIFO slack with which the cycle
model reaches the II and latency of unbounded FIFOs (the built depth)."""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from qir.dialect import shape_of
from qir.errors import QirError
from qir.stream.geometry import WindowGeometry, collect_geometry, fifo_depth, needs, stream_mvu_timing

#: a FIFO of min_depth + its branch's beats per image + this never fills at full rate: the cycle
#: model's stand-in for an unbounded FIFO (the II the built depth must reach, and the planner's)
UNBOUNDED_SLACK = 4


@dataclass
class Node:
    """One stage: ``kind`` (window, map, join, collect, stream_mvu, fork, fifo), ``info`` (its
    parameter in the cycle model: a ``WindowGeometry``, a latency or (latency, ii), beats,
    (beats, cycles per beat), outputs, depth), ``ins`` [(node, port)] (node -1 = the model
    input), ``op`` (the stream op; a FIFO's: its join's; a fork's: None)."""

    kind: str
    info: object
    ins: list
    op: object = None
    n_out: int = 1


@dataclass
class Fifo:
    """A FIFO in front of input ``port`` (0 = lhs, 1 = rhs) of the join node ``join``, buffering
    ``value`` (``beats`` per image); ``depth``: ``min_depth`` until ``size_fifos``."""

    node: int
    join: int
    port: int
    value: object
    beats: int
    min_depth: int
    depth: int = 0


@dataclass
class StageGraph:
    nodes: list[Node]
    #: ((source node, port), (destination node, input port)) in the order the generator connects them
    edges: list = field(default_factory=list)
    fifos: list[Fifo] = field(default_factory=list)
    beats_in: int = 1
    beats_out: int = 1

    def timing_nodes(self, depths: dict | None = None) -> tuple:
        """(nodes, n_out, beats_in, beats_out) for ``simulate_dag``; ``depths``: FIFO node ->
        depth (default: the FIFO's ``min_depth``)."""
        depths = depths or {}
        return ([(n.kind, depths.get(k, n.info), n.ins) for k, n in enumerate(self.nodes)],
                [n.n_out for n in self.nodes], self.beats_in, self.beats_out)

    def unbounded_depths(self) -> dict:
        """FIFO node -> a depth that never fills (``UNBOUNDED_SLACK``)."""
        return {f.node: f.min_depth + f.beats + UNBOUNDED_SLACK for f in self.fifos}

    def size_fifos(self, model_name: str) -> tuple[int, int, int]:
        """Sets every FIFO's ``depth`` to min_depth + the least common slack k with which the cycle
        model reaches the II and latency of unbounded FIFOs (SyncFIFOBuffered's two-cycle
        fall-through and the branch pipelines otherwise throttle the fork); returns (latency,
        steady-state ii, images the cycle model fed to reach it: ``simulate_dag(steady=True)``)."""
        from qir.stream.cycles import simulate_dag

        def run(k):
            try:
                return simulate_dag(*self.timing_nodes({f.node: f.min_depth + k for f in self.fifos}), steady=True)
            except RuntimeError as e:  # a bug in the depth computation, never the user's input
                raise QirError(f"--io stream: internal error, the stream graph of @{model_name} "
                               f"does not run in the cycle model ({e})") from None

        if not self.fifos:
            return run(0)
        lo, hi = 0, max(f.beats for f in self.fifos) + UNBOUNDED_SLACK
        best = run(hi)
        while lo < hi:
            mid = (lo + hi) // 2
            if run(mid)[:2] == best[:2]:
                hi = mid
            else:
                lo = mid + 1
        for f in self.fifos:
            f.depth = f.min_depth + lo
        return run(lo)


def _info(latency: int, ii: int):
    return (latency, ii) if ii > 1 else latency


def _registered(node: Node) -> int:
    """1 when the stage holds one output beat when stalled (a guaranteed output register): a
    window, a map or join with latency >= 1, a collect or stream_mvu of more than one beat."""
    info = node.info
    if node.kind in ("map", "join"):
        return int((info[0] if isinstance(info, tuple) else info) >= 1)
    if node.kind == "collect":
        return int(info > 1)
    if node.kind == "stream_mvu":
        return int(info[0] > 1)
    return 1


def stage_graph(model, ops=None, timing=None, streamed=None, registers: bool = True,
                fifo_delta: int = 0) -> StageGraph:
    """The stage graph of the stream-level ``model``.

    ``ops``: its stream ops in order (default: every window/map/join/collect/stream_mvu of the
    block); ``timing(op)`` -> (latency, ii) of a map or join (the generator: its built pipeline;
    the planner before lowering: its plan); ``streamed(collect)`` -> cycles per beat when
    ``qir-stream-mvu`` will turn that collect and the dense after it into a ``qir.stream_mvu``
    (planning before lowering), else None; ``registers``: the latencies are the built ones, so
    ``min_depth`` counts the guaranteed output registers between a fork and its join (without,
    none: a FIFO at least as deep); ``fifo_delta`` (tests only) is added to every min_depth."""
    from qir.dialect.stream_ops import CollectOp, JoinOp, MapOp, StreamMvuOp, WindowOp

    kinds = {WindowOp: "window", MapOp: "map", JoinOp: "join", CollectOp: "collect", StreamMvuOp: "stream_mvu"}
    if ops is None:
        ops = [o for o in model.block.ops if type(o) in kinds]
    in_v = model.inputs()[0].result
    g = StageGraph([], beats_in=prod(shape_of(in_v.type)[:-1]),
                   beats_out=prod(shape_of(model.output().outs[0].type)[:-1]))
    need = needs(ops, in_v, g.beats_in)
    src: dict = {}  # value -> the (node, port) still free, one per user
    node_of: dict = {}

    def add(kind, info, ins, op=None, n_out=1) -> int:
        g.nodes.append(Node(kind, info, list(ins), op, n_out))
        return len(g.nodes) - 1

    def provide(v, node):
        users = len(list(v.uses))
        if users <= 1:
            src[v] = [(node, 0)]
            return
        k = add("fork", users, [(node, 0)], n_out=users)
        g.edges.append(((node, 0), (k, 0)))
        src[v] = [(k, p) for p in range(users)]

    def holding(v) -> int:
        h = 0
        while len(list(v.uses)) == 1 and type(v.owner) in kinds:
            h += _registered(g.nodes[node_of[v.owner]])
            if isinstance(v.owner, JoinOp):
                break
            v = v.owner.input
        return h

    provide(in_v, -1)
    for op in ops:
        if isinstance(op, JoinOp):
            pairs = ((op.lhs, op.rhs), (op.rhs, op.lhs))
            depths = []
            for v, other in pairs:
                d = fifo_depth(need[v], need[other], holding(v) if registers else 0)
                depths.append(max(d + fifo_delta, 0) if d else 0)
            k_join = len(g.nodes) + sum(1 for d in depths if d)
            ins = []
            for port, ((v, _), d) in enumerate(zip(pairs, depths)):
                s = src[v].pop(0)
                if d:
                    fk = add("fifo", d, [s], op)
                    g.edges += [(s, (fk, 0)), ((fk, 0), (k_join, port))]
                    g.fifos.append(Fifo(fk, k_join, port, v, len(need[v]), d, d))
                    ins.append((fk, 0))
                else:
                    g.edges.append((s, (k_join, port)))
                    ins.append(s)
            node = add("join", _info(*timing(op)), ins, op)
        else:
            s = src[op.input].pop(0)
            k = len(g.nodes)
            g.edges.append((s, (k, 0)))
            if isinstance(op, WindowOp):
                node = add("window", WindowGeometry(op), [s], op)
            elif isinstance(op, MapOp):
                node = add("map", _info(*timing(op)), [s], op)
            elif isinstance(op, StreamMvuOp):
                node = add("stream_mvu", stream_mvu_timing(op), [s], op)
            else:
                cycles = streamed(op) if streamed is not None else None
                n = collect_geometry(op)[0]
                node = add("collect", n, [s], op) if cycles is None else add("stream_mvu", (n, cycles), [s], op)
        node_of[op] = node
        provide(op.output, node)
    return g
