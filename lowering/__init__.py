"""qir passes, one module each; ``get_all_passes()`` maps CLI names to lazy pass factories."""
from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    def infer_widths():
        from qir.lowering.infer_widths import InferWidths
        return InferWidths

    def lower_dense():
        from qir.lowering.lower_dense import LowerDense
        return LowerDense

    def pipeline():
        from qir.lowering.pipeline import Pipeline
        return Pipeline

    def lower_cmvm():
        from qir.lowering.lower_cmvm import LowerCmvm
        return LowerCmvm

    def fold_threshold():
        from qir.lowering.fold_threshold import FoldThreshold
        return FoldThreshold

    def lower_conv():
        from qir.lowering.lower_conv import LowerConv
        return LowerConv

    def stream_conv():
        from qir.lowering.stream_conv import StreamConv
        return StreamConv

    def stream_form():
        from qir.lowering.stream_form import StreamForm
        return StreamForm

    def stream_mvu():
        from qir.lowering.stream_mvu import StreamMvu
        return StreamMvu

    def fold_auto():
        from qir.lowering.fold_auto import FoldAuto
        return FoldAuto

    return {
        "qir-fold-auto": fold_auto,
        "qir-stream-mvu": stream_mvu,
        "qir-stream-conv": stream_conv,
        "qir-stream-form": stream_form,
        "qir-infer-widths": infer_widths,
        "qir-lower-conv": lower_conv,
        "qir-lower-dense": lower_dense,
        "qir-pipeline": pipeline,
        "qir-lower-cmvm": lower_cmvm,
        "qir-fold-threshold": fold_threshold,
    }


#: What ``qir compile`` runs between the imported IR and RTL generation: exact widths, every conv and
#: average pool as a constant matrix on the flattened tensor, every dense/conv/pool
#: layer as a shared adder graph (po2 / ternary / cmvm chosen from its weights; no multipliers)
#: or, for binary weights on a provably two-valued input, XNOR + popcount with a following
#: batchnorm/sign folded into thresholds; relu/quantize fused into adder graphs, and registers
#: every 5 adder levels.  ``qir-fold-auto`` (no options: nothing) is where ``qir compile --reuse``,
#: ``--target-ii`` and ``--max-luts`` choose each layer's reuse factor (issue #12).
DEFAULT_PIPELINE = ("qir-infer-widths,qir-fold-auto,qir-lower-conv{style=auto},qir-lower-dense{style=auto},"
                    "qir-fold-threshold,qir-lower-cmvm,qir-pipeline{max-depth=5}")

#: ``qir compile --io stream``: exact widths, conv/pool as window + one reused kernel datapath
#: (qir-stream-conv), the rest in stream form (qir-stream-form), then the same per-layer lowering
#: and pipelining inside every ``qir.map`` body as for a parallel design; a folded dense on a
#: flattened stream consumes it beat by beat (qir-stream-mvu).
STREAM_PIPELINE = ("qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto,qir-stream-mvu,"
                   "qir-lower-dense{style=auto},"
                   "qir-fold-threshold,qir-lower-cmvm,qir-pipeline{max-depth=5}")
