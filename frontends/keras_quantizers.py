"""QKeras quantizers without QKeras: the string-spec grammar (``keras_spec``), float32-exact weight quantization and
the lowering of activation quantizers to exact steps (``qir.relu`` / ``qir.quantize`` / ``qir.scale``
/ ``qir.lut``).

Semantics follow docs/quantizer_semantics.md (sections 1 and 2) and the qkeras-v3 source.
Weight quantizers mirror QKeras's float32 arithmetic (rne via ``np.rint``, the clip bounds, the
``auto_po2`` least-squares loop, numeric alphas multiplied in float32) and return the quantized
values as exact float64 numbers; ``exact_fixed`` turns them into integer mantissas and the
narrowest fixed-point type that holds them.  At inference ``use_stochastic_rounding`` is plain rne
and the stochastic quantizers equal their deterministic versions, so both are accepted.  The
internal sigmoid of QKeras is assumed to be the default "hard" one (it is a process-global setting
that models do not record).

New quantizers plug in with ``@quantizer("name")`` on a frozen dataclass whose fields, in order,
are the QKeras constructor's positional parameters.  Keras activation functions by name live in
``KERAS_FUNCTIONS``: relu and linear are exact, the others are tables whose precision comes from
the precision configuration.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np
from qir.frontends.keras_activations import FloatFunction, KerasActivation
from qir.frontends.keras_graph import layer_package
from qir.frontends.keras_spec import Spec, parse_spec  # noqa: F401  (re-exported)
from qir.frontends.keras_steps import (
    Affine,
    Clip,
    LeakyRelu,
    Param,
    Quantize,
    Relu,
    Sign,
    Softmax,
    Step,
    Table,
    Ternary,
    exact_fixed,
    is_dyadic,
)

from qir.errors import QirError
from qir.fixed import Fixed

F32 = np.float32
EPS = F32(1e-7)  # K.epsilon()
LN2 = F32(np.log(2.0))  # np.log(2.0), used by QKeras as a float32 divisor

__all__ = ["Quantize", "Relu", "Softmax", "exact_fixed", "parse_spec", "resolve_activation",
           "resolve_quantizer", "supported_quantizers", "Quantizer", "KerasActivation", "FloatFunction"]


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


def _symmetric_count(value: Any, what: str, codes: int) -> int:
    """QKeras's tanh/sigmoid ``symmetric``: the lowest output is ``(1.0 * symmetric) / m`` codes above
    the bottom, so any truthy number counts (``quantized_sigmoid(8, 3)`` clips at 3/256).  A whole
    number of codes, 0 <= symmetric < codes, keeps the output on the fixed-point grid."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value) and float(value).is_integer() \
            and 0 <= value < codes:
        return int(value)
    raise QirError(f"{what} must be True/False or a whole number of codes from 0 to {codes - 1} "
                   f"(QKeras clips the output at symmetric/2^bits above its bottom), got {value!r}")


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise QirError(f"{what} must be a number, got {value!r}")
    return float(value)


def _numeric_alpha(alpha: Any, what: str) -> np.ndarray | None:
    """A numeric (scalar or per-channel) alpha as float32, or None for alpha None/1."""
    if alpha is None:
        return None
    if isinstance(alpha, str):
        raise QirError(f"internal: string alpha {alpha!r}")
    if isinstance(alpha, bool):
        raise QirError(f"{what}: alpha={alpha!r} is not a number")
    a = np.asarray(alpha, dtype=np.float64)
    if a.size == 0 or a.ndim > 1 or not np.all(np.isfinite(a)):
        raise QirError(f"{what}: alpha={alpha!r} must be a number or a per-channel list of numbers")
    a = a.astype(F32)
    return None if a.ndim == 0 and a == 1 else a


def _po2_round(s: np.ndarray) -> np.ndarray:
    """2^rne(log2(s + eps)) in float32, as QKeras computes it."""
    return F32(2.0) ** np.rint(np.log(s + EPS) / LN2)


