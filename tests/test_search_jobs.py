"""The adder-graph search of ``qir-lower-cmvm``: a matrix the planner (``qir-fold-auto``) already
searched in the same compile is not searched again, and layers are searched in forked worker
processes with the same result as in one process (issue #13)."""
from __future__ import annotations

from pathlib import Path

import pytest
from qir.lowering import lower_cmvm

import qir
from qir.flow import import_model, run_passes

Q3 = Path(__file__).parent / "data" / "qkeras_3layer" / "qkeras_3layer.json"
LOWER = "qir-infer-widths,qir-lower-dense{style=auto},qir-lower-cmvm"


def _net():
    return import_model(Q3, input_type=qir.Fixed(16, 6), softmax="none")


@pytest.fixture
def counted(monkeypatch):
    """Counts the searches run in this process; starts with empty caches (planner and graphs)."""
    from qir.lowering import fold_auto

    calls = []
    real = lower_cmvm.build

    def build(m, *a, **k):
        calls.append(m.shape)
        return real(m, *a, **k)
    monkeypatch.setattr(lower_cmvm, "build", build)
    monkeypatch.setattr(lower_cmvm, "_GRAPHS", type(lower_cmvm._GRAPHS)())
    monkeypatch.setattr(fold_auto, "_UNFOLDED", {})
    monkeypatch.setenv("QIR_SEARCH_JOBS", "1")
    return calls


def test_planner_and_lowering_search_each_matrix_once(counted):
    net = _net()
    run_passes(net, "qir-infer-widths,qir-fold-auto{max-luts=40000},qir-lower-dense{style=auto},qir-lower-cmvm")
    # max-luts=40000 leaves every layer at R = 1 after pricing it with the search: four layers,
    # one search each (eight before the planner's graphs were kept)
    assert sorted(counted) == [(16, 64), (32, 5), (32, 32), (64, 32)]
    assert len(list(o for o in net.walk() if o.name == "qir.addergraph")) == 4
    shared = str(net)
    lower_cmvm._GRAPHS.clear()  # the same compile, searched again from scratch: the same text
    again = _net()
    run_passes(again, "qir-infer-widths,qir-fold-auto{max-luts=40000},qir-lower-dense{style=auto},qir-lower-cmvm")
    assert str(again) == shared


def test_graph_cache_is_bounded(counted, monkeypatch):
    monkeypatch.setattr(lower_cmvm, "CACHE_TOTAL_ENTRIES", 16 * 64 + 32 * 5)
    net = _net()
    run_passes(net, LOWER)  # searched in this process: cached, least recently used dropped first
    assert sum(e for e, _ in lower_cmvm._GRAPHS.values()) <= 16 * 64 + 32 * 5
    assert len(counted) == 4


def _single_threaded(monkeypatch):
    """``qir.jobs.fork_workers`` never forks from a process with other Python threads; in the
    whole suite some earlier test (a library) leaves one alive, which made the fork tests below
    pass or fail with the test order.  They test the choice and the forked search as in a
    single-threaded ``qir compile``; ``test_no_fork_with_other_threads`` tests the guard."""
    import threading

    monkeypatch.setattr(threading, "active_count", lambda: 1)


def test_no_fork_with_other_threads(monkeypatch):
    import threading

    monkeypatch.setenv("QIR_SEARCH_JOBS", "2")
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert lower_cmvm.search_workers(4, 10 ** 6) == 1
    _single_threaded(monkeypatch)
    assert lower_cmvm.search_workers(4, 10 ** 6) == 2


def test_layers_searched_in_workers_give_the_same_ir(monkeypatch):
    _single_threaded(monkeypatch)
    monkeypatch.setattr(lower_cmvm, "_GRAPHS", type(lower_cmvm._GRAPHS)())
    monkeypatch.setenv("QIR_SEARCH_JOBS", "1")
    one = _net()
    run_passes(one, LOWER)
    lower_cmvm._GRAPHS.clear()
    monkeypatch.setenv("QIR_SEARCH_JOBS", "2")
    assert lower_cmvm.search_workers(4, 0) == 2
    two = _net()
    run_passes(two, LOWER)
    assert str(two) == str(one)
    assert not lower_cmvm._JOBS


def test_search_workers_choice(monkeypatch):
    _single_threaded(monkeypatch)
    monkeypatch.delenv("QIR_SEARCH_JOBS", raising=False)
    assert lower_cmvm.search_workers(4, lower_cmvm.MIN_PARALLEL_WEIGHTS - 1) == 1  # small: no fork
    assert lower_cmvm.search_workers(1, 10 ** 6) == 1  # one layer: searched here
    monkeypatch.setenv("QIR_SEARCH_JOBS", "3")
    assert lower_cmvm.search_workers(2, 0) == 2  # at most one per layer
    monkeypatch.setenv("QIR_SEARCH_JOBS", "1")
    assert lower_cmvm.search_workers(4, 10 ** 6) == 1
