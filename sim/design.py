"""A compiled design directory as the simulators see it: ``report.json`` and ``rtl/``.

The RTL contract: ports ``clk``, ``rst`` (synchronous, active high), ``in_valid``, ``in_data``
(or ``in_data_<k>``), ``out_valid``, ``out_data`` (or ``out_data_<k>``).  A data port packs its
tensor's elements in C order, element k at bits ``[k*W+W-1 : k*W]``, as raw mantissa bits (two's
complement for ``fixed``, unsigned for ``ufixed``).  An input is accepted at every rising edge
with ``in_valid`` high; its result appears with ``out_valid`` exactly ``latency_cycles`` edges
later (0 = combinational).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qir.errors import QirError
from qir.fixed import Fixed

CONTROL_PORTS = {"clk": "input", "rst": "input", "in_valid": "input", "out_valid": "output"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_DIRECTIONS = {"input": "input", "in": "input", "output": "output", "out": "output"}


@dataclass(frozen=True)
class DataPort:
    """One packed tensor port."""

    name: str
    direction: str              # "input" | "output"
    width: int                  # port width in bits
    elem: Fixed                 # element format (raw unsigned bits if the report gives none)
    shape: tuple[int, ...]

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def hex_digits(self) -> int:
        return (self.width + 3) // 4

    def check_mantissas(self, mant: np.ndarray, what: str) -> np.ndarray:
        """``mant`` as an (N, *shape) integer array inside the element range, else QirError."""
        a = np.asarray(mant)
        if a.ndim == 0 or a.shape[1:] != self.shape:
            raise QirError(f"{what}: expected shape (N, {', '.join(map(str, self.shape))}) for port "
                           f"'{self.name}', got {a.shape}")
        if a.dtype != object and not np.issubdtype(a.dtype, np.integer):
            raise QirError(f"{what}: mantissas must be integers, got dtype {a.dtype}")
        if a.size:
            lo, hi = a.min(), a.max()
            if lo < self.elem.min_int or hi > self.elem.max_int:
                raise QirError(f"{what}: mantissas [{lo}, {hi}] do not fit {self.elem} of port '{self.name}'")
        return a


@dataclass(frozen=True)
class Design:
    outdir: Path
    top: str
    latency: int
    inputs: tuple[DataPort, ...]
    outputs: tuple[DataPort, ...]
    rtl_files: tuple[str, ...] | None = None   # report.json's "rtl" list (paths under OUTDIR)
    in_ready: bool = False                      # --io parallel with folded layers: an in_ready port
    ii: int = 1                                 # report.json's ii_cycles (parallel designs)

    @property
    def report_path(self) -> Path:
        return self.outdir / "report.json"

    @property
    def rtl_dir(self) -> Path:
        return self.outdir / "rtl"

    @property
    def tb_dir(self) -> Path:
        return self.outdir / "tb"

    @property
    def net_path(self) -> Path:
        return self.outdir / "net.mlir"

    def rtl_sources(self) -> list[Path]:
        """The synthesizable sources: report.json's ``rtl`` list, else ``rtl/*.v`` / ``*.sv``."""
        if self.rtl_files is not None:
            files = [self.outdir / f for f in self.rtl_files]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise QirError(f"report.json lists missing source(s): {', '.join(missing)}",
                               where=str(self.report_path))
        else:
            files = sorted(p for p in self.rtl_dir.glob("*") if p.suffix in (".v", ".sv") and p.is_file())
        if not files:
            raise QirError("no Verilog sources (*.v) found", where=str(self.rtl_dir))
        return files


