"""QKeras quantizers without QKeras: the string-spec grammar, float32-exact weight quantization and
the lowering of activation quantizers to ``qir.relu`` / ``qir.quantize`` steps.

Semantics follow shared/notes/quantizer_semantics.md (sections 1 and 2).  Weight quantizers mirror
QKeras's float32 arithmetic (rne via ``np.rint``, the clip bounds, the ``auto_po2`` least-squares
loop) and return the ideal quantized values as exact float64 numbers; ``exact_fixed`` turns them into
integer mantissas and the narrowest fixed-point type that holds them.  At inference,
``use_stochastic_rounding`` is plain rne, so it is accepted and ignored.

New quantizers plug in with ``@quantizer("name")`` on a frozen dataclass whose fields, in order,
are the QKeras constructor's positional parameters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from qir.errors import QirError
from qir.fixed import Fixed

F32 = np.float32
EPS = F32(1e-7)  # K.epsilon()
LN2 = F32(np.log(2.0))  # np.log(2.0), used by QKeras as a float32 divisor


# ------------------------------------------------------------------------------ lowering steps
@dataclass(frozen=True)
class Relu:
    """max(x, 0) on the current type (``qir.relu``)."""


@dataclass(frozen=True)
class Quantize:
    """Re-grid to ``type`` (``qir.quantize``)."""

    type: Fixed
    rounding: str
    overflow: str


@dataclass(frozen=True)
class Softmax:
    """A softmax; never emitted (the importer strips or rejects it)."""


# ------------------------------------------------------------------------------ string grammar
@dataclass(frozen=True)
class Spec:
    """A parsed ``name(args, key=value)`` string; ``called`` is False for a bare name."""

    name: str
    args: tuple
    kwargs: dict
    called: bool


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<str>'[^']*'|"[^"]*")
    | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<punct>[(),=\[\]])
    )""", re.VERBOSE)
_CONSTANTS = {"True": True, "False": False, "None": None}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QirError(f"cannot parse quantizer {text!r}: unexpected {text[pos:].strip()[:12]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens of one spec string."""

    def __init__(self, text: str):
        self.text, self.tokens, self.i = text, _tokenize(text), 0

    def error(self, what: str) -> QirError:
        return QirError(f"cannot parse quantizer {self.text!r}: {what}; write e.g. "
                        "quantized_bits(6,0,alpha=1) or quantized_relu(6,2)")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise self.error(f"expected {value or kind}, found {tok[1] if tok else 'the end'}")
        self.i += 1
        return tok[1]

    def spec(self) -> Spec:
        name = self.take("ident")
        args, kwargs, called = [], {}, False
        if self.peek() is not None:
            called = True
            self.take("punct", "(")
            if self.peek() != ("punct", ")"):
                self.arguments(args, kwargs)
            self.take("punct", ")")
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r} after the closing parenthesis")
        return Spec(name, tuple(args), kwargs, called)

    def arguments(self, args: list, kwargs: dict) -> None:
        while True:
            tok, nxt = self.peek(), self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if tok and tok[0] == "ident" and nxt == ("punct", "="):
                key = self.take("ident")
                self.take("punct", "=")
                if key in kwargs:
                    raise self.error(f"argument {key!r} given twice")
                kwargs[key] = self.value()
            elif kwargs:
                raise self.error("positional argument after a keyword argument")
            else:
                args.append(self.value())
            if self.peek() != ("punct", ","):
                return
            self.take("punct", ",")

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.error("missing value")
        kind, text = tok
        if kind == "punct" and text == "[":
            return self.number_list()
        self.i += 1
        if kind == "num":
            return _number(text)
        if kind == "str":
            return text[1:-1]
        if kind == "ident":
            return _CONSTANTS.get(text, text)
        raise self.error(f"unexpected {text!r}")

    def number_list(self) -> tuple:
        self.take("punct", "[")
        items = []
        while self.peek() != ("punct", "]"):
            if self.peek() == ("punct", ","):
                self.i += 1
                continue
            items.append(_number(self.take("num")))
        self.take("punct", "]")
        return tuple(items)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_spec(text: str) -> Spec:
    """Parse a QKeras spec string (``quantized_bits(4,0,alpha='auto_po2')``); never evaluates it."""
    if not isinstance(text, str) or not text.strip():
        raise QirError(f"cannot parse quantizer {text!r}: empty specification")
    return _Parser(text).spec()


