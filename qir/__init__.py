"""qir: quantized neural networks to bit-exact Verilog through an MLIR-style IR.

Import root of the project; subpackages: ``qir.frontends`` (model importers), ``qir.lowering``
(passes), ``qir.rtl`` (Amaranth/Verilog generation), ``qir.sim`` (reference interpreter and
simulation).  See docs/ARCHITECTURE.md.

The Python API (docs/python-api.md) is re-exported here lazily, so ``import qir`` stays fast
and imports neither xDSL, Amaranth nor Keras::

    design = qir.convert(model)          # a file path, a keras.Model or an onnx.ModelProto
    design.predict(x); design.compare(model, x); design.profile(x, "prof/"); design.compile("out")
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one version source is pyproject.toml
    __version__ = version("qir")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_API = {"convert", "config_template", "layer_summary", "Design", "Comparison"}
_OTHER = {"Fixed": "qir.fixed", "QirError": "qir.errors", "PrecisionConfig": "qir.precision"}

__all__ = sorted(_API | set(_OTHER))


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module("qir.api"), name)
    if name in _OTHER:
        return getattr(importlib.import_module(_OTHER[name]), name)
    raise AttributeError(f"module 'qir' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
