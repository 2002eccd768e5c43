"""Folding plumbing (issue #12): the ``reuse`` configuration key, ``--reuse``/``--target-ii``/
``--max-luts``, ``qir-fold-auto``'s choice written into net.mlir and report.json, and the round trip
of that choice through a precision configuration."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import qir
from qir.errors import QirError
from qir.flow import compile_model, import_model, run_passes
from qir.ir import layer_of, read_module

DATA = Path(__file__).parent / "data"
Q3 = DATA / "qkeras_3layer" / "qkeras_3layer.json"
Q3_OPTS = {"input_type": qir.Fixed(16, 6), "softmax": "none"}
#: a quick pipeline (multipliers, no adder-graph search) with the folding pass before lowering
QUICK = "qir-infer-widths,qir-fold-auto,qir-lower-dense{style=mac},qir-pipeline"


def run_cli(*args) -> tuple[int, str, str]:
    r = subprocess.run([sys.executable, "-m", "qir.cli", *map(str, args)], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def _reuse(module) -> dict[str, int | None]:
    from qir.dialect import ConvOp, DenseOp

    return {layer_of(o): (o.attributes["reuse"].value.data if "reuse" in o.attributes else None)
            for o in module.walk() if isinstance(o, (DenseOp, ConvOp))}


def _op(tmp_path, layer):
    """The imported, width-inferred dense op of ``layer`` in the jet tagger."""
    from qir.dialect import DenseOp

    net = import_model(Q3, **Q3_OPTS)
    run_passes(net, "qir-infer-widths")
    return next(o for o in net.walk() if isinstance(o, DenseOp) and layer_of(o) == layer)


def _config(tmp_path, data) -> Path:
    f = tmp_path / "cfg.json"
    f.write_text(json.dumps(data))
    return f


# ------------------------------------------------------------------------------ the configuration key
def test_reuse_key_pins_layers_and_null_leaves_them(tmp_path):
    cfg = _config(tmp_path, {"default": {"reuse": 2}, "layers": {"fc2": {"reuse": 8}, "fc3": {"reuse": None}}})
    net = import_model(Q3, precision=qir.PrecisionConfig.load(cfg), **Q3_OPTS)
    assert _reuse(net) == {"fc1": 2, "fc2": 8, "fc3": 2, "output": 2}
    text = qir.Design(net).to_mlir()
    assert 'layer = "fc2", reuse = 8 : i64' in text
    net = import_model(Q3, precision=qir.PrecisionConfig.load(_config(tmp_path, {"layers": {"fc3": {"reuse": None}}})),
                       **Q3_OPTS)
    assert _reuse(net) == dict.fromkeys(("fc1", "fc2", "fc3", "output"))


@pytest.mark.parametrize("entry, needle", [
    ({"layers": {"fc1": {"reuse": 0}}}, "layers: 'fc1': reuse 0 is not a positive integer"),
    ({"layers": {"fc1": {"reuse": -3}}}, "layers: 'fc1': reuse -3 is not a positive integer"),
    ({"layers": {"fc1": {"reuse": "4"}}}, "layers: 'fc1': reuse '4' is not a positive integer"),
    ({"layers": {"fc1": {"reuse": 2.5}}}, "layers: 'fc1': reuse 2.5 is not a positive integer"),
    ({"layers": {"fc1": {"reuse": True}}}, "layers: 'fc1': reuse True is not a positive integer"),
    ({"default": {"reuse": 0}}, "default: reuse 0 is not a positive integer"),
    ({"layers": {"relu1": {"reuse": 4}}}, "layer 'relu1' has reuse 4 but the model has no dense or conv layer"),
    ({"layers": {"fc9": {"reuse": 4}}}, "layer 'fc9' has reuse 4 but the model has no dense or conv layer"),
])
def test_bad_reuse_entries_are_one_error_line(tmp_path, entry, needle):
    cfg = _config(tmp_path, entry)
    rc, out, err = run_cli("compile", Q3, "-o", tmp_path / "o", "--input-type", "fixed<16,6>", "--softmax", "none",
                           "--precision-config", cfg)
    assert rc == 1 and not (tmp_path / "o").exists()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"qir: error: {cfg}") and needle in err, err


@pytest.mark.parametrize("args, needle", [
    (["--reuse", "0"], "--reuse 0 is not a positive integer"),
    (["--target-ii", "-2"], "--target-ii -2 is not a positive integer (cycles"),
    (["--max-luts", "0"], "--max-luts 0 is not a positive integer (LUTs"),
    (["--reuse", "2", "--max-luts", "1000"], "give one of --reuse, --target-ii, --max-luts"),
    (["--target-ii", "4", "--pipeline", "qir-infer-widths,qir-lower-dense{style=mac},qir-pipeline"],
     "--target-ii needs qir-fold-auto in the pass pipeline"),
    (["--max-luts", "10", "--pipeline", QUICK], "qir-fold-auto: max-luts=10 is impossible"),
])
def test_bad_folding_options_are_one_error_line(tmp_path, args, needle):
    rc, out, err = run_cli("compile", Q3, "-o", tmp_path / "o", "--input-type", "fixed<16,6>", "--softmax", "none",
                           *args)
    assert rc == 1 and not (tmp_path / "o").exists()
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err


# ------------------------------------------------------------------------------ the automatic choice
def test_target_ii_choice_in_net_report_and_config_round_trip(tmp_path):
    rep = compile_model(Q3, tmp_path / "a", pipeline=QUICK, target_ii=4, **Q3_OPTS)
    fold = rep["folding"]
    # parallel form: cycles = R; every layer folded as far as the target allows, unless a smaller R
    # is smaller and faster (the dominance rule: fc2, fc3 and output take 6-bit inputs, three
    # digit-serial digits of 2 bits at R = 3, which R = 4 prices the same; fc1's 16-bit input is
    # four digits of 4 bits at R = 4)
    chosen = {r["layer"]: r["reuse"] for r in fold["layers"]}
    assert chosen == {"fc1": 4, "fc2": 3, "fc3": 3, "output": 3}
    assert {r["layer"]: r["implementation"].split()[0] for r in fold["layers"]} == {
        "fc1": "digitserial", "fc2": "digitserial", "fc3": "digitserial", "output": "digitserial"}
    for row in fold["layers"]:
        if row["reuse"] < 4:
            assert row["estimate"]["lut"] <= qir.folding.estimate(_op(tmp_path, row["layer"]), 4)["lut"]
    assert fold["ii_cycles_estimate"] == 4
    for row in fold["layers"]:
        assert row["cycles"] == row["reuse"] and row["implementation"] and row["estimate"]["lut"] > 0
    assert fold["luts_estimate"] == sum(r["estimate"]["lut"] for r in fold["layers"])
    on_disk = json.loads((tmp_path / "a" / "report.json").read_text())
    assert on_disk["folding"] == fold
    net = read_module(tmp_path / "a" / "net.mlir")
    assert _reuse(net) == chosen
    # copied into a precision configuration, the choice pins the layers: the same design without a target
    cfg = _config(tmp_path, {"layers": {r["layer"]: {"reuse": r["reuse"]} for r in fold["layers"]}})
    rep_b = compile_model(Q3, tmp_path / "b", pipeline=QUICK, precision=qir.PrecisionConfig.load(cfg), **Q3_OPTS)
    assert rep_b["folding"] == fold
    for f in ("net.mlir", "lowered.mlir"):
        assert (tmp_path / "a" / f).read_text() == (tmp_path / "b" / f).read_text(), f
    # and net.mlir itself compiles to the same choice; a pinned layer is kept under a new target
    rep_c = compile_model(tmp_path / "a" / "net.mlir", tmp_path / "c", pipeline=QUICK, target_ii=16)
    assert {r["layer"]: r["reuse"] for r in rep_c["folding"]["layers"]} == chosen


def test_max_luts_picks_the_fastest_fitting_choice():
    from qir.lowering.fold_auto import Planner, foldable_layers

    net = import_model(Q3, **Q3_OPTS)
    run_passes(net, "qir-infer-widths")
    plan = Planner(*foldable_layers(net))
    full = plan.luts(plan.for_target(1))
    budget = full // 3
    low = net.clone()
    run_passes(low, f"qir-fold-auto{{max-luts={budget}}}")
    rs = [r for r in _reuse(low).values()]
    ii = plan.ii(rs)
    assert plan.luts(rs) <= budget < full
    assert plan.luts(plan.for_target(ii - 1)) > budget  # one cycle faster does not fit
    assert rs == plan.for_target(ii)


def test_stream_target_ii_counts_beats(tmp_path):
    """--io stream: a conv's kernel processes one beat per output position, so R = target // beats;
    the dense after the flatten consumes its 16 beats (qir-stream-mvu): R = 64 // 16."""
    from qir.lowering import STREAM_PIPELINE

    text = (Path(__file__).parent / "filecheck" / "lowering" / "fold_auto.mlir").read_text()
    (tmp_path / "fa.mlir").write_text(text)
    net = read_module(tmp_path / "fa.mlir")
    run_passes(net, STREAM_PIPELINE.split(",qir-fold-auto")[0] + ",qir-fold-auto{target-ii=64}")
    # the kernel and the streamed dense (16 beats each) may take R <= 64 // 16 = 4; the kernel's
    # folded forms are all bigger than R = 1 (fold_auto.mlir: two outputs, so two phases at most,
    # which cost more than the unfolded graph; ROMs of 122+ LUTs), the dense's R = 2 is smaller than
    # 3 and 4 (the dominance rule)
    assert _reuse(net) == {"c1": 1, "fc": 2}


