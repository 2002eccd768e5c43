"""Precision configuration for the float parts of a model (hls4ml-style, explicit and documented).

A quantized model (QKeras quantizers, QONNX Quant, QDQ with power-of-two scales) needs none: its
types come from its quantizers and qir is bit-exact to it.  A float model needs types for its
weights, biases and layer results; this module is where the user states them:

- ``--precision T`` on the CLI (``precision=Fixed(...)`` in the API) sets the model default ``T``
  for weight, bias and result;
- a JSON or YAML file (``--precision-config FILE``) sets a default and per-layer overrides:

  .. code-block:: yaml

     default: {weight: "fixed<18,8>", bias: "fixed<18,8>", result: "fixed<18,8>"}
     layers:
       fc1: {weight: "fixed<8,1>", result: "fixed<16,6>"}
       act: {table: "fixed<12,4>"}     # index type of a table activation (tanh, sigmoid, ...)
       output: {result: null}          # null: exact (no rounding) for this layer's result
       fc2: {style: mac}               # how a dense/conv layer is built (quantized models too)
       fc3: {reuse: 4, impl: digitserial}  # fold a dense/conv layer over 4 cycles (issue #12), pinned impl

Every name under ``layers`` must be a layer of the model (``qir config MODEL -o FILE`` writes a
template with all of them); a misspelled name, an unknown key or a bad type is one error naming
the file and the entry.

``style`` (auto, mac, cmvm, ternary, po2, xnor; in ``default`` or per layer) is not a type: the
importer writes it as a ``style`` attribute on the layer's ``qir.dense``/``qir.conv`` (the layer
named by the op's ``layer`` attribute in net.mlir), and ``qir-lower-dense``/``qir-lower-conv``
build that layer that way unless their ``layers=`` option names it.  It applies to quantized
models as well.  ``reuse`` (a positive integer, per dense/conv layer or in ``default``) is written
the same way, as an ``i64`` ``reuse`` attribute: the layer computes its products over R cycles
with about 1/R of the arithmetic; ``qir-fold-auto`` keeps it (a pinned layer) and chooses R for
the others (``--reuse``, ``--target-ii``, ``--max-luts``).  ``impl`` (rom, muxgraph, digitserial)
pins a folded layer's implementation (an ``impl`` attribute; else ``qir.folding.choose_impl``).

Semantics (the defaults, stated once here and in docs/ARCHITECTURE.md):

- float constants (weights, biases, batch-normalization scales and shifts, average-pooling
  divisors that are not powers of two, leaky-relu slopes that are not powers of two) are rounded
  to nearest, ties to even, and saturated to their type (``weight`` for multiplicative constants,
  ``bias`` for additive ones).  A batch normalization is computed in float64 from the stored
  float32 values (scale = gamma / sqrt(var + eps), shift = beta - mean * scale), folded into a
  preceding float Dense/Conv when possible, and rounded once;
- accumulators are always exact (every sum is held in full) unless ``accum`` is set, which then
  inserts an explicit ``qir.quantize`` (round ``accum_rounding``, ``accum_overflow``);
- a layer with float constants has its result cast to ``result`` with ``result_rounding``
  (default ``rnd_conv``: nearest, ties to even) and ``result_overflow`` (default ``sat``), before
  its activation; ``result: null`` keeps it exact.  Layers without float constants (quantized
  layers, relu, max pooling, power-of-two average pooling, reshapes, Add, Concatenate) stay exact;
- a float activation other than relu (sigmoid, tanh, softsign, softplus, elu, selu, swish,
  exponential) is a table (``qir.lut``): its input is rounded (``rnd_conv``) and saturated to the
  ``table`` type (default ``fixed<10,4>``: 1024 entries covering [-8, 8) in steps of 1/64), and each
  entry is the function (float32, as Keras computes it) of that input, rounded to nearest and
  saturated to ``result``.  Softmax is not tabulated: only a final one is stripped (--softmax none).

Error bound (what ``--precision fixed<W,I>`` guarantees).  With F = W - I fractional bits and no
saturation (I large enough for every weight and every layer result), each rounding is off by at
most h = 2^-(F+1): a weight or bias by h, a layer result by h more than the exact result computed
from the rounded constants.  For a layer y = W x + b this gives, elementwise,
|dy| <= |W^| |dx| + h (||x||_1 + 1) + h (W^ the rounded weights, x the float model's layer input),
propagated layer by layer (relu and max pooling do not increase it).  So the argmax of the logits
agrees with the float model whenever the float model's top-two logit margin exceeds twice the bound
(tests/test_frontend_keras_layers.py checks this on every vector).  Measured argmax agreement over
the 2000 reference vectors: KERAS_3layer 99.95% at fixed<18,8> and fixed<16,6>, 99.85% at
fixed<14,6>, 98.35% at fixed<12,4>; KERAS_conv1d_small 99.45% at fixed<18,8> and fixed<16,6>.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qir.errors import QirError
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed

_TYPE_KEYS = ("weight", "bias", "accum", "result", "table")
#: Default index type of table activations: 1024 entries covering [-8, 8) in steps of 1/64.
DEFAULT_TABLE_INPUT = Fixed(10, 4)
_MODE_KEYS = {"result_rounding": ROUNDING_MODES, "result_overflow": OVERFLOW_MODES,
              "accum_rounding": ROUNDING_MODES, "accum_overflow": OVERFLOW_MODES}


@dataclass(frozen=True)
class LayerPrecision:
    weight: Fixed | None = None
    bias: Fixed | None = None
    accum: Fixed | None = None
    result: Fixed | None = None
    table: Fixed | None = None  # index type of table activations (None: DEFAULT_TABLE_INPUT)
    result_rounding: str = "rnd_conv"
    result_overflow: str = "sat"
    accum_rounding: str = "rnd_conv"
    accum_overflow: str = "sat"
    style: str | None = None  # implementation of a dense/conv layer (None: the pipeline's choice)
    reuse: int | None = None  # folding of a dense/conv layer (None: qir-fold-auto's choice)
    impl: str | None = None  # folded implementation of a dense/conv layer (None: qir.folding.choose_impl)


#: the values of a ``style`` key: the dense lowering styles (``qir-lower-dense``)
STYLE_CHOICES = ("auto", "mac", "cmvm", "ternary", "po2", "xnor")
#: the values of an ``impl`` key: the folded implementations (``qir.folding.IMPLS``)
IMPL_CHOICES = ("rom", "muxgraph", "digitserial")


class _LayerTable(dict):
    """The per-layer entries; remembers which ones a frontend looked up (``used``), so an entry
    that neither a frontend used nor names a layer of the imported model is an error."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.used: set[str] = set()

    def __contains__(self, key) -> bool:
        hit = dict.__contains__(self, key)
        if hit:
            self.used.add(key)
        return hit

    def get(self, key, default=None):
        if dict.__contains__(self, key):
            self.used.add(key)
        return dict.get(self, key, default)


