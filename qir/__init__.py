"""qir: quantized neural networks to bit-exact Verilog through an MLIR-style IR.

Import root of the project; subpackages: ``qir.frontends`` (model importers), ``qir.lowering``
(passes), ``qir.rtl`` (Amaranth/Verilog generation), ``qir.sim`` (reference interpreter and
simulation).  See docs/ARCHITECTURE.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one version source is pyproject.toml
    __version__ = version("qir")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