def test_api_compile_takes_the_folding_options(tmp_path):
    d = qir.convert(Q3, input_type="fixed<16,6>", softmax="none")
    rep = d.compile(tmp_path / "x", pipeline=QUICK, reuse=3)
    assert [r["reuse"] for r in rep["folding"]["layers"]] == [3, 3, 3, 3]
    with pytest.raises(QirError, match="give one of --reuse, --target-ii, --max-luts"):
        d.compile(tmp_path / "y", pipeline=QUICK, reuse=3, target_ii=5)


def test_folding_estimate_fast_path_matches_the_exact_one(monkeypatch):
    """qir.folding's int64 fast path (multi-million-weight layers, issue #12) gives the same
    figures as the Python-integer path."""
    import numpy as np

    import qir.folding as fo

    rng = np.random.default_rng(4)
    cases = [rng.integers(-9, 9, size=(37, 5)), rng.choice([-4, 0, 2, 8], size=(20, 3)),
             rng.choice([-1, 1], size=(16, 4)) * 4, np.zeros((3, 2), dtype=int)]
    fast = [(fo.weight_bits(m.astype(object), st), fo.acc_range(m.astype(object), np.arange(m.shape[1]), -128, 127),
             fo.auto_fold_style(m)) for m in cases for st in ("mac", "po2", "ternary")]
    monkeypatch.setattr(fo, "_int64", lambda m: None)
    slow = [(fo.weight_bits(m.astype(object), st), fo.acc_range(m.astype(object), np.arange(m.shape[1]), -128, 127),
             fo.auto_fold_style(m)) for m in cases for st in ("mac", "po2", "ternary")]
    assert fast == slow


