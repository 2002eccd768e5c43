"""The adder-graph search alone (``qir-lower-cmvm``'s ``graph_for``), per constant-matrix layer.

    .venv/bin/python bench/search_speed.py [--models qkeras_3layer,qcnn28,...] [--target xilinx]
                                           [--json OUT.json]

Each model is imported and run through its pipeline up to ``qir-lower-cmvm`` (``--io stream``
models through ``STREAM_PIPELINE``, whose kernels live in ``qir.map`` bodies); then every
``qir.cmvm`` the pass would lower is searched in this process and timed in CPU seconds
(``time.process_time``, so children of a parallel search are not counted: ``--jobs 1`` is the
fair comparison; the whole-compile figures are ``bench/compile_scaling.py``'s).  Printed per
layer: shape, CPU s, adders, adder bits (``AdderGraph.cost``), LUT bits (``lut_bits``), the
target's cost, depth and a digest of the graph (the node and output arrays), so a change of the
search that must not change the hardware shows the same digests.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

DEFAULT = "qkeras_3layer,qcnn28,conv16x16,mlp_64_128_64_10,qkeras_mnist_dense"


def _prefix(pipeline: str) -> str:
    return pipeline.split(",qir-lower-cmvm")[0]


def model_ir(name: str, work: Path):
    from qir.lowering import DEFAULT_PIPELINE, STREAM_PIPELINE

    from qir.fixed import Fixed
    from qir.flow import import_model, run_passes

    if name == "qcnn28":
        from stream_qcnn28 import write_model

        mod = import_model(write_model(work))
        return run_passes(mod, _prefix(STREAM_PIPELINE))
    if name == "conv16x16":  # the 3x3 16->16 conv of bench/stream_scaling.py: a 144x16 kernel
        from stream_scaling import conv_ir

        from qir.ir import parse_module

        return run_passes(parse_module(conv_ir(32, 32, 16, 16)), _prefix(STREAM_PIPELINE))
    from compile_scaling import model_spec

    path, it = model_spec(name, work)
    mod = import_model(path, input_type=Fixed.parse(it), softmax="none")
    return run_passes(mod, _prefix(DEFAULT_PIPELINE))


def cmvm_ops(module):
    from qir.dialect import ADDERGRAPH_STYLES, CmvmOp

    return [o for o in module.walk() if isinstance(o, CmvmOp) and o.style.data in ADDERGRAPH_STYLES]


def digest(g) -> str:
    from qir.addergraph import to_arrays

    nodes, outs, off = to_arrays(g)
    h = hashlib.sha256(nodes.tobytes() + outs.tobytes() + repr(off.tolist()).encode())
    return h.hexdigest()[:12]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="adder-graph search CPU time and result per layer")
    ap.add_argument("--models", default=DEFAULT)
    ap.add_argument("--target", default="xilinx")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    from qir.lowering.adder_graph import target_cost
    from qir.lowering.lower_cmvm import graph_for

    from qir.ir import layer_of

    rows = []
    with tempfile.TemporaryDirectory(prefix="search_speed_") as tmp:
        for name in a.models.split(","):
            (Path(tmp) / name).mkdir()
            mod = model_ir(name, Path(tmp) / name)
            for op in cmvm_ops(mod):
                shape = "x".join(str(v) for v in op.matrix.type.get_shape())
                c0 = time.process_time()
                g = graph_for(op, target=a.target)
                cpu = time.process_time() - c0
                rows.append({"model": name, "layer": layer_of(op) or "?", "shape": shape, "cpu_s": round(cpu, 2),
                             "adders": g.n_adders, "adder_bits": g.cost(), "lut_bits": g.lut_bits(),
                             "cost": target_cost(g, a.target), "depth": g.max_depth(), "digest": digest(g)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    head = ["model", "layer", "shape", "cpu_s", "adders", "adder_bits", "lut_bits", "cost", "depth", "digest"]
    lines = [head] + [[str(r[k]) for k in head] for r in rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in lines))
    tot = sum(r["cpu_s"] for r in rows)
    print(f"total search CPU s: {tot:.2f}; LUT bits {sum(r['lut_bits'] for r in rows):,}; "
          f"{a.target} cost {sum(r['cost'] for r in rows):,}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