def _ls_scale(x: np.ndarray, q: np.ndarray, po2: bool) -> np.ndarray:
    """QKeras _get_least_squares_scale: per output channel (every axis but the last; rank 1: per
    element), mean(x q) / (mean(q q) + eps), rounded to a power of two for auto_po2 (float32)."""
    if x.ndim > 1:
        axis = tuple(range(x.ndim - 1))
        qx = np.mean(x * q, axis=axis, keepdims=True, dtype=F32)
        qq = np.mean(q * q, axis=axis, keepdims=True, dtype=F32)
    else:
        qx, qq = x * q, q * q
    scale = qx / (qq + EPS)
    return _po2_round(scale) if po2 else scale.astype(F32)


def _channel_max(x: np.ndarray) -> np.ndarray:
    """max |x| per output channel (every axis but the last); rank 1: over the whole tensor."""
    if x.ndim > 1:
        return np.max(np.abs(x), axis=tuple(range(x.ndim - 1)), keepdims=True)
    return np.max(np.abs(x), keepdims=True)


# ------------------------------------------------------------------------------ quantizers
_QUANTIZERS: dict[str, type[Quantizer]] = {}


def quantizer(name: str):
    """Register a quantizer class under its QKeras name."""
    def register(cls):
        cls.NAME = name
        _QUANTIZERS[name] = cls
        return cls
    return register


def supported_quantizers() -> list[str]:
    return sorted(n for n, c in _QUANTIZERS.items() if not c.REJECT)


@dataclass(frozen=True)
class Quantizer:
    """Base of the quantizer dataclasses (fields = QKeras positional parameter order)."""

    NAME: ClassVar[str] = "?"
    REJECT: ClassVar[str] = ""  # a named error: this QKeras quantizer cannot be supported

    @classmethod
    def build(cls, args: tuple = (), kwargs: dict | None = None) -> Quantizer:
        if cls.REJECT:
            raise QirError(f"{cls.NAME} is not supported: {cls.REJECT}; supported quantizers: "
                           f"{', '.join(supported_quantizers())}")
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
        alpha = getattr(self, "alpha", None)
        if isinstance(alpha, str) and alpha not in ("auto", "auto_po2"):
            raise QirError(f"{self.NAME}: alpha={alpha!r} is not one of None, a number, 'auto', 'auto_po2'")
        if alpha is not None and not isinstance(alpha, str):
            _numeric_alpha(alpha, self.NAME)

    def for_kernel(self) -> Quantizer:
        """The quantizer as QKeras uses it on a Dense/Conv kernel (hidden alpha rewrite:
        ``_set_trainable_parameter`` turns alpha None into 'auto_po2')."""
        return self

    def quantize_weights(self, w: np.ndarray, approximate: bool = False) -> np.ndarray:
        """Exact quantized values (float64) of float32 weights, as QKeras computes them."""
        alpha = getattr(self, "alpha", None)
        if alpha == "auto" and not approximate:
            raise QirError(f"{self.NAME} alpha='auto' gives real (non-power-of-two) per-channel scales, "
                           "not a fixed-point grid; use alpha='auto_po2', or pass approximate=True to "
                           "import QKeras's float32 weights as wide exact constants")
        with np.errstate(all="ignore"):  # float32 overflow saturates, as in QKeras
            return self._values(np.asarray(w, dtype=F32)).astype(np.float64)

    def _values(self, x: np.ndarray) -> np.ndarray:
        raise QirError(f"{self.NAME} is not supported as a weight quantizer")

    def steps(self) -> list[Step]:
        """The activation as exact steps."""
        raise QirError(f"{self.NAME} is not supported as an activation")

    def _no_auto_activation(self) -> None:
        alpha = getattr(self, "alpha", None)
        if isinstance(alpha, str):
            raise QirError(f"{self.NAME} alpha={alpha!r} on an activation is computed per batch from the "
                           "data, so it has no static fixed-point equivalent; use a numeric alpha or None")

    def _alpha_steps(self) -> list[Step]:
        a = _numeric_alpha(getattr(self, "alpha", None), self.NAME)
        if a is None:
            return []
        return [Affine(tuple(float(v) for v in np.atleast_1d(a)) if a.ndim else float(a), None)]