def test_large_constants_fast_paths_match_the_exact_ones():
    """int_elements packs numpy bytes (a 2M-weight layer imported in ~20 s through xDSL's
    from_list) and dense_bounds sums in int64 where exact: both equal the Python-integer forms."""
    import numpy as np
    from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerType, TensorType

    from qir.dialect.types import dense_bounds, int_elements
    from qir.fixed import Fixed

    rng = np.random.default_rng(0)
    for arr in (rng.integers(-2**31, 2**31, size=(7, 5)), rng.integers(-2**40, 2**40, size=(3,)),
                np.array([[5]]), np.array([-1, 0, 1], dtype=object) * 2**62):
        a = int_elements(arr)
        t = TensorType(IntegerType(a.get_element_type().width.data), list(np.shape(arr)))
        assert a == DenseIntOrFPElementsAttr.from_list(t, [int(v) for v in np.ravel(arr)])
    w, off, t = rng.integers(-50, 50, size=(40, 7)), rng.integers(-9, 9, size=7), Fixed(8, 3)
    lo, hi = np.full(40, t.min_int, dtype=object), np.full(40, t.max_int, dtype=object)
    a, b = lo[:, None] * w.astype(object), hi[:, None] * w.astype(object)
    got = dense_bounds(t, w, off)
    assert list(got[0]) == list(np.minimum(a, b).sum(axis=0) + off) and got[0].dtype == object
    assert list(got[1]) == list(np.maximum(a, b).sum(axis=0) + off)