def load_design(outdir: str | Path) -> Design:
    """Read and validate ``OUTDIR/report.json``; every problem is a QirError naming the file."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise QirError("no such design directory (run `qir compile` first)", where=str(outdir))
    path = outdir / "report.json"
    where = str(path)
    from qir.safety import load_json

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise QirError("missing report.json; the directory is not a complete `qir compile` output",
                       where=where) from None
    except OSError as e:
        raise QirError(f"corrupt report.json: {e}", where=where) from None
    try:
        report = load_json(data, where, "JSON")
    except QirError as e:
        raise QirError(f"corrupt report.json: {str(e).removeprefix(where + ': ')}", where=where) from None
    return design_from_report(report, outdir, where)


def data_view(report: dict) -> dict:
    """report.json's content without the valid/ready handshake (``io`` and the ``in_ready`` /
    ``out_ready`` ports): the data ports of a stream core, read like a fixed-latency design's
    (the AXI-Stream wrapper's benches use it; they drive the handshake themselves)."""
    return {**{k: v for k, v in report.items() if k != "io"},
            "ports": [p for p in report["ports"] if p["name"] not in ("in_ready", "out_ready")]}


def design_from_report(report: dict, outdir: str | Path, where: str | None = None) -> Design:
    """A Design from report.json's content (``where`` names it in errors)."""
    outdir = Path(outdir)
    where = where or str(outdir / "report.json")
    if not isinstance(report, dict):
        raise QirError("corrupt report.json: expected a JSON object", where=where)

    top = report.get("top")
    if not isinstance(top, str) or not _IDENT.match(top):
        raise QirError(f"corrupt report.json: 'top' must be a Verilog module name, got {top!r}", where=where)
    latency = report.get("latency_cycles")
    if not isinstance(latency, int) or isinstance(latency, bool) or latency < 0:
        raise QirError(f"corrupt report.json: 'latency_cycles' must be an integer >= 0, got {latency!r}",
                       where=where)
    ports = report.get("ports")
    if not isinstance(ports, list) or not ports:
        raise QirError("corrupt report.json: 'ports' must be a non-empty list", where=where)

    control = dict(CONTROL_PORTS)
    if report.get("io") == "stream":  # --io stream: valid/ready handshakes on both sides
        control.update({"in_ready": "output", "out_ready": "input"})
    elif any(isinstance(p, dict) and p.get("name") == "in_ready" for p in ports if isinstance(ports, list)):
        control["in_ready"] = "output"  # --io parallel with folded layers: an input every ii cycles
    ii = report.get("ii_cycles", 1) if report.get("io") != "stream" else 1
    if not isinstance(ii, int) or isinstance(ii, bool) or ii < 1:
        raise QirError(f"corrupt report.json: 'ii_cycles' must be an integer >= 1, got {ii!r}", where=where)
    seen: dict[str, str] = {}
    data: list[DataPort] = []
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            raise QirError(f"corrupt report.json: ports[{i}] is not an object", where=where)
        name, direction, width = p.get("name"), _DIRECTIONS.get(p.get("direction")), p.get("width")
        if not isinstance(name, str) or not _IDENT.match(name):
            raise QirError(f"corrupt report.json: ports[{i}] has no valid 'name'", where=where)
        if direction is None:
            raise QirError(f"corrupt report.json: port '{name}' has direction {p.get('direction')!r} "
                           "(expected 'input' or 'output')", where=where)
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise QirError(f"corrupt report.json: port '{name}' has width {width!r}", where=where)
        if name in seen:
            raise QirError(f"corrupt report.json: port '{name}' listed twice", where=where)
        seen[name] = direction
        if name in control:
            if direction != control[name] or width != 1:
                raise QirError(f"corrupt report.json: '{name}' must be a 1-bit {control[name]}",
                               where=where)
            continue
        data.append(_data_port(p, name, direction, width, where))

    missing = [n for n in control if n not in seen]
    if missing:
        raise QirError(f"corrupt report.json: the design lacks the port(s) {', '.join(missing)} "
                       "required by the RTL contract", where=where)
    inputs = tuple(_ordered([d for d in data if d.direction == "input"], "in_data", where))
    outputs = tuple(_ordered([d for d in data if d.direction == "output"], "out_data", where))
    if not inputs or not outputs:
        raise QirError("corrupt report.json: the design needs at least one in_data and one out_data port",
                       where=where)
    rtl = report.get("rtl")
    if rtl is not None:
        if not isinstance(rtl, list) or not all(isinstance(f, str) and f and not Path(f).is_absolute()
                                                and ".." not in Path(f).parts for f in rtl):
            raise QirError(f"corrupt report.json: 'rtl' must list source paths inside the design "
                           f"directory, got {rtl!r}", where=where)
        rtl = tuple(rtl)
    return Design(outdir=outdir.absolute(), top=top, latency=latency, inputs=inputs, outputs=outputs, rtl_files=rtl,
                  in_ready="in_ready" in control and report.get("io") != "stream", ii=ii)


def _data_port(p: dict, name: str, direction: str, width: int, where: str) -> DataPort:
    t, shape = p.get("type"), p.get("shape")
    if shape is None:
        shape = ()
    if not isinstance(shape, list | tuple) or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise QirError(f"corrupt report.json: port '{name}' has shape {shape!r}", where=where)
    shape = tuple(shape)
    if t is None:
        elem = Fixed(width, width, False)     # raw bits: one unsigned integer per port
        if shape not in ((), (1,)):
            raise QirError(f"corrupt report.json: port '{name}' has a shape but no element type", where=where)
    else:
        if not isinstance(t, str):
            raise QirError(f"corrupt report.json: port '{name}' has type {t!r}", where=where)
        try:
            elem = Fixed.parse(t)
        except QirError as e:
            raise QirError(f"corrupt report.json: port '{name}': {e}", where=where) from None
    beat = p.get("beat_shape")  # --io stream: the port carries one beat (the last axis) at a time
    per_word = shape if not isinstance(beat, list) else tuple(beat)
    if elem.width * math.prod(per_word) != width:
        raise QirError(f"corrupt report.json: port '{name}' is {width} bits wide but holds "
                       f"{math.prod(per_word)} x {elem} = {elem.width * math.prod(per_word)} bits", where=where)
    return DataPort(name=name, direction=direction, width=width, elem=elem, shape=shape)


def _ordered(ports: list[DataPort], base: str, where: str) -> list[DataPort]:
    """``base`` alone, or ``base_0, base_1, ...`` in index order."""
    if len(ports) == 1 and ports[0].name == base:
        return ports
    def index(p: DataPort) -> int:
        m = re.fullmatch(rf"{base}_(\d+)", p.name)
        if not m:
            raise QirError(f"corrupt report.json: unexpected data port '{p.name}' (expected {base} or "
                           f"{base}_<k>)", where=where)
        return int(m.group(1))
    ordered = sorted(ports, key=index)
    if [index(p) for p in ordered] != list(range(len(ordered))):
        raise QirError(f"corrupt report.json: {base}_<k> ports must be numbered 0..{len(ordered) - 1}",
                       where=where)
    return ordered