# ------------------------------------------------------------------------------ value checks
def _as_int(value: Any, what: str, lo: int = -100, hi: int = 100) -> int:
    """An integer parameter within [lo, hi] (a one-element list counts as its element)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
            or value != int(value):
        raise QirError(f"{what} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise QirError(f"{what} must be between {lo} and {hi}, got {int(value)}")
    return int(value)


def _as_bool(value: Any, what: str) -> bool:
    if value in (0, 1, True, False):
        return bool(value)
    raise QirError(f"{what} must be True/False (or 0/1), got {value!r}")


def _is_one(value: Any) -> bool:
    return value is None or (not isinstance(value, (str, bool, tuple, list)) and value == 1)


def _po2_scale(alpha: Any, what: str) -> float | np.ndarray:
    """A numeric (scalar or per-channel) alpha that must be a positive power of two."""
    a = np.asarray(alpha, dtype=np.float64)
    mant, _ = np.frexp(a)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(mant != 0.5):
        raise QirError(f"{what}: alpha={alpha!r} is not a power of two; only power-of-two alphas "
                       "(an exact shift) are supported for now, or 'auto_po2' on weights")
    return a if a.ndim else float(a)


# ------------------------------------------------------------------------------ quantizers
_QUANTIZERS: dict[str, type["Quantizer"]] = {}


def quantizer(name: str):
    """Register a quantizer class under its QKeras name."""
    def register(cls):
        cls.NAME = name
        _QUANTIZERS[name] = cls
        return cls
    return register


def supported_quantizers() -> list[str]:
    return sorted(_QUANTIZERS)


@dataclass(frozen=True)
class Quantizer:
    """Base of the quantizer dataclasses (fields = QKeras positional parameter order)."""

    NAME: ClassVar[str] = "?"

    @classmethod
    def build(cls, args: tuple = (), kwargs: dict | None = None) -> "Quantizer":
        names = [f.name for f in fields(cls)]
        if len(args) > len(names):
            raise QirError(f"{cls.NAME} takes at most {len(names)} positional arguments, got {len(args)}")
        params = dict(zip(names, args))
        for key, value in (kwargs or {}).items():
            if key not in names:
                raise QirError(f"{cls.NAME} has no parameter {key!r}; known: {', '.join(names)}")
            if key in params:
                raise QirError(f"{cls.NAME}: parameter {key!r} given twice")
            params[key] = value
        q = cls(**params)
        q.check()
        return q

    def check(self) -> None:
        """Validate the parameters that every use needs (raise QirError)."""
        qnoise = getattr(self, "qnoise_factor", 1.0)
        if qnoise is None or isinstance(qnoise, (str, bool)) or float(np.asarray(qnoise)) != 1.0:
            raise QirError(f"{self.NAME}: qnoise_factor={qnoise!r} is not a quantizer (it mixes in the "
                           "float input); only qnoise_factor=1 is supported")

    def for_kernel(self) -> "Quantizer":
        """The quantizer as QKeras uses it on a Dense/Conv kernel (hidden alpha rewrite)."""
        return self

    def quantize_weights(self, w: np.ndarray) -> np.ndarray:
        """Exact quantized values (float64) of float32 weights."""
        with np.errstate(all="ignore"):  # float32 overflow saturates, as in QKeras
            return self._values(np.asarray(w, dtype=F32))

    def _values(self, x: np.ndarray) -> np.ndarray:
        raise QirError(f"{self.NAME} is not supported as a weight quantizer; use quantized_bits or "
                       "quantized_po2")

    def steps(self) -> list:
        """The activation as qir steps."""
        raise QirError(f"{self.NAME} is not supported as an activation; supported: quantized_relu"
                       "(bits, integer) and quantized_bits(bits, integer, symmetric, keep_negative, alpha=1)")


@quantizer("quantized_bits")
@dataclass(frozen=True)
class QuantizedBits(Quantizer):
    bits: Any = 8
    integer: Any = 0
    symmetric: Any = 0
    keep_negative: Any = True
    alpha: Any = None
    use_stochastic_rounding: Any = False
    scale_axis: Any = None
    qnoise_factor: Any = 1.0
    var_name: Any = None
    use_ste: Any = True
    use_variables: Any = False
    elements_per_scale: Any = None
    min_po2_exponent: Any = None
    max_po2_exponent: Any = None
    post_training_scale: Any = None

    def check(self) -> None:
        super().check()
        _as_int(self.bits, "quantized_bits bits", 1, 64)
        _as_int(self.integer, "quantized_bits integer")
        _as_bool(self.symmetric, "quantized_bits symmetric")
        _as_bool(self.keep_negative, "quantized_bits keep_negative")
        for key in ("scale_axis", "elements_per_scale", "min_po2_exponent", "max_po2_exponent",
                    "post_training_scale"):
            if getattr(self, key) is not None:
                raise QirError(f"quantized_bits: {key}={getattr(self, key)!r} is not supported yet; "
                               "only the default (None) is")
        if isinstance(self.alpha, str) and self.alpha not in ("auto", "auto_po2"):
            raise QirError(f"quantized_bits: alpha={self.alpha!r} is not one of None, a number, "
                           "'auto', 'auto_po2'")

    @property
    def _k(self) -> int:
        return int(_as_bool(self.keep_negative, "keep_negative"))

    @property
    def _sym(self) -> bool:
        return isinstance(self.alpha, str) or _as_bool(self.symmetric, "symmetric")

    def for_kernel(self) -> "QuantizedBits":
        if self.alpha is None:
            return QuantizedBits.build((), {**_params(self), "alpha": "auto_po2", "symmetric": True})
        return self

    def _values(self, x: np.ndarray) -> np.ndarray:
        bits, integer = _as_int(self.bits, "bits"), _as_int(self.integer, "integer")
        if self.alpha == "auto_po2":
            return _auto_po2(x, bits, integer)
        if self.alpha == "auto":
            raise QirError("quantized_bits alpha='auto' gives real (non-power-of-two) per-channel "
                           "scales, not a fixed-point grid; use alpha='auto_po2' or alpha=1")
        scale = 1.0 if _is_one(self.alpha) else _po2_scale(self.alpha, "quantized_bits")
        u = bits - self._k
        if u == 0:  # a sign function: 0 -> +1
            return np.where(x >= 0, 1.0, -1.0) * scale
        m, m_i = F32(2.0) ** F32(u), F32(2.0) ** F32(integer)
        p = x * m / m_i
        c = np.clip(np.rint(p), -self._k * (m - F32(self._sym)), m - F32(1))
        return np.ldexp(c.astype(np.float64), integer - u) * scale

    def steps(self) -> list:
        if isinstance(self.alpha, str):
            raise QirError(f"quantized_bits alpha={self.alpha!r} on an activation is computed per "
                           "batch from the data, so it has no static fixed-point equivalent; use alpha=1")
        if not _is_one(self.alpha):
            raise QirError(f"quantized_bits alpha={self.alpha!r} on an activation is not supported "
                           "yet; use alpha=1 or None")
        bits, integer = _as_int(self.bits, "bits"), _as_int(self.integer, "integer")
        if bits - self._k == 0:
            raise QirError("quantized_bits(1) with keep_negative is a sign function; it is supported "
                           "on weights only")
        if not self._k:
            return [Quantize(Fixed(bits, integer, False), "rnd_conv", "sat")]
        return [Quantize(Fixed(bits, integer + 1, True), "rnd_conv", "sat_sym" if self._sym else "sat")]


def _params(q: Quantizer) -> dict:
    return {f.name: getattr(q, f.name) for f in fields(q)}


def _po2_round(s: np.ndarray) -> np.ndarray:
    """2^rne(log2(s + eps)) in float32, as QKeras computes it."""
    return F32(2.0) ** np.rint(np.log(s + EPS) / LN2)


def _auto_po2(x32: np.ndarray, bits: int, integer: int) -> np.ndarray:
    """quantized_bits(alpha='auto_po2') on weights: per-output-channel power-of-two scales (notes §1.1)."""
    if bits < 2:
        raise QirError("quantized_bits alpha='auto_po2' needs bits >= 2")
    m_i = F32(2.0) ** F32(integer)
    x = x32 / m_i
    levels = (2 ** (bits - 1) - 1) * 2
    half = F32(levels / 2)
    axis = tuple(range(x.ndim - 1)) if x.ndim > 1 else (0,)

    def codes(scale):
        v = np.floor(np.abs(x) / scale + F32(0.5))
        return np.sign(x) * np.where(v < half, v, half)

    scale = _po2_round(np.max(np.abs(x), axis=axis, keepdims=True) * F32(2) / F32(levels))
    for _ in range(5):
        z = codes(scale)
        if x.ndim > 1:
            qx = np.mean(x * z, axis=axis, keepdims=True, dtype=F32)
            qq = np.mean(z * z, axis=axis, keepdims=True, dtype=F32)
        else:  # rank 1: one scale per element
            qx, qq = x * z, z * z
        scale = _po2_round(qx / (qq + EPS))
    z = codes(scale)
    return z.astype(np.float64) * scale.astype(np.float64) * float(m_i)


@quantizer("quantized_relu")
@dataclass(frozen=True)
class QuantizedRelu(Quantizer):
    bits: Any = 8
    integer: Any = 0
    use_sigmoid: Any = 0
    negative_slope: Any = 0.0
    use_stochastic_rounding: Any = False
    relu_upper_bound: Any = None
    is_quantized_clip: Any = True
    qnoise_factor: Any = 1.0
    var_name: Any = None
    use_ste: Any = True
    use_variables: Any = False

    def check(self) -> None:
        super().check()
        _as_int(self.bits, "quantized_relu bits", 1, 64)
        _as_int(self.integer, "quantized_relu integer")

    def steps(self) -> list:
        if self.use_sigmoid:
            raise QirError("quantized_relu with use_sigmoid=1 is not supported; supported: "
                           "quantized_relu(bits, integer) with use_sigmoid=0 and negative_slope=0")
        if self.negative_slope:
            raise QirError(f"quantized_relu with negative_slope={self.negative_slope} is not supported "
                           "yet; supported: negative_slope=0")
        if self.relu_upper_bound is not None and not self.is_quantized_clip:
            raise QirError("quantized_relu with relu_upper_bound and is_quantized_clip=False is not "
                           "supported; drop relu_upper_bound")
        t = Fixed(_as_int(self.bits, "bits"), _as_int(self.integer, "integer"), False)
        return [Relu(), Quantize(t, "rnd_conv", "sat")]


@quantizer("quantized_po2")
@dataclass(frozen=True)
class QuantizedPo2(Quantizer):
    bits: Any = 8
    max_value: Any = None
    use_stochastic_rounding: Any = False
    quadratic_approximation: Any = False
    log2_rounding: Any = "rnd"
    qnoise_factor: Any = 1.0
    var_name: Any = None
    use_ste: Any = True
    use_variables: Any = False

    def check(self) -> None:
        super().check()
        _as_int(self.bits, "quantized_po2 bits", 2, 16)
        if self.max_value is not None and (isinstance(self.max_value, (str, bool))
                                           or not float(self.max_value) >= 0):
            raise QirError(f"quantized_po2: max_value must be a non-negative number, got {self.max_value!r}")
        if self.log2_rounding not in ("rnd", "floor"):
            raise QirError(f"quantized_po2: log2_rounding={self.log2_rounding!r} is not 'rnd' or 'floor'")
        _as_bool(self.quadratic_approximation, "quantized_po2 quadratic_approximation")

    def exponent_range(self) -> tuple[int, int]:
        """[min_exp, max_exp] of the exponent (notes §1.8)."""
        sign_bit = 1 if self.max_value is None or float(self.max_value) > 1 else 0
        eb = _as_int(self.bits, "bits") - 1 - sign_bit
        lo, hi = -(2 ** eb), 2 ** eb - 1
        return lo, (2 * (hi // 2) if self.quadratic_approximation else hi)

    def _values(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self.exponent_range()
        sign = np.where(x >= 0, 1.0, -1.0)
        a = np.abs(x)
        xf = np.where(a < EPS, EPS, a)
        if self.max_value is not None:
            mv = F32(self.max_value)
            xf = np.where(xf >= mv, mv, xf)
        q = 2 if self.quadratic_approximation else 1
        log2 = np.log(np.sqrt(xf) if q == 2 else xf) / LN2
        e = np.floor(log2) if self.log2_rounding == "floor" else np.rint(log2)
        e = np.where(a < EPS, lo, q * np.clip(e, lo, hi)).astype(np.int64)
        return sign * np.ldexp(1.0, e)

    def steps(self) -> list:
        raise QirError("quantized_po2 is supported on weights only (a power-of-two activation needs a "
                       "log2 unit); use quantized_relu or quantized_bits on activations")


# ------------------------------------------------------------------------------ Keras activations
_KERAS_STEPS: dict[str, list] = {"linear": [], "relu": [Relu()], "softmax": [Softmax()]}


@dataclass(frozen=True)
class KerasActivation:
    """A plain Keras activation function by name."""

    name: str

    def steps(self) -> list:
        if self.name not in _KERAS_STEPS:
            raise QirError(f"Keras activation {self.name!r} is not supported; supported: "
                           f"{', '.join(_KERAS_STEPS)} and the QKeras quantizers "
                           f"{', '.join(supported_quantizers())}")
        return list(_KERAS_STEPS[self.name])


def _class_name(d: dict) -> str:
    name = d.get("class_name")
    if not isinstance(name, str):
        raise QirError(f"quantizer entry without a class_name: {str(d)[:80]}")
    return name.split(">")[-1]


def resolve_quantizer(entry: Any) -> Quantizer | None:
    """A quantizer from a saved config entry: None, a dict, or a spec string."""
    if entry is None:
        return None
    if isinstance(entry, dict):
        name, config = _class_name(entry), entry.get("config") or {}
        if name not in _QUANTIZERS:
            raise QirError(f"quantizer {name!r} is not supported; supported: "
                           f"{', '.join(supported_quantizers())}")
        if not isinstance(config, dict):
            raise QirError(f"quantizer {name!r} has a malformed config: {config!r}")
        return _QUANTIZERS[name].build((), config)
    if isinstance(entry, str):
        spec = parse_spec(entry)
        if spec.name not in _QUANTIZERS:
            raise QirError(f"quantizer {spec.name!r} in {entry!r} is not supported; supported: "
                           f"{', '.join(supported_quantizers())}")
        return _QUANTIZERS[spec.name].build(spec.args, spec.kwargs)
    raise QirError(f"cannot read quantizer {entry!r}: expected a string or a dict")


def resolve_activation(entry: Any) -> Quantizer | KerasActivation:
    """An activation: a quantizer (dict or spec string) or a Keras activation name."""
    if entry is None:
        return KerasActivation("linear")
    if isinstance(entry, dict) and _class_name(entry) not in _QUANTIZERS:
        return KerasActivation(_class_name(entry))
    if isinstance(entry, str):
        spec = parse_spec(entry)
        if spec.name not in _QUANTIZERS:
            if spec.called:
                raise QirError(f"quantizer {spec.name!r} in {entry!r} is not supported; supported: "
                               f"{', '.join(supported_quantizers())}")
            return KerasActivation(spec.name)
    q = resolve_quantizer(entry)
    assert q is not None
    return q


# ------------------------------------------------------------------------------ exact types
def exact_fixed(values: np.ndarray, what: str = "values") -> tuple[np.ndarray, Fixed]:
    """Integer mantissas and the narrowest fixed-point type holding dyadic ``values`` exactly."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise QirError(f"{what} contain NaN or infinite values")
    nz = v[v != 0]
    frac = 0
    if nz.size:
        mant, exp = np.frexp(nz)
        ints = np.abs(np.ldexp(mant, 53)).astype(np.int64)
        tz = np.frexp((ints & -ints).astype(np.float64))[1] - 1
        frac = int(np.max(53 - exp - tz))
        if np.max(np.abs(np.ldexp(nz, frac))) >= 2.0 ** 62:
            raise QirError(f"{what} span too many binary orders of magnitude (more than 62 bits)")
    mant = np.ldexp(v, frac).astype(np.int64)
    lo, hi = (int(mant.min()), int(mant.max())) if mant.size else (0, 0)
    return mant, Fixed.for_range(lo, hi, frac)