@dataclass(frozen=True)
class PrecisionConfig:
    default: LayerPrecision = field(default_factory=LayerPrecision)
    layers: dict[str, dict] = field(default_factory=dict)
    source: str = "--precision"

    def __post_init__(self) -> None:
        if not isinstance(self.layers, _LayerTable):
            object.__setattr__(self, "layers", _LayerTable(self.layers))

    @staticmethod
    def from_type(t: Fixed | None) -> PrecisionConfig | None:
        if t is None:
            return None
        return PrecisionConfig(LayerPrecision(weight=t, bias=t, result=t))

    def for_layer(self, name: str) -> LayerPrecision:
        over = self.layers.get(name)
        return replace(self.default, **over) if over else self.default

    def check_layers(self, module, where: str) -> None:
        """Every per-layer entry must name a layer of the imported ``module`` (an op's ``layer``
        attribute) or have been used by the frontend (e.g. a Dense whose batch normalization was
        folded into it); anything else is a misspelling and one error naming the file and entry."""
        from qir.ir import layer_of

        names = {layer_of(o) for o in module.walk()} - {None}
        used = getattr(self.layers, "used", set())
        for name in self.layers:
            if name not in names and name not in used:
                import difflib

                close = difflib.get_close_matches(name, sorted(names), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise QirError(f"layers: '{name}': the model has no layer of that name; {hint}"
                               f"its layers are {', '.join(sorted(names)) or 'none'} "
                               "(qir config MODEL writes a template with every name)", where=self.source)

    def annotate_styles(self, module, where: str) -> None:
        """Write the configured ``style`` and ``reuse`` of each layer on its ``qir.dense``/``qir.conv``
        ops; a layer entry with a style or reuse that names no such op is an error (a typo would be silent), and so
        is any other entry naming no layer (``check_layers``)."""
        from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

        from qir.dialect import ConvOp, DenseOp
        from qir.ir import layer_of

        ops = [o for o in module.walk() if isinstance(o, (DenseOp, ConvOp))]
        names = {layer_of(o) for o in ops}
        for name, over in self.layers.items():
            for key in ("style", "reuse", "impl"):
                if key in over and name not in names:
                    known = ", ".join(sorted(n for n in names if n)) or "none"
                    raise QirError(f"layer '{name}' has {key} {over[key]!r} but the model has no dense or conv "
                                   f"layer of that name (dense/conv layers: {known})", where=where)
        self.check_layers(module, where)
        for o in ops:
            style = self.for_layer(layer_of(o) or "").style
            if style is not None:
                if isinstance(o, ConvOp) and style == "xnor":
                    raise QirError(f"layer '{layer_of(o)}': style xnor applies to dense layers only; use "
                                   "auto, mac, cmvm, ternary or po2 for convolutions", where=where)
                o.attributes["style"] = StringAttr(style)
            reuse = self.for_layer(layer_of(o) or "").reuse
            if reuse is not None:
                o.attributes["reuse"] = IntegerAttr(reuse, i64)
            impl = self.for_layer(layer_of(o) or "").impl
            if impl is not None:  # pins the folded implementation (issue #12)
                o.attributes["impl"] = StringAttr(impl)

    def require(self, name: str, what: str, where: str) -> Fixed:
        """The type for ``what`` (weight/bias) of layer ``name``; a clear error if none is set."""
        t = getattr(self.for_layer(name), what)
        if t is None:
            raise QirError(f"layer has float {what}s and no {what} type is configured; set "
                           f"'{what}' for it in {self.source}", where=where)
        return t

    @staticmethod
    def load(path: str | Path, default: Fixed | None = None) -> PrecisionConfig:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise QirError(f"cannot read precision configuration: {e}", where=str(p)) from None
        return PrecisionConfig.from_mapping(_parse(text, p), str(p), default)

    @staticmethod
    def from_mapping(data, source: str = "<config>", default: Fixed | None = None) -> PrecisionConfig:
        """A configuration from its parsed form (``{"default": {...}, "layers": {name: {...}}}``,
        what ``qir config`` writes); ``source`` names it in errors."""
        if isinstance(data, PrecisionConfig):
            return data
        if not isinstance(data, dict) or set(data) - {"default", "layers"}:
            extra = sorted(set(data) - {"default", "layers"}) if isinstance(data, dict) else []
            raise QirError("a precision configuration is a mapping with keys 'default' and 'layers'"
                           + (f"; unknown key(s) {', '.join(map(repr, extra))}" if extra else ""), where=source)
        base = LayerPrecision(weight=default, bias=default, result=default) if default else LayerPrecision()
        dflt = replace(base, **_entry(data.get("default") or {}, f"{source}: default"))
        raw_layers = data.get("layers") or {}
        if not isinstance(raw_layers, dict):
            raise QirError("'layers' must be a mapping of layer name to entry", where=source)
        layers = {}
        for name, entry in raw_layers.items():
            layers[str(name)] = _entry(entry, f"{source}: layers: '{name}'")
        return PrecisionConfig(dflt, layers, source)


def _parse(text: str, p: Path):
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise QirError("YAML precision files need PyYAML (pip install pyyaml); or write JSON",
                           where=str(p)) from None
        from qir.safety import check_nesting

        check_nesting(text, str(p), "the YAML")
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise QirError(f"invalid YAML: {' '.join(str(e).split())}", where=str(p)) from None
        except RecursionError:
            raise QirError("the YAML is nested too deeply", where=str(p)) from None
    from qir.safety import load_json

    return load_json(text, str(p), "JSON")


def _entry(entry, where: str) -> dict:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise QirError("expected a mapping of weight/bias/accum/result types", where=where)
    out = {}
    for k, v in entry.items():
        if k in _TYPE_KEYS:
            if v is not None and not isinstance(v, str):
                raise QirError(f"{k}: {v!r} is not a type; write \"fixed<W,I>\", \"ufixed<W,I>\" or null",
                               where=where)
            try:
                out[k] = None if v is None else Fixed.parse(v)
            except QirError as e:
                raise QirError(f"{k}: {e}", where=where) from None
        elif k == "style":
            if v not in STYLE_CHOICES:
                raise QirError(f"style {v!r} is not one of {', '.join(STYLE_CHOICES)}", where=where)
            out[k] = v
        elif k == "impl":
            if v is None:
                continue
            if v not in IMPL_CHOICES:
                raise QirError(f"impl {v!r} is not one of {', '.join(IMPL_CHOICES)}", where=where)
            out[k] = v
        elif k == "reuse":
            if v is None:  # null: not pinned (qir-fold-auto / --reuse choose), what the template writes
                continue
            try:
                out[k] = check_reuse(v, "reuse")
            except QirError as e:
                raise QirError(str(e), where=where) from None
        elif k in _MODE_KEYS:
            if v not in _MODE_KEYS[k]:
                raise QirError(f"{k} {v!r} is not one of {', '.join(_MODE_KEYS[k])}", where=where)
            out[k] = v
        else:
            keys = _TYPE_KEYS + tuple(_MODE_KEYS) + ("style", "reuse", "impl")
            raise QirError(f"unknown key {k!r}; use {', '.join(keys)}", where=where)
    return out


#: the largest reuse factor a configuration or option may state (beyond any layer's product count)
MAX_REUSE = 1 << 32


def check_reuse(v, what: str = "reuse") -> int:
    """A reuse factor R: a positive integer (``bool`` and floats refused); ``what`` names it."""
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_REUSE:
        why = ("the number of cycles a layer's products are spread over; 1 = fully parallel"
               if what.endswith("reuse") else "cycles" if what == "--target-ii" else "LUTs")
        raise QirError(f"{what} {v!r} is not a positive integer ({why}, at most {MAX_REUSE})")
    return v


def quantize_float(values, t: Fixed) -> np.ndarray:
    """Float constants to mantissas of ``t``: round to nearest (ties to even), saturate."""
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise QirError("constants contain NaN or infinity")
    return np.clip(np.rint(np.ldexp(x, t.frac)), t.min_int, t.max_int).astype(np.int64)
