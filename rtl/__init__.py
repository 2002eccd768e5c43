"""Lowered qir IR -> deterministic, lint-clean Verilog through Amaranth (see ``qir.rtl.top``)."""
from qir.rtl.top import LINT_WAIVERS, RtlDesign, generate

__all__ = ["LINT_WAIVERS", "RtlDesign", "generate"]
