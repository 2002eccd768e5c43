"""The thin layer between qir and xDSL: context, parsing, printing, building.

xDSL's API changes monthly; every other module goes through these few functions so a version bump
touches one file.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, ModuleOp, StringAttr
from xdsl.ir import Block, Operation, Region
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException

from qir.dialect import QIR, ModelOp
from qir.errors import QirError


def make_context() -> Context:
    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(QIR)
    return ctx


#: One IR token that matters for the guards: a comment, a complete string literal (xDSL's escapes;
#: unrolled and possessive (Python 3.11): runs of plain characters and escapes keep no backtracking
#: state, so the match is linear in time and constant in memory -- the alternation form kept ~160
#: bytes per character, 3.5 GB for a 22 MB weight literal), a bare
#: quote (a string that never closes), or a run of anything else.
_IR_TOKENS = re.compile(r'(//[^\n]*)|("[^"\\\n\v\f]*+(?:\\(?:["nt\\]|[0-9A-Fa-f]{2})[^"\\\n\v\f]*+)*+")|(")|[^"/]+|/')


def check_ir_text(text: str, where: str = "<input>") -> None:
    """Guards run before xDSL's parser sees untrusted IR: a string literal that does not close on
    its line (xDSL's string regex backtracks exponentially on it: a cut file would hang) and
    nesting deeper than ``qir.safety.MAX_NESTING`` (the recursive parser would overflow) are
    one QirError line each."""
    from qir.safety import MAX_NESTING, nesting_depth

    kept: list[str] = []
    for m in _IR_TOKENS.finditer(text):
        if m.group(3):
            line = text.count("\n", 0, m.start()) + 1
            raise QirError(f"invalid IR: unterminated or malformed string literal at line {line}; the file is "
                           "cut or corrupt", where=where)
        if not (m.group(1) or m.group(2)):
            kept.append(m.group(0))
    body = "".join(kept).replace("->", "")
    depth = nesting_depth(body, "([{<", ")]}>")
    if depth > MAX_NESTING:
        raise QirError(f"invalid IR: nested {depth} levels deep, more than qir's limit of {MAX_NESTING}",
                       where=where)


def decode_ir(data: bytes, where: str = "<input>") -> str:
    """IR bytes as text: UTF-8 or one QirError line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise QirError(f"invalid IR: not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}); IR files "
                       "are UTF-8", where=where) from None


def parse_module(text: str, filename: str = "<input>") -> ModuleOp:
    """Parse and verify textual IR; any problem becomes one QirError naming the file."""
    check_ir_text(text, filename)
    try:
        module = Parser(make_context(), text, filename).parse_module()
    except RecursionError:
        raise QirError("invalid IR: nested too deeply", where=filename) from None
    except ParseError as e:
        raise QirError(f"invalid IR: {_first_line(e)}; check the syntax against docs/ARCHITECTURE.md",
                       where=filename) from None
    except (DiagnosticException, ValueError, KeyError) as e:
        raise QirError(f"invalid IR: {_first_line(e)}", where=filename) from None
    verify(module, filename)
    return module


def read_module(path: str | Path) -> ModuleOp:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise QirError("no such file", where=str(p)) from None
    except OSError as e:
        raise QirError(f"cannot read IR file: {e.strerror or e}", where=str(p)) from None
    return parse_module(decode_ir(data, str(p)), str(p))


def verify(module: Operation, where: str = "<input>") -> None:
    try:
        module.verify()
    except (VerifyException, DiagnosticException, ValueError) as e:
        raise QirError(f"invalid IR: {_first_line(e)}", where=where) from None


def print_module(module: Operation, generic: bool = False) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=generic).print_op(module)
    out.write("\n")
    return out.getvalue()


def get_model(module: ModuleOp, where: str = "<input>") -> ModelOp:
    """The one ``qir.model`` in a module."""
    models = [op for op in module.ops if isinstance(op, ModelOp)]
    if len(models) != 1:
        raise QirError(f"expected exactly one qir.model, found {len(models)}", where=where)
    return models[0]


def new_model(name: str) -> tuple[ModuleOp, ModelOp, Block]:
    """An empty module holding one ``qir.model @name``; returns (module, model, its block)."""
    block = Block()
    model = ModelOp(name, Region(block))
    return ModuleOp([model]), model, block


def layer_of(op: Operation) -> str | None:
    a = op.attributes.get("layer")
    return a.data if isinstance(a, StringAttr) else None


def style_of(op: Operation) -> str | None:
    """The ``style`` hint a user put on a layer op (``{style = "mac"}``, e.g. from the precision
    configuration); the lowering passes honor it unless their ``layers=`` option names the layer."""
    a = op.attributes.get("style")
    return a.data if isinstance(a, StringAttr) else None


def set_layer(op: Operation, layer: str | None) -> Operation:
    if layer is not None:
        op.attributes["layer"] = StringAttr(layer)
    return op


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    # xDSL parse errors: "<file>:L:C", the source line, a caret line, then the message.
    msg = lines[-1] if len(lines) > 1 and set(lines[-2]) <= set("^~ ") else lines[0]
    loc = lines[0] if lines[0] != msg and ":" in lines[0] and len(lines) > 2 else ""
    text = f"{msg} (at {loc.split(' ')[0]})" if loc else msg
    return " ".join(text.split())[:400]


def reuse_of(op: Operation) -> int:
    """The reuse factor R a user (or the automatic folding) put on a layer op
    (``{reuse = 4 : i64}``, issue #12; absent = 1); the op's verifier checks R >= 1."""
    a = op.attributes.get("reuse")
    v = getattr(getattr(a, "value", None), "data", None)
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else 1