def _params(q: Quantizer) -> dict:
    return {f.name: getattr(q, f.name) for f in fields(q)}


def _scaled(values: np.ndarray, alpha: Any, what: str) -> np.ndarray:
    """float32(alpha * values), the numeric-alpha output scaling of QKeras."""
    a = _numeric_alpha(alpha, what)
    return values.astype(F32) if a is None else (a * values.astype(F32)).astype(F32)


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

    @property
    def _k(self) -> int:
        return int(_as_bool(self.keep_negative, "keep_negative"))

    @property
    def _sym(self) -> bool:
        return isinstance(self.alpha, str) or _as_bool(self.symmetric, "symmetric")

    def for_kernel(self) -> QuantizedBits:
        if self.alpha is None:
            return QuantizedBits.build((), {**_params(self), "alpha": "auto_po2", "symmetric": True})
        return self

    def _values(self, x: np.ndarray) -> np.ndarray:
        bits, integer = _as_int(self.bits, "bits"), _as_int(self.integer, "integer")
        if isinstance(self.alpha, str):
            return _auto_bits(x, bits, integer, self.alpha == "auto_po2")
        u = bits - self._k
        if u == 0:  # a sign function: 0 -> +1
            return _scaled(np.where(x >= 0, 1.0, -1.0), self.alpha, self.NAME)
        m, m_i = F32(2.0) ** F32(u), F32(2.0) ** F32(integer)
        p = x * m / m_i
        c = np.clip(np.rint(p), -self._k * (m - F32(self._sym)), m - F32(1))
        return _scaled(np.ldexp(c.astype(np.float64), integer - u), self.alpha, self.NAME)

    def steps(self) -> list[Step]:
        self._no_auto_activation()
        bits, integer = _as_int(self.bits, "bits"), _as_int(self.integer, "integer")
        if bits - self._k == 0:
            return [Sign(), *self._alpha_steps()]
        if not self._k:
            return [Quantize(Fixed(bits, integer, False), "rnd_conv", "sat"), *self._alpha_steps()]
        return [Quantize(Fixed(bits, integer + 1, True), "rnd_conv", "sat_sym" if self._sym else "sat"),
                *self._alpha_steps()]


def _auto_bits(x32: np.ndarray, bits: int, integer: int, po2: bool) -> np.ndarray:
    """quantized_bits(alpha='auto'/'auto_po2') on weights: per-output-channel scales
    (docs/quantizer_semantics.md §1.1)."""
    if bits < 2:
        raise QirError("quantized_bits alpha='auto'/'auto_po2' needs bits >= 2")
    m_i = F32(2.0) ** F32(integer)
    x = x32 / m_i
    levels = (2 ** (bits - 1) - 1) * 2
    half = F32(levels / 2)

    def codes(scale):
        v = np.floor(np.abs(x) / scale + F32(0.5))
        return np.sign(x) * np.where(v < half, v, half)

    scale = (_channel_max(x) * F32(2) / F32(levels)).astype(F32)
    if po2:
        scale = _po2_round(scale)
        for _ in range(5):
            scale = _ls_scale(x, codes(scale), True)
    z = codes(scale)
    u = bits - 1
    m = F32(2.0) ** F32(u)
    return (scale * m) * (m_i * z / m)


