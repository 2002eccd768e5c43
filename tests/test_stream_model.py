"""The stream cycle model and stage graph in the core (``qir.stream``, issue #12 layering): pure
Python, no Amaranth; one builder for the planner (before lowering) and the generator."""
from __future__ import annotations

import subprocess
import sys

from test_stream import CNN1D, RESIDUAL

from qir.flow import run_passes
from qir.ir import get_model, parse_module


def test_the_core_model_imports_no_amaranth():
    """qir-fold-auto (lowering/) plans with it, so it must not pull in the hardware layer."""
    code = ("import sys; import qir.stream.cycles, qir.stream.geometry, qir.stream.graph, qir.lowering.fold_auto; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth' or m.startswith('qir.rtl')); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _stream(text: str, upto: str = "qir-stream-form"):
    return run_passes(parse_module(text), "qir-infer-widths,qir-stream-conv," + upto)


def test_window_geometry_walks_the_padded_map():
    """CNN1D: length 9, kernel 3, same padding (1, 1): 11 steps, 9 interior, 9 windows, the first
    emitted at step 2 after 2 input beats (needs), the last after all 9."""
    from qir.dialect.stream_ops import WindowOp
    from qir.stream.geometry import WindowGeometry, needs

    model = get_model(_stream(CNN1D))
    win = next(o for o in model.block.ops if isinstance(o, WindowOp))
    g = WindowGeometry(win)
    assert (g.Hp, g.Wp, g.steps, g.OH, g.OW, g.memory_bits) == (1, 11, 11, 1, 9, 0)
    assert [x for x in range(g.Wp) if g.interior_col(x)] == list(range(1, 10))
    assert [x for x in range(g.Wp) if g.emit_col(x)] == list(range(2, 11))
    need = needs([win], model.inputs()[0].result, 9)
    assert need[win.output] == [2, 3, 4, 5, 6, 7, 8, 9, 9]


def test_one_builder_for_planner_and_generator():
    """RESIDUAL (x + conv3x3(x)): the graph is fork, window, map, FIFO, join with the identity branch
    buffered, min_depth W + 1 = 7 beats (tests/test_stream.py; nothing between the fork and the join
    holds a beat).  The unbounded FIFO the planner uses reaches the II of the sized one the
    generator builds; one beat less than min_depth deadlocks."""
    from qir.stream.cycles import simulate_dag
    from qir.stream.graph import UNBOUNDED_SLACK, stage_graph

    model = get_model(_stream(RESIDUAL))
    built = stage_graph(model, timing=lambda op: (2, 1))
    planned = stage_graph(model, timing=lambda op: (1, 1), registers=False)
    for g in (built, planned):
        assert [n.kind for n in g.nodes] == ["fork", "window", "map", "fifo", "join"]
        assert [n.ins for n in g.nodes] == [[(-1, 0)], [(0, 0)], [(1, 0)], [(0, 1)], [(3, 0), (2, 0)]]
        assert g.edges == [((-1, 0), (0, 0)), ((0, 0), (1, 0)), ((1, 0), (2, 0)), ((0, 1), (3, 0)),
                           ((3, 0), (4, 0)), ((2, 0), (4, 1))]
        (f,) = g.fifos
        assert (f.node, f.join, f.port, f.beats) == (3, 4, 0, 30)
    assert (built.fifos[0].min_depth, planned.fifos[0].min_depth) == (7, 7)
    assert planned.unbounded_depths() == {3: 7 + 30 + UNBOUNDED_SLACK}
    latency, ii, images = built.size_fifos("res")
    assert built.fifos[0].depth >= 7 and ii == 56 == simulate_dag(*planned.timing_nodes(planned.unbounded_depths()),
                                                                  steady=True)[1]
    # one beat less than min_depth deadlocks the cycle model at full rate
    import pytest

    with pytest.raises(RuntimeError, match="deadlock"):
        simulate_dag(*stage_graph(model, timing=lambda op: (2, 1), fifo_delta=-1).timing_nodes())


def test_streamed_collect_is_a_stream_mvu_stage():
    """Before lowering, the planner sees the collect that qir-stream-mvu will replace as the stream_mvu
    stage it becomes (beats, cycles per beat); the generator sees the qir.stream_mvu op itself."""
    from test_stream import CNN

    from qir.stream.graph import stage_graph

    model = get_model(_stream(CNN))
    g = stage_graph(model, timing=lambda op: (1, 1), streamed=lambda col: 3)
    assert [(n.kind, n.info) for n in g.nodes if n.kind in ("collect", "stream_mvu")] == [("stream_mvu", (4, 3))]
    g = stage_graph(model, timing=lambda op: (1, 1))
    assert [(n.kind, n.info) for n in g.nodes if n.kind in ("collect", "stream_mvu")] == [("collect", 4)]


def test_fifo_depth_corners():
    from qir.stream.geometry import fifo_depth

    assert fifo_depth([1, 2, 3], [1, 2, 3], 0) == 0          # in step: no FIFO
    assert fifo_depth([1, 2, 3], [3, 3, 3], 0) == 2          # the other waits for all: 2 wait (the fork keeps 1)
    assert fifo_depth([1, 2, 3], [3, 3, 3], 1) == 1          # one held in a stage register
    assert fifo_depth([1, 2, 3], [3, 3, 3], 5) == 0
    assert fifo_depth([], [], 0) == 0


def test_min_depth_counts_registers_only_when_latencies_are_built(tmp_path):
    """The Add branch net of tests/test_stream.py: the FIFO'd branch is a 1x1 window and its map
    (latency 2 here), two guaranteed output registers, so the generator's min_depth is 2 below the
    planner's, which counts none before lowering (a FIFO at least as deep)."""
    from qir.frontends.keras import import_keras
    from test_stream import _qkeras_branches

    from qir.stream.graph import stage_graph

    module = import_keras(_qkeras_branches(tmp_path, "Add"))
    model = get_model(run_passes(module, "qir-infer-widths,qir-stream-conv,qir-stream-form"))
    built, planned = (stage_graph(model, timing=lambda op: (2, 1), registers=r) for r in (True, False))
    assert [(f.port, f.beats, f.min_depth) for f in built.fifos] == [(0, 42, 6)]
    assert [(f.port, f.beats, f.min_depth) for f in planned.fifos] == [(0, 42, 8)]
