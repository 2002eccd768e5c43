"""Progress lines of long compiles on stderr (``qir compile``).

``compiling(quiet)`` opens a reporter for one compile; ``note(msg)`` anywhere below it (passes,
RTL generators) prints ``qir: [  12.3 s] msg`` on stderr when stderr is a terminal, or, when it
is not (piped, captured), once the compile has run for more than ``AFTER`` seconds of wall
time, so a short compile stays silent in scripts and a long one says what it is doing.
``quiet=True`` prints nothing.  Outside a compile (``qir-opt``, the Python API) ``note`` does
nothing.  The lines are plain text, one per phase or layer: they need neither rich nor tqdm.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager

#: seconds after which a non-interactive compile starts printing progress lines
AFTER = 3.0

_current: _Reporter | None = None


class _Reporter:
    def __init__(self, quiet: bool, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.t0 = time.perf_counter()
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False

    def note(self, msg: str) -> None:
        if self.quiet:
            return
        dt = time.perf_counter() - self.t0
        if self.tty or dt > AFTER:
            print(f"qir: [{dt:7.1f} s] {msg}", file=self.stream, flush=True)


@contextmanager
def compiling(quiet: bool = False, stream=None):
    """Report progress of the compile inside this block (nested blocks keep the outer one)."""
    global _current
    outer = _current
    if outer is None:
        _current = _Reporter(quiet, stream)
    try:
        yield _current
    finally:
        _current = outer


def note(msg: str) -> None:
    """One progress line (see the module docstring); a no-op outside ``compiling``."""
    if _current is not None:
        _current.note(msg)