def test_max_luts_bounds_the_whole_stream_design(tmp_path):
    """--max-luts holds for qir report's estimate of the whole design (window, collect, layers),
    not only the folded layers' plan: one LUT less than the fastest design's estimate folds more."""
    from qir.report import report

    src = tmp_path / "dom.mlir"  # a 32 -> 3 dense: unfolded is fastest, folded by 32 smallest
    src.write_text((Path(__file__).parent / "filecheck" / "lowering" / "fold_auto_dominance.mlir").read_text())
    fast = compile_model(src, tmp_path / "a", io="stream", max_luts=10**9)
    full = report(tmp_path / "a")["estimate"]["luts_estimate"]
    rep = compile_model(src, tmp_path / "b", io="stream", max_luts=full - 1)
    assert report(tmp_path / "b")["estimate"]["luts_estimate"] <= full - 1
    assert rep["folding"]["design_luts_estimate"] <= full - 1
    assert rep["folding"]["ii_cycles_estimate"] > fast["folding"]["ii_cycles_estimate"]


def test_too_wide_flatten_beat_is_one_error_line(tmp_path):
    """Issue #12: a flatten whose one beat exceeds an Amaranth signal (2^16 - 1 bits) was an
    internal AssertionError deep in Amaranth after minutes of RTL generation; now one error."""
    src = tmp_path / "wide.mlir"
    src.write_text("""qir.model @wide {
  %0 = qir.input "x" : tensor<4097x16x!qir.fixed<1,1>>
  %1 = qir.reshape %0 {layer = "flat"} : tensor<4097x16x!qir.fixed<1,1>> -> tensor<65552x!qir.fixed<1,1>>
  qir.output %1 : tensor<65552x!qir.fixed<1,1>>
}
""")
    rc, out, err = run_cli("compile", src, "-o", tmp_path / "o", "--io", "stream")
    assert rc == 1 and not (tmp_path / "o").exists() and err.count("\n") == 1, err
    assert "the flatten of layer 'flat' is one beat of 4097 x 16 = 65552 bits" in err


def _stream_ii(low) -> int:
    from qir.rtl.stream_top import generate_stream

    from qir.ir import get_model

    return generate_stream(get_model(low), convert=False).stream["ii_cycles"]


