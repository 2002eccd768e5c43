"""The QKeras quantizer string-spec grammar: ``name(args, key=value)`` as written in saved QKeras
models (``"quantized_bits(6, 0, alpha=1)"``), parsed without ``eval`` (model files are untrusted)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from qir.errors import QirError


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