@quantizer("quantized_linear")
@dataclass(frozen=True)
class QuantizedLinear(Quantizer):
    """Master/qkeras-v3 only; quantized_bits with symmetric=1 by default (docs/quantizer_semantics.md §1.2)."""

    bits: Any = 8
    integer: Any = 0
    symmetric: Any = 1
    keep_negative: Any = True
    alpha: Any = None
    use_stochastic_rounding: Any = False
    scale_axis: Any = None
    qnoise_factor: Any = 1.0
    var_name: Any = None
    use_variables: Any = False

    def _as_bits(self) -> QuantizedBits:
        return QuantizedBits.build((), {k: getattr(self, k) for k in (
            "bits", "integer", "symmetric", "keep_negative", "alpha", "use_stochastic_rounding",
            "scale_axis", "qnoise_factor")})

    def check(self) -> None:
        super().check()
        self._as_bits()

    def for_kernel(self) -> Quantizer:
        return self._as_bits().for_kernel()

    def _values(self, x):
        return self._as_bits()._values(x)

    def steps(self):
        return self._as_bits().steps()


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
        if _as_bool(self.use_sigmoid, "quantized_relu use_sigmoid"):
            raise QirError("quantized_relu with use_sigmoid=1 is not supported (its grid has a saturated "
                           "extra top code); supported: quantized_relu(bits, integer, negative_slope=2^-k)")
        ns = _as_float(self.negative_slope, "quantized_relu negative_slope")
        if ns and (ns < 0 or ns > 1 or not is_dyadic([ns], 16) or np.frexp(ns)[0] != 0.5):
            raise QirError(f"quantized_relu negative_slope={ns} is not a power of two in (0, 1]; only "
                           "power-of-two slopes give an exact fixed-point result")
        if ns and _as_int(self.bits, "bits") < 2:
            raise QirError("quantized_relu with a negative_slope needs bits >= 2 (one is the sign)")
        if self.relu_upper_bound is not None and not self.is_quantized_clip:
            raise QirError("quantized_relu with relu_upper_bound and is_quantized_clip=False is not "
                           "supported; drop relu_upper_bound")

    def _grid(self):
        ns = float(self.negative_slope or 0.0)
        bits, integer = _as_int(self.bits, "bits"), _as_int(self.integer, "integer")
        u = bits - (1 if ns else 0)
        return ns, bits, integer, u

    def _values(self, x):
        ns, bits, integer, u = self._grid()
        m, m_i = F32(2.0) ** F32(u), F32(2.0) ** F32(integer)
        p = x * m / m_i
        pos = m_i * np.clip(np.rint(p) / m, F32(0), F32(1) - F32(1) / m)
        if not ns:
            return pos.astype(np.float64)
        nsf = F32(ns)
        neg = np.clip(np.rint(p * nsf) * (F32(1) / (nsf * m)), F32(-1), F32(0))
        return (pos + m_i * nsf * neg).astype(np.float64)

    def steps(self) -> list[Step]:
        ns, bits, integer, u = self._grid()
        if not ns:
            return [Relu(), Quantize(Fixed(bits, integer, False), "rnd_conv", "sat")]
        # x >= 0: LSB*clip(rne(x/LSB), 0, 2^u - 1); x < 0: max(LSB*rne(ns*x/LSB), -ns*2^integer)
        return [LeakyRelu(Param.of_exact([ns])), Quantize(Fixed(bits, integer + 1, True), "rnd_conv", "sat"),
                Clip(-ns * 2.0 ** integer, None)]


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(F32(0.5) * x + F32(0.5), F32(0), F32(1))


@quantizer("quantized_tanh")
@dataclass(frozen=True)
class QuantizedTanh(Quantizer):
    bits: Any = 8
    use_stochastic_rounding: Any = False
    symmetric: Any = False
    use_real_tanh: Any = False

    def check(self) -> None:
        super().check()
        _as_int(self.bits, "quantized_tanh bits", 1, 64)
        self._symmetric()
        if _as_bool(self.use_real_tanh, "quantized_tanh use_real_tanh"):
            raise QirError("quantized_tanh with use_real_tanh=True is not supported (a float32 tanh table is "
                           "not bit-exact); supported: the default hard tanh")

    def _symmetric(self) -> int:
        return _symmetric_count(self.symmetric, "quantized_tanh symmetric",
                                2 ** _as_int(self.bits, "quantized_tanh bits", 1, 64))

    def _values(self, x):
        m = F32(2.0) ** F32(_as_int(self.bits, "bits") - 1)
        p = F32(2) * _hard_sigmoid(x) - F32(1)
        lo = F32(-1) + F32(1.0 * self._symmetric()) / m
        return np.clip(np.rint(p * m) / m, lo, F32(1) - F32(1) / m)

    def steps(self) -> list[Step]:
        bits, sym = _as_int(self.bits, "bits"), self._symmetric()
        out = [Quantize(Fixed(bits, 1, True), "rnd_conv", "sat_sym" if sym == 1 else "sat")]
        if sym > 1:
            out.append(Clip(-1.0 + sym * 2.0 ** (1 - bits), None))
        return out


