"""Deprecated location of the reference interpreter; it is the core module ``qir.interp``."""
from qir.interp import (  # noqa: F401  (re-exported)
    Evaluation,
    evaluate,
    evaluate_op,
    evaluate_real,
    impl,
    input_types,
    output_types,
    write_trace,
)
