"""Progress lines of ``qir compile`` (qir.progress): on a terminal, after AFTER seconds when
piped, never with --quiet, never outside a compile."""
import io

from qir import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_terminal_gets_every_line_quiet_gets_none():
    tty = _Tty()
    with progress.compiling(quiet=False, stream=tty):
        progress.note("layer fc1")
    assert "layer fc1" in tty.getvalue() and tty.getvalue().startswith("qir: [")
    tty = _Tty()
    with progress.compiling(quiet=True, stream=tty):
        progress.note("layer fc1")
    assert tty.getvalue() == ""


def test_piped_prints_only_after_a_few_seconds():
    pipe = io.StringIO()
    with progress.compiling(quiet=False, stream=pipe) as rep:
        progress.note("early")
        rep.t0 -= progress.AFTER + 1  # the compile has now run longer than AFTER
        progress.note("late")
    assert "early" not in pipe.getvalue() and "late" in pipe.getvalue()
    progress.note("outside")  # no reporter: nothing, no error
    assert "outside" not in pipe.getvalue()