@quantizer("quantized_sigmoid")
@dataclass(frozen=True)
class QuantizedSigmoid(Quantizer):
    bits: Any = 8
    symmetric: Any = False
    use_real_sigmoid: Any = False
    use_stochastic_rounding: Any = False

    def check(self) -> None:
        super().check()
        _as_int(self.bits, "quantized_sigmoid bits", 1, 64)
        self._symmetric()
        if _as_bool(self.use_real_sigmoid, "quantized_sigmoid use_real_sigmoid"):
            raise QirError("quantized_sigmoid with use_real_sigmoid=True is not supported (a float32 sigmoid "
                           "table is not bit-exact); supported: the default hard sigmoid")

    def _symmetric(self) -> int:
        return _symmetric_count(self.symmetric, "quantized_sigmoid symmetric",
                                2 ** _as_int(self.bits, "quantized_sigmoid bits", 1, 64))

    def _values(self, x):
        m = F32(2.0) ** F32(_as_int(self.bits, "bits"))
        lo = F32(1.0 * self._symmetric()) / m
        return np.clip(np.rint(_hard_sigmoid(x) * m) / m, lo, F32(1) - F32(1) / m)

    def steps(self) -> list[Step]:
        bits, sym = _as_int(self.bits, "bits"), self._symmetric()
        out = [Affine(0.5, 0.5), Quantize(Fixed(bits, 0, False), "rnd_conv", "sat")]
        if sym:
            out.append(Clip(sym * 2.0 ** -bits, None))
        return out


@quantizer("binary")
@dataclass(frozen=True)
class Binary(Quantizer):
    use_01: Any = False
    alpha: Any = None
    use_stochastic_rounding: Any = False
    scale_axis: Any = None
    elements_per_scale: Any = None
    min_po2_exponent: Any = None
    max_po2_exponent: Any = None

    def check(self) -> None:
        super().check()
        _as_bool(self.use_01, f"{self.NAME} use_01")
        for key in ("scale_axis", "elements_per_scale", "min_po2_exponent", "max_po2_exponent"):
            if getattr(self, key, None) is not None:
                raise QirError(f"{self.NAME}: {key}={getattr(self, key)!r} is not supported yet; only the "
                               "default (None) is")

    def for_kernel(self) -> Quantizer:
        return replace(self, alpha="auto_po2") if self.alpha is None else self

    def _values(self, x):
        k = np.where(x >= 0, F32(1), F32(-1))
        if _as_bool(self.use_01, "use_01"):
            k = (k + F32(1)) / F32(2)
        if isinstance(self.alpha, str):
            return (_ls_scale(x, k, self.alpha == "auto_po2") * k).astype(F32)
        return _scaled(k, self.alpha, self.NAME)

    def steps(self) -> list[Step]:
        self._no_auto_activation()
        return [Sign(_as_bool(self.use_01, "use_01")), *self._alpha_steps()]


@quantizer("stochastic_binary")
@dataclass(frozen=True)
class StochasticBinary(Binary):
    """At inference (training=False) QKeras calls binary.__call__ (use_01 False)."""

    alpha: Any = None
    temperature: Any = 6.0
    use_real_sigmoid: Any = True
    use_01: Any = False
    use_stochastic_rounding: Any = False
    scale_axis: Any = None
    elements_per_scale: Any = None
    min_po2_exponent: Any = None
    max_po2_exponent: Any = None


