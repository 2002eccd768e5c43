"""The thin layer between qir and xDSL: context, parsing, printing, building.

xDSL's API changes monthly; every other module goes through these few functions so a version bump
touches one file.
"""
from __future__ import annotations

import io
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


def parse_module(text: str, filename: str = "<input>") -> ModuleOp:
    """Parse and verify textual IR; any problem becomes one QirError naming the file."""
    try:
        module = Parser(make_context(), text, filename).parse_module()
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
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QirError("no such file", where=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise QirError(f"cannot read IR file: {e}", where=str(p)) from None
    return parse_module(text, str(p))


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
