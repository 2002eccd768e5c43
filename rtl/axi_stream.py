"""AXI4-Stream wrapper around a compiled qir top (``qir compile --axi-stream``).

The wrapper ``<top>_axis`` (file ``rtl/<top>_axis.v``) has the AXI4-Stream ports

    aclk, aresetn (synchronous, active low)
    s_axis_tdata[SW-1:0], s_axis_tvalid, s_axis_tready, s_axis_tlast     (slave: samples in)
    m_axis_tdata[MW-1:0], m_axis_tvalid, m_axis_tready, m_axis_tlast     (master: results out)

**TDATA packing.**  One transfer carries one sample (one whole input tensor, one whole output
tensor).  The core's data ports are concatenated in ``report.json`` order, the first port in the
least significant bits; inside a port element k sits at bits ``[k*W+W-1 : k*W]`` as raw mantissa
bits (the core's own packing).  TDATA is that concatenation rounded up to whole bytes
(``SW = 8*ceil(sum of input widths / 8)``, likewise ``MW``): the padding bits of
``s_axis_tdata`` are ignored, those of ``m_axis_tdata`` are zero (not sign-extended).  TLAST
travels with its sample: the output transfer of a sample carries that sample's TLAST.  There is
no TKEEP/TSTRB/TUSER (every byte is valid).

**Backpressure over a fixed-latency core.**  Today's cores accept a sample every cycle and have
no ready: the result comes out exactly ``latency`` cycles later whether anyone takes it or not.
The wrapper therefore admits a sample only when the output FIFO is certain to have room for it
(a credit scheme): ``used`` counts samples accepted and not yet handed out on ``m_axis``
(in the core, in the TLAST delay line, in the FIFO), ``s_axis_tready = used < DEPTH``, and the FIFO
(Amaranth ``lib.fifo.SyncFIFOBuffered``, DEPTH entries, registered read data: block-RAM friendly)
can never overflow because it never holds more than ``used`` entries.  ``s_axis_tready``
depends only on registers (not on ``s_axis_tvalid`` or ``m_axis_tready``), as AXI4-Stream asks.

The depth is computed, not guessed (:func:`fifo_depth`): a sample accepted at a rising edge is
counted from that edge until it leaves on ``m_axis``; with ``m_axis_tready`` always high it is
counted for ``latency`` edges in the core, ``FIFO_LATENCY`` (= 2) more until the buffered FIFO
shows it on ``m_axis_tvalid`` and then handed out on the edge after, so ``latency + 2`` samples are
counted in steady state, and ``s_axis_tready`` stays high at one sample per cycle if
``DEPTH >= latency + 3``: ``DEPTH = latency + FIFO_LATENCY + 1``.  A smaller DEPTH would still be
correct (never lose or duplicate data) but would throttle the input; the tests check both the
data under random backpressure and the full rate without it.

**A valid/ready core** (the streaming architecture, ``--io stream``: ports clk, rst, in_valid,
in_ready, in_data, out_valid, out_ready, out_data) needs none of the credit logic: pass
``CoreInterface(..., latency=None)`` (``report.json`` with ``"io": "stream"`` does that).  One
transfer is then one *beat* (one pixel with all its channels; TDATA = the beat, packed and padded
as above), and the wrapper is wires plus a TLAST counter: ``s_axis_*`` drive ``in_valid``/``in_data`` and take
``in_ready``, ``out_valid``/``out_data`` drive ``m_axis_*`` and ``m_axis_tready`` is
``out_ready``, so the core's own backpressure (nothing lost or duplicated) and throughput (its
``ii_cycles``, its ``latency_cycles``) are the wrapper's.  **TLAST frames images**:
``m_axis_tlast`` is high on the last output beat of every image (a counter of the
``beats_out`` output beats per image, ``out_beats``); the core counts input beats itself, so
``s_axis_tlast`` is ignored (a source must send whole images of ``beats_in`` beats).  Ready
passes combinationally from ``m_axis_tready`` through the core to ``s_axis_tready``, as inside
the core (its stages' ``ce = ~out_valid | out_ready``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

from amaranth.back import verilog  # noqa: E402
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Instance, Module, Mux, ResetSignal, Signal  # noqa: E402
from amaranth.lib import fifo, wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from qir.errors import QirError  # noqa: E402

#: edges from a write into ``SyncFIFOBuffered`` until ``r_rdy`` shows it (its documented extra
#: cycle over ``SyncFIFO``'s one)
FIFO_LATENCY = 2

LINT_WAIVERS = (
    ("DECLFILENAME", "the wrapper file also holds Amaranth's FIFO submodules"),
    ("WIDTHEXPAND", "Amaranth relies on Verilog's implicit operand extension"),
    ("UNUSEDSIGNAL", "padding bits of s_axis_tdata (and a stream core's s_axis_tlast) are ignored by design"),
    ("PROCASSINIT", "Amaranth gives registers an initial value in their declaration"),
    ("WIDTHTRUNC", "Yosys writes Amaranth's zero test (x == 0) as a logical not (!x) of a multi-bit vector"),
)


_CONTROL = {"clk", "rst", "in_valid", "in_ready", "out_valid", "out_ready"}


def _beats(port: dict) -> int:
    """Beats per image of a stream port (report.json ``beats``, else shape over beat_shape)."""
    if isinstance(port.get("beats"), int):
        return port["beats"]
    shape, beat = port.get("shape") or [1], port.get("beat_shape") or port.get("shape") or [1]
    total, per = 1, 1
    for n in shape:
        total *= n
    for n in beat:
        per *= n
    return max(total // per, 1)


def byte_width(bits: int) -> int:
    return 8 * max(1, -(-bits // 8))


def fifo_depth(latency: int) -> int:
    """Output FIFO entries for full throughput with a fixed-latency core (see module docstring)."""
    return latency + FIFO_LATENCY + 1


@dataclass(frozen=True)
class CoreInterface:
    """What the wrapper needs to know about the wrapped core.

    ``inputs``/``outputs``: (port name, width) in TDATA order (first = least significant bits).
    ``latency``: cycles of a fixed-latency core without ready (ports clk, rst, in_valid, in_data*,
    out_valid, out_data*), or None for a valid/ready core (adds in_ready and out_ready).
    ``out_beats``: a valid/ready core's output beats per image (TLAST on the last).
    ``in_ready``: a fixed-latency core with folded layers (``qir.folding``) that also has an
    ``in_ready`` output (an input every ``ii_cycles``); ``s_axis_tready`` honours it."""

    name: str
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, int], ...]
    latency: int | None
    out_beats: int = 1
    in_ready: bool = False

    @classmethod
    def from_report(cls, report: dict) -> CoreInterface:
        data = [p for p in report["ports"] if p["name"] not in _CONTROL]
        ins = tuple((p["name"], int(p["width"])) for p in data if p["direction"] in ("input", "in"))
        outs = tuple((p["name"], int(p["width"])) for p in data if p["direction"] in ("output", "out"))
        if not ins or not outs:
            raise QirError("--axi-stream: the design needs at least one input and one output data port")
        if report.get("io") != "stream":
            ready = any(p["name"] == "in_ready" for p in report["ports"])  # folded layers
            return cls(report["top"], ins, outs, int(report["latency_cycles"]), in_ready=ready)
        if len(ins) != 1 or len(outs) != 1:
            raise QirError("--axi-stream: a stream core needs exactly one in_data and one out_data port")
        out_port = next(p for p in data if p["name"] == outs[0][0])
        return cls(report["top"], ins, outs, None, _beats(out_port))

    @property
    def in_bits(self) -> int:
        return sum(w for _, w in self.inputs)

    @property
    def out_bits(self) -> int:
        return sum(w for _, w in self.outputs)


class AxiStreamWrapper(wiring.Component):
    def __init__(self, core: CoreInterface, depth: int | None = None):
        """``depth`` overrides :func:`fifo_depth` (a smaller FIFO is still lossless but throttles)."""
        self.core = core
        self.s_width = byte_width(core.in_bits)
        self.m_width = byte_width(core.out_bits)
        self.depth = None
        if core.latency is not None:
            self.depth = fifo_depth(core.latency) if depth is None else depth
            if self.depth < 1:
                raise QirError("AXI-Stream wrapper: the output FIFO needs at least one entry")
        super().__init__({
            "aclk": In(1), "aresetn": In(1),
            "s_axis_tdata": In(self.s_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(self.m_width), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        })

    def _instance(self, m: Module, in_valid, in_data, out_valid, out_data, in_ready=None, out_ready=None):
        c = self.core
        kw = {"i_clk": ClockSignal("sync"), "i_rst": ResetSignal("sync"), "i_in_valid": in_valid,
              "o_out_valid": out_valid}
        pos = 0
        for name, w in c.inputs:
            kw[f"i_{name}"] = in_data[pos:pos + w]
            pos += w
        pos = 0
        for name, w in c.outputs:
            kw[f"o_{name}"] = out_data[pos:pos + w]
            pos += w
        if in_ready is not None:
            kw["o_in_ready"] = in_ready
        if out_ready is not None:
            kw["i_out_ready"] = out_ready
        m.submodules.core = Instance(c.name, **kw)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync", local=True)
        m.d.comb += [ClockSignal("sync").eq(self.aclk), ResetSignal("sync").eq(~self.aresetn)]
        c = self.core
        core_out_valid = Signal()
        core_out = Signal(c.out_bits)
        out_last = Signal()
        if c.latency is None:
            # valid/ready core (--io stream): one transfer = one beat, straight through; TLAST on
            # the last output beat of each image
            in_ready, core_out_ready = Signal(), Signal()
            self._instance(m, self.s_axis_tvalid, self.s_axis_tdata[:c.in_bits], core_out_valid, core_out,
                           in_ready, core_out_ready)
            m.d.comb += [self.s_axis_tready.eq(in_ready), core_out_ready.eq(self.m_axis_tready),
                         self.m_axis_tvalid.eq(core_out_valid), self.m_axis_tdata.eq(core_out)]
            if c.out_beats == 1:
                m.d.comb += self.m_axis_tlast.eq(1)
                return m
            beat = Signal(range(c.out_beats), name="out_beat")
            m.d.comb += out_last.eq(beat == c.out_beats - 1)
            m.d.comb += self.m_axis_tlast.eq(out_last)
            with m.If(core_out_valid & self.m_axis_tready):
                m.d.sync += beat.eq(Mux(out_last, 0, beat + 1))
            return m

        depth = self.depth
        used = Signal(range(depth + 1))
        in_fire = Signal()
        core_ready = Signal() if c.in_ready else None  # folded layers: the core's in_ready (registers only)
        ready = (used < depth) & core_ready if c.in_ready else used < depth
        m.d.comb += [self.s_axis_tready.eq(ready), in_fire.eq(self.s_axis_tvalid & self.s_axis_tready)]
        self._instance(m, in_fire, self.s_axis_tdata[:c.in_bits], core_out_valid, core_out, core_ready)
        # TLAST rides a delay line of the core's latency next to the data
        last = self.s_axis_tlast
        for k in range(c.latency):
            r = Signal(name=f"tlast_d{k + 1}")
            m.d.sync += r.eq(last)
            last = r
        m.d.comb += out_last.eq(last)

        m.submodules.ofifo = q = fifo.SyncFIFOBuffered(width=c.out_bits + 1, depth=depth)
        r = q.r_stream  # lib.stream view of the FIFO's read side: payload = {tlast, tdata}
        m.d.comb += [q.w_en.eq(core_out_valid), q.w_data.eq(Cat(core_out, out_last)),
                     self.m_axis_tvalid.eq(r.valid), r.ready.eq(self.m_axis_tready),
                     self.m_axis_tdata.eq(r.payload[:c.out_bits]), self.m_axis_tlast.eq(r.payload[c.out_bits])]
        out_fire = self.m_axis_tvalid & self.m_axis_tready
        with m.If(in_fire & ~out_fire):
            m.d.sync += used.eq(used + 1)
        with m.Elif(out_fire & ~in_fire):
            m.d.sync += used.eq(used - 1)
        return m


def generate_axi_stream(report: dict, depth: int | None = None) -> tuple[str, str]:
    """(file name, Verilog text) of the AXI4-Stream wrapper for a ``qir compile`` report."""
    core = CoreInterface.from_report(report)
    w = AxiStreamWrapper(core, depth)
    name = f"{core.name}_axis"
    text = verilog.convert(w, name=name, emit_src=False, strip_internal_attrs=True)
    head = ["// qir: AXI4-Stream wrapper of " + core.name + " (qir.rtl.axi_stream); Verilator waivers:"]
    head += [f"/* verilator lint_off {rule} */  // {why}" for rule, why in LINT_WAIVERS]
    tail = [f"/* verilator lint_on {rule} */" for rule, _ in LINT_WAIVERS]
    return f"{name}.v", "\n".join(head) + "\n" + text.rstrip("\n") + "\n\n" + "\n".join(tail) + "\n"


def axi_stream_info(report: dict) -> dict:
    """The wrapper's description for report.json (``axi_stream``)."""
    core = CoreInterface.from_report(report)
    fields, pos = [], 0
    for name, width in core.inputs:
        fields.append({"port": name, "tdata": "s_axis", "lsb": pos, "width": width})
        pos += width
    pos = 0
    for name, width in core.outputs:
        fields.append({"port": name, "tdata": "m_axis", "lsb": pos, "width": width})
        pos += width
    depth = fifo_depth(core.latency) if core.latency is not None else None
    info = {"top": f"{core.name}_axis", "s_tdata_width": byte_width(core.in_bits),
            "m_tdata_width": byte_width(core.out_bits), "fifo_depth": depth, "packing": fields,
            "padding": "s_axis_tdata bits above the inputs are ignored; m_axis_tdata bits above the outputs are 0"}
    if core.latency is None:
        info.update(transfer="one beat (the last axis of the tensor)", out_beats=core.out_beats,
                    tlast=f"m_axis_tlast on the last of every {core.out_beats} output beat(s) (one image); "
                          "s_axis_tlast is ignored (the core counts input beats)")
    else:
        info.update(transfer="one sample (whole tensors)", tlast="m_axis_tlast = the s_axis_tlast of its sample")
    return info