@quantizer("ternary")
@dataclass(frozen=True)
class TernaryQ(Quantizer):
    alpha: Any = None
    threshold: Any = None
    use_stochastic_rounding: Any = False
    number_of_unrolls: Any = 5

    def check(self) -> None:
        super().check()
        if self.threshold is not None:
            if isinstance(self.alpha, str):
                raise QirError(f"{self.NAME}: a threshold cannot be combined with alpha={self.alpha!r}")
            if _as_float(self.threshold, f"{self.NAME} threshold") < 0:
                raise QirError(f"{self.NAME}: threshold must be >= 0, got {self.threshold}")
        _as_int(self.number_of_unrolls, f"{self.NAME} number_of_unrolls", 0, 100)

    def for_kernel(self) -> Quantizer:
        return replace(self, alpha="auto_po2") if self.alpha is None else self

    @property
    def _threshold(self) -> float:
        return float(F32(0.33 if self.threshold is None else self.threshold))

    def _values(self, x):
        if isinstance(self.alpha, str):
            po2 = self.alpha == "auto_po2"
            scale = (F32(2) * _channel_max(x) / F32(3)).astype(F32)
            if po2:
                scale = _po2_round(scale)
            q = np.zeros_like(x)
            for _ in range(_as_int(self.number_of_unrolls, "number_of_unrolls")):
                thres = scale / F32(2)
                v = scale * np.rint(x / scale)
                q = (np.abs(v) >= thres).astype(F32) * np.sign(x)
                scale = _ls_scale(x, q, po2)
            return (scale * q).astype(F32)
        q = (np.abs(x) >= F32(self._threshold)).astype(F32) * np.sign(x)
        return _scaled(q, self.alpha, self.NAME)

    def steps(self) -> list[Step]:
        self._no_auto_activation()
        return [Ternary(self._threshold), *self._alpha_steps()]


