"""Precision configuration for the float parts of a model (hls4ml-style, explicit and documented).

A quantized model (QKeras quantizers, QONNX Quant, QDQ with power-of-two scales) needs none: its
types come from its quantizers and qir is bit-exact to it.  A float model needs types for its
weights, biases and layer results; this module is where the user states them:

- ``--precision T`` on the CLI sets the model default ``T`` for weight, bias and result.
- a JSON or YAML file (``--precision-config FILE``) sets a default and per-layer overrides:

  .. code-block:: yaml

     default: {weight: "fixed<18,8>", bias: "fixed<18,8>", result: "fixed<18,8>"}
     layers:
       fc1: {weight: "fixed<8,1>", result: "fixed<16,6>"}
       output: {result: null}        # null: exact (no rounding) for this layer's result

Semantics (the defaults, stated once here and in docs/ARCHITECTURE.md):

- float weights and biases are rounded to nearest, ties to even, and saturated to their type;
- accumulators are always exact (``qir.dense`` results hold every sum) unless ``accum`` is set,
  which then inserts an explicit ``qir.quantize`` (round ``accum_rounding``, ``accum_overflow``);
- a layer's result is cast to ``result`` with ``result_rounding`` (default ``rnd_conv``: nearest,
  ties to even) and ``result_overflow`` (default ``sat``); ``result: null`` keeps it exact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qir.errors import QirError
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed

_TYPE_KEYS = ("weight", "bias", "accum", "result")
_MODE_KEYS = {"result_rounding": ROUNDING_MODES, "result_overflow": OVERFLOW_MODES,
              "accum_rounding": ROUNDING_MODES, "accum_overflow": OVERFLOW_MODES}


@dataclass(frozen=True)
class LayerPrecision:
    weight: Fixed | None = None
    bias: Fixed | None = None
    accum: Fixed | None = None
    result: Fixed | None = None
    result_rounding: str = "rnd_conv"
    result_overflow: str = "sat"
    accum_rounding: str = "rnd_conv"
    accum_overflow: str = "sat"


@dataclass(frozen=True)
class PrecisionConfig:
    default: LayerPrecision = field(default_factory=LayerPrecision)
    layers: dict[str, dict] = field(default_factory=dict)
    source: str = "--precision"

    @staticmethod
    def from_type(t: Fixed | None) -> "PrecisionConfig | None":
        if t is None:
            return None
        return PrecisionConfig(LayerPrecision(weight=t, bias=t, result=t))

    def for_layer(self, name: str) -> LayerPrecision:
        over = self.layers.get(name)
        return replace(self.default, **over) if over else self.default

    def require(self, name: str, what: str, where: str) -> Fixed:
        """The type for ``what`` (weight/bias) of layer ``name``; a clear error if none is set."""
        t = getattr(self.for_layer(name), what)
        if t is None:
            raise QirError(f"layer has float {what}s and no {what} type is configured; set "
                           f"'{what}' for it in {self.source}", where=where)
        return t

    @staticmethod
    def load(path: str | Path, default: Fixed | None = None) -> "PrecisionConfig":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise QirError(f"cannot read precision configuration: {e}", where=str(p)) from None
        data = _parse(text, p)
        if not isinstance(data, dict) or set(data) - {"default", "layers"}:
            raise QirError("a precision configuration is a mapping with keys 'default' and 'layers'",
                           where=str(p))
        base = LayerPrecision(weight=default, bias=default, result=default) if default else LayerPrecision()
        dflt = replace(base, **_entry(data.get("default") or {}, f"{p}: default"))
        layers = {}
        for name, entry in (data.get("layers") or {}).items():
            layers[str(name)] = _entry(entry, f"{p}: layer '{name}'")
        return PrecisionConfig(dflt, layers, str(p))


def _parse(text: str, p: Path):
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise QirError("YAML precision files need PyYAML (pip install pyyaml); or write JSON",
                           where=str(p)) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise QirError(f"invalid YAML: {e}", where=str(p)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise QirError(f"invalid JSON: {e}", where=str(p)) from None


def _entry(entry, where: str) -> dict:
    if not isinstance(entry, dict):
        raise QirError("expected a mapping of weight/bias/accum/result types", where=where)
    out = {}
    for k, v in entry.items():
        if k in _TYPE_KEYS:
            out[k] = None if v is None else Fixed.parse(str(v))
        elif k in _MODE_KEYS:
            if v not in _MODE_KEYS[k]:
                raise QirError(f"{k} {v!r} is not one of {', '.join(_MODE_KEYS[k])}", where=where)
            out[k] = v
        else:
            raise QirError(f"unknown key {k!r}; use {', '.join(_TYPE_KEYS + tuple(_MODE_KEYS))}", where=where)
    return out


def quantize_float(values, t: Fixed) -> np.ndarray:
    """Float constants to mantissas of ``t``: round to nearest (ties to even), saturate."""
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise QirError("constants contain NaN or infinity")
    return np.clip(np.rint(np.ldexp(x, t.frac)), t.min_int, t.max_int).astype(np.int64)
