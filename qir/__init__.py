"""qir: quantized neural networks to bit-exact Verilog through an MLIR-style IR.

Import root of the project; subpackages: ``qir.frontends`` (model importers), ``qir.lowering``
(passes), ``qir.rtl`` (Amaranth/Verilog generation), ``qir.sim`` (reference interpreter and
simulation).  See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