@quantizer("stochastic_ternary")
@dataclass(frozen=True)
class StochasticTernary(TernaryQ):
    """At inference (training=False) QKeras calls ternary.__call__ with the same alpha/threshold."""

    alpha: Any = None
    threshold: Any = None
    temperature: Any = 8.0
    use_real_sigmoid: Any = True
    number_of_unrolls: Any = 5
    use_stochastic_rounding: Any = False


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
        _as_int(self.bits, f"{self.NAME} bits", 2, 16)
        if self.max_value is not None and (isinstance(self.max_value, (str, bool))
                                           or not float(self.max_value) >= 0):
            raise QirError(f"{self.NAME}: max_value must be a non-negative number, got {self.max_value!r}")
        if self.log2_rounding not in ("rnd", "floor"):
            raise QirError(f"{self.NAME}: log2_rounding={self.log2_rounding!r} is not 'rnd' or 'floor'")
        _as_bool(self.quadratic_approximation, f"{self.NAME} quadratic_approximation")

    def exponent_range(self) -> tuple[int, int]:
        """[min_exp, max_exp] of the exponent (docs/quantizer_semantics.md §1.8)."""
        sign_bit = 1 if self.max_value is None or float(self.max_value) > 1 else 0
        eb = _as_int(self.bits, "bits") - 1 - sign_bit
        lo, hi = -(2 ** eb), 2 ** eb - 1
        return lo, (2 * (hi // 2) if self.quadratic_approximation else hi)

    def _exponent(self, a: np.ndarray) -> np.ndarray:
        """QKeras _clip_power_of_two on float32 magnitudes (negative values count as < eps)."""
        lo, hi = self.exponent_range()
        xf = np.where(a < EPS, EPS, a)
        if self.max_value is not None:
            mv = F32(self.max_value)
            xf = np.where(xf >= mv, mv, xf)
        q = 2 if self.quadratic_approximation else 1
        log2 = np.log(np.sqrt(xf) if q == 2 else xf) / LN2
        e = np.floor(log2) if self.log2_rounding == "floor" else np.rint(log2)
        return np.where(a < EPS, lo, q * np.clip(e, lo, hi)).astype(np.int64)

    def _values(self, x):
        sign = np.where(x >= 0, 1.0, -1.0)
        return sign * np.ldexp(1.0, self._exponent(np.abs(x)))

    def steps(self) -> list[Step]:
        return [Table(self.NAME, lambda v: self._values(v.astype(F32)), monotone=True)]


@quantizer("quantized_relu_po2")
@dataclass(frozen=True)
class QuantizedReluPo2(QuantizedPo2):
    bits: Any = 8
    max_value: Any = None
    negative_slope: Any = 0
    use_stochastic_rounding: Any = False
    quadratic_approximation: Any = False
    log2_rounding: Any = "rnd"
    qnoise_factor: Any = 1.0
    var_name: Any = None
    use_ste: Any = True
    use_variables: Any = False

    def check(self) -> None:
        super().check()
        if _as_float(self.negative_slope or 0, f"{self.NAME} negative_slope") < 0:
            raise QirError(f"{self.NAME}: negative_slope must be >= 0")

    def exponent_range(self) -> tuple[int, int]:
        sign_bit = 1 if self.max_value is None or float(self.max_value) > 1 else 0
        eb = _as_int(self.bits, "bits") - sign_bit
        lo, hi = -(2 ** eb), 2 ** eb - 1
        return lo, (2 * (hi // 2) if self.quadratic_approximation else hi)

    def _values(self, x):
        ns = F32(self.negative_slope or 0)
        leaky = np.where(x >= 0, x, F32(0.2) * x)  # keras.ops.leaky_relu default slope
        pos = np.ldexp(1.0, self._exponent(leaky))
        if not ns:
            return pos
        neg = -np.ldexp(1.0, self._exponent(np.where(-x >= 0, -x, F32(0.2) * -x) * ns))
        return np.where(x >= 0, pos, neg)


def _rejected(name: str, why: str):
    cls = type(name, (Quantizer,), {"REJECT": why, "__annotations__": {}})
    quantizer(name)(dataclass(frozen=True)(cls))


_rejected("bernoulli", "it samples randomly even at inference")


@quantizer("quantized_ulaw")
@dataclass(frozen=True)
class QuantizedUlaw(Quantizer):
    """mu-law codebook (docs/quantizer_semantics.md §1.5).  As a weight quantizer its 2^bits levels
    are float32 constants (QKeras multiplies by exactly these), imported as exact wide constants; as
    an activation its outputs are not on a fixed-point grid and it is rejected."""

    bits: Any = 8
    integer: Any = 0
    symmetric: Any = 0
    u: Any = 255.0

    def check(self) -> None:
        super().check()
        _as_int(self.bits, f"{self.NAME} bits", 1, 16)
        _as_int(self.integer, f"{self.NAME} integer")
        _as_bool(self.symmetric, f"{self.NAME} symmetric")
        if not _as_float(self.u, f"{self.NAME} u") > 0:
            raise QirError(f"{self.NAME}: u must be > 0, got {self.u!r}")

    def _values(self, x):
        m = F32(2.0 ** (_as_int(self.bits, "bits") - 1))
        m_i = F32(2.0 ** _as_int(self.integer, "integer"))
        u = F32(_as_float(self.u, "u"))
        p = _hard_sigmoid(x / m_i) * m
        rp = F32(2.0) * (np.rint(p) / m) - F32(1.0)
        ulaw = np.sign(rp) * np.log(F32(1) + u * np.abs(rp)) / np.log(F32(1) + u)
        lo = F32(-1.0) + F32(float(_as_bool(self.symmetric, "symmetric"))) / m
        return (m_i * np.clip(ulaw, lo, F32(1.0) - F32(1.0) / m)).astype(F32)

    def steps(self) -> list[Step]:
        raise QirError(f"{self.NAME} is not supported as an activation: its outputs are not on a fixed-point "
                       "grid (mu-law); use it as a kernel/bias quantizer, or quantized_bits/quantized_po2 here")


_rejected("quantized_hswish", "hard swish quantization is not implemented")


def _class_name(d: dict) -> str:
    name = d.get("class_name")
    if not isinstance(name, str):
        raise QirError(f"quantizer entry without a class_name: {str(d)[:80]}")
    # a plain function is saved as {"class_name": "function", "module": "builtins", "config": <name>}:
    # the name is what resolves it (against the Keras and QKeras names), not the module
    package = layer_package(d) if name != "function" else None
    if package is not None:
        raise QirError(f"quantizer {name!r} comes from package {package!r}, which qir does not implement "
                       "(it reads Keras activations and QKeras quantizers only)")
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
    if isinstance(entry, dict) and _class_name(entry) == "function" and isinstance(entry.get("config"), str):
        entry = entry["config"]  # Keras 3 serializes a plain function as {"class_name": "function", ...}
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