@pytest.mark.parametrize("target", [40, 100])
def test_target_ii_is_the_cycle_models_ii(target):
    """Issue #12: the planner counted beats x R per layer, but a window and the folded map after it
    stall each other and a window over a padded map walks more steps than it emits: KERAS_conv1d_small
    (10 beats per conv, same padding) at target 40 got R = 4, 4, 4 and a cycle-model II of 43.  Now
    the II the planner reports is the cycle model's (what qir sim checks the RTL against), and it
    meets the target."""
    from qir.lowering import STREAM_PIPELINE
    from qir.lowering.fold_auto import Planner, foldable_layers

    from qir.flow import _lower

    f16 = qir.Fixed(16, 6)
    net = import_model(DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json", input_type=f16, precision=f16,
                       softmax="none")
    old = net.clone()
    run_passes(old, "qir-infer-widths,qir-stream-conv,qir-stream-form")
    plan = Planner(*foldable_layers(old), old)
    if target == 40:  # the old rule's plan stalls: beats x R = 40, the cycle model 43
        naive = [max(1, min(lay.max_reuse, target // lay.beats)) for lay in plan.layers]
        assert plan.layer_ii(naive) == 40 and plan.ii(naive) == 43
    _, low, folding, _ = _lower(net, STREAM_PIPELINE, None, target, None)
    assert folding["ii_cycles_estimate"] == _stream_ii(low) <= target
    assert folding["ii_cycles_layers"] <= folding["ii_cycles_estimate"]


def test_max_luts_reports_the_cycle_models_ii():
    from qir.lowering import STREAM_PIPELINE

    from qir.flow import _lower

    f16 = qir.Fixed(16, 6)
    net = import_model(DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json", input_type=f16, precision=f16,
                       softmax="none")
    _, low, folding, _ = _lower(net, STREAM_PIPELINE, None, None, 2500)
    assert folding["design_luts_estimate"] <= 2500
    assert folding["ii_cycles_estimate"] == _stream_ii(low)


def test_impossible_target_under_the_cycle_model_names_the_closest():
    """A target the layers' beats x R allow but the window/map interplay does not is one error
    naming the closest achievable II (KERAS_conv1d_small with its convs pinned at R = 4: 40 cycles
    per layer, 43 in the cycle model)."""
    from xdsl.dialects.builtin import IntegerAttr, i64

    from qir.dialect import DenseOp

    f16 = qir.Fixed(16, 6)
    net = import_model(DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json", input_type=f16, precision=f16,
                       softmax="none")
    run_passes(net, "qir-infer-widths,qir-stream-conv,qir-stream-form")
    for o in net.walk():
        if isinstance(o, DenseOp) and layer_of(o).startswith("conv"):
            o.attributes["reuse"] = IntegerAttr(4, i64)
    with pytest.raises(QirError, match=r"target II 40 cycles is impossible: even the fastest folding has an II "
                                       r"of 43 cycles in the stream cycle model"):
        run_passes(net, "qir-fold-auto{target-ii=40}")
    run_passes(net, "qir-fold-auto{target-ii=43}")


def test_cycle_model_ii_counts_the_slow_stage_behind_buffers():
    """The cycle model measured the II at the input only: with a slow folded layer (latency > II)
    behind a window and a flatten, the input runs ahead for many images and the first input beats
    came 20 cycles apart while an image left every 40 (KERAS_conv1d at --target-ii 6100 after
    folding over outputs: report.json said 5,921, fc1 takes 6,052).  The II is now the larger of
    the input and output intervals (``steady_ii``, also what qir sim measures on the RTL)."""
    from types import SimpleNamespace

    from qir.stream.cycles import simulate, steady_ii

    g = SimpleNamespace(Hp=1, Wp=20, interior_row=lambda y: True, interior_col=lambda x: True,
                        emit_row=lambda y: True, emit_col=lambda x: 9 <= x < 20)
    assert simulate([("window", g), ("map", 1), ("collect", 11), ("map", (100, 40))], 20, 1)[1] == 40
    assert steady_ii([0, 20, 40, 60], [100, 140, 180, 220]) == 40


@pytest.mark.parametrize("option", [{"target_ii": 40}, {"target_ii": 100}, {"max_luts": 2500}])
def test_cycle_model_chain_fast_path_equals_the_dag_walk(monkeypatch, option):
    """The planner's stream cycle model walks a chain of one-input stages on their scalar
    valid/ready (``qir.stream.cycles.CHAIN_FAST``, the planning of a many-conv CNN spent minutes
    in the DAG walk's per-port lists): on every graph the planner simulates for KERAS_conv1d_small
    (windows over padded maps, folded maps, a collect), the fast path gives the DAG walk's
    (latency, II, images) and the chain model's (``simulate``), and the plan is the same."""
    from qir.lowering import STREAM_PIPELINE, fold_auto

    from qir.flow import _lower
    from qir.stream import cycles

    f16 = qir.Fixed(16, 6)
    src = DATA / "keras_conv1d_small" / "KERAS_conv1d_small.json"
    graphs, real = [], cycles.simulate_dag

    def record(*a, **k):
        graphs.append((a, k))
        return real(*a, **k)

    plans = []
    for fast in (True, False):
        monkeypatch.setattr(cycles, "CHAIN_FAST", fast)
        monkeypatch.setattr(cycles, "simulate_dag", record)
        monkeypatch.setattr(fold_auto, "_SIMULATED", {})
        net = import_model(src, input_type=f16, precision=f16, softmax="none")
        _, low, folding, _ = _lower(net, STREAM_PIPELINE, None, option.get("target_ii"), option.get("max_luts"))
        plans.append(([row["reuse"] for row in folding["layers"]], folding["ii_cycles_estimate"]))
    monkeypatch.setattr(cycles, "simulate_dag", real)
    assert plans[0] == plans[1]
    chains = 0
    for a, k in graphs:
        nodes = a[0]
        monkeypatch.setattr(cycles, "CHAIN_FAST", True)
        got = real(*a, **k)
        monkeypatch.setattr(cycles, "CHAIN_FAST", False)
        assert got == real(*a, **k)
        if all(list(ins) == [(i - 1, 0)] for i, (_, _, ins) in enumerate(nodes)):
            chains += 1
            assert cycles.simulate([(kind, info) for kind, info, _ in nodes], a[2], a[3],
                                   images=got[2])[1] == got[1]
    assert chains >= 2
