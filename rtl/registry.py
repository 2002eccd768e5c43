"""The RTL generator registry: each generator module declares, next to its code, which op it
builds (``@generator``), what it rejects before building (``@check``) and its internal pipeline
latency (``@latency``), as the interpreter's ``@impl`` does for semantics.  ``qir.rtl.top`` imports
every module of ``qir.rtl`` once, so a new generator module needs no edit anywhere else."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from amaranth.hdl import Module
from qir.rtl.values import Tensor
from xdsl.ir import Operation

#: generator(op, input tensors, name prefix, error location) -> (submodule or None, result)
Generate = Callable[[Operation, list[Tensor], str, str], tuple[Module | None, Tensor]]


@dataclass
class Entry:
    generate: Generate
    kind: str                                                   # submodule name suffix
    check: Callable[[Operation, str], None] | None = None       # rejects before any Amaranth object
    latency: Callable[[Operation], int] | None = None           # internal pipeline latency (cycles)
    ii: Callable[[Operation], int] | None = None                # cycles between inputs (folded ops)


GENERATORS: dict[type[Operation], Entry] = {}
_PENDING: dict[type[Operation], dict] = {}


def generator(op_class: type[Operation], kind: str):
    """Register ``fn`` as the generator of ``op_class``; ``kind`` names its submodules."""
    def register(fn: Generate) -> Generate:
        GENERATORS[op_class] = Entry(fn, kind, **_PENDING.pop(op_class, {}))
        return fn
    return register


def _attach(op_class: type[Operation], what: str, fn) -> None:
    entry = GENERATORS.get(op_class)
    if entry is None:
        _PENDING.setdefault(op_class, {})[what] = fn
    else:
        setattr(entry, what, fn)


def check(op_class: type[Operation]):
    """Register ``fn(op, where)``, which raises ``QirError`` for what the generator cannot build."""
    def register(fn):
        _attach(op_class, "check", fn)
        return fn
    return register


def latency(op_class: type[Operation]):
    """Register ``fn(op) -> cycles``, the op's internal pipeline latency (default 0)."""
    def register(fn):
        _attach(op_class, "latency", fn)
        return fn
    return register


def ii(op_class: type[Operation]):
    """Register ``fn(op) -> cycles``: the op accepts an input at most every that many cycles (a
    folded layer, ``qir.folding``; default 1).  Its generator is then called with the keyword
    ``start``, the 1-bit valid of its input (high for one cycle per accepted input), and ``rst``
    (the synchronous reset, for its control state), and the
    top guarantees inputs at least that many cycles apart (``in_ready``)."""
    def register(fn):
        _attach(op_class, "ii", fn)
        return fn
    return register


_LOADED = False


def load_all() -> dict[type[Operation], Entry]:
    """Import every generator module of ``qir.rtl`` (they register themselves); the registry."""
    global _LOADED
    if not _LOADED:
        import qir.rtl as pkg

        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.name not in ("top", "registry", "values"):
                importlib.import_module(f"qir.rtl.{info.name}")
        _LOADED = True
    return GENERATORS
