"""cocotb 2.1 tests of a design compiled by qir (qir.sim.testbench copies this file to
OUTDIR/tb/test_<top>.py).

Inputs and the expected output mantissas (computed by qir's reference interpreter from net.mlir)
are read from cocotb_<top>.json next to this file.  Run with ``python run_cocotb.py --simulator
icarus|verilator`` (uses cocotb_tools.runner).
"""
import json
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

SPEC = json.loads(Path(__file__).with_name(f"cocotb_{Path(__file__).stem[len('test_'):]}.json").read_text())
LATENCY = SPEC["latency"]
N = SPEC["n"]
READY = SPEC.get("in_ready", False)  # folded layers (--io parallel): an input moves only with in_ready


def pack(values, elem_width):
    mask, word = (1 << elem_width) - 1, 0
    for k, v in enumerate(values):
        word |= (int(v) & mask) << (k * elem_width)
    return word


def unpack(word, elem_width, count, signed):
    mask, out = (1 << elem_width) - 1, []
    for k in range(count):
        v = (word >> (k * elem_width)) & mask
        out.append(v - (1 << elem_width) if signed and v >> (elem_width - 1) else v)
    return out


def read_port(val, p):
    """Element mantissas of an output port's value (a resolvable LogicArray)."""
    if p["count"] == 1 and p["signed"] and hasattr(val, "to_signed"):
        return [val.to_signed()]
    word = val.to_unsigned() if hasattr(val, "to_unsigned") else int(val)
    return unpack(word, p["elem_width"], p["count"], p["signed"])


def in_ports(dut):
    return [getattr(dut, p["name"]) for p in SPEC["inputs"]]


def out_ports(dut):
    return [getattr(dut, p["name"]) for p in SPEC["outputs"]]


def valid_is(dut, level):
    v = dut.out_valid.value
    return v.is_resolvable and int(v) == level


class Stream:
    """Drives vectors (one per accepted edge) and checks every output: its value against the
    expected mantissas and its timing (exactly LATENCY edges after its input)."""

    def __init__(self, dut, rng):
        self.dut, self.rng = dut, rng
        self.edge = 0           # index of the coming rising edge
        self.accepted = []      # (edge, vector index) of every accepted input, in order
        self.seen = 0           # outputs checked so far
        self.errors = []
        self.pending = None     # the vector presented at the coming edge

    def drive_idle(self):
        self.pending = None
        self.dut.in_valid.value = 0
        for h, p in zip(in_ports(self.dut), SPEC["inputs"]):
            h.value = self.rng.getrandbits(p["width"])   # garbage must be ignored

    def drive(self, k):
        self.dut.in_valid.value = 1
        for h, p, vecs in zip(in_ports(self.dut), SPEC["inputs"], SPEC["vectors"]):
            h.value = pack(vecs[k], p["elem_width"])
        self.pending = k

    def sample(self):
        """Call in ReadOnly before the coming edge."""
        v = self.dut.out_valid.value
        if not v.is_resolvable:
            self.errors.append(f"out_valid is {v} before edge {self.edge}")
            return
        if not int(v):
            return
        if self.seen >= len(self.accepted):
            self.errors.append(f"out_valid high before edge {self.edge} without a pending input")
            return
        edge_in, k = self.accepted[self.seen]
        if self.edge - edge_in != LATENCY:
            self.errors.append(f"vector {k}: output after {self.edge - edge_in} edges, expected {LATENCY}")
        for h, p, exp in zip(out_ports(self.dut), SPEC["outputs"], SPEC["expected"]):
            val = h.value
            if not val.is_resolvable:
                self.errors.append(f"vector {k}: {p['name']} has X/Z bits: {val}")
                continue
            got = read_port(val, p)
            if got != exp[k]:
                i = next(j for j, (a, b) in enumerate(zip(got, exp[k])) if a != b)
                self.errors.append(f"vector {k}: {p['name']}[{i}] = {got[i]}, expected {exp[k][i]} "
                                   f"(mantissas of {p['type']})")
        self.seen += 1

    async def cycle(self):
        """One edge; True when the presented vector (if any) was accepted at it."""
        await ReadOnly()
        took = self.pending is not None and (not READY or int(self.dut.in_ready.value) == 1)
        if took:  # before sample(): a latency-0 design shows this input's output in this cycle
            self.accepted.append((self.edge, self.pending))
        self.sample()
        await RisingEdge(self.dut.clk)
        self.edge += 1
        return took or self.pending is None

    async def put(self, k):
        """Present vector ``k`` until it is accepted (at once without in_ready)."""
        self.drive(k)
        while not await self.cycle():
            pass

    def check(self, what):
        assert not self.errors, f"{what}: {len(self.errors)} error(s), first: {self.errors[0]}"


async def start(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    rng = random.Random(cocotb.RANDOM_SEED)
    s = Stream(dut, rng)
    dut.rst.value = 1
    s.drive_idle()
    await RisingEdge(dut.clk)          # first reset edge: state is defined from here on
    for _ in range(3):
        s.drive_idle()
        await ReadOnly()
        assert valid_is(dut, 0), f"out_valid is {dut.out_valid.value} during reset"
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    return s


async def quiet(s, cycles, what):
    """Idle inputs for ``cycles`` edges; out_valid must stay low."""
    for _ in range(cycles):
        s.drive_idle()
        await ReadOnly()
        assert valid_is(s.dut, 0), f"out_valid is {s.dut.out_valid.value} {what}"
        await RisingEdge(s.dut.clk)
        s.edge += 1


async def stream(s, indices, p_gap):
    """Present ``indices`` in order: back-to-back runs broken by random gaps of 1-5 edges."""
    todo = list(indices)
    while todo:
        if s.rng.random() < p_gap:
            for _ in range(s.rng.randint(1, 5)):
                s.drive_idle()
                await s.cycle()
        else:
            for _ in range(min(len(todo), s.rng.randint(1, 12))):
                await s.put(todo.pop(0))
    for _ in range(LATENCY + 4):       # drain; also catches late or spurious outputs
        s.drive_idle()
        await s.cycle()


@cocotb.test()
async def reset_then_stream(dut):
    """Outputs stay invalid during and after reset until inputs arrive; then every vector, with
    random gaps and back-to-back runs, comes out with the expected value after LATENCY edges."""
    s = await start(dut)
    await quiet(s, LATENCY + 3, "after reset before any input")
    await stream(s, range(N), p_gap=0.25)
    s.check("stream")
    assert s.seen == N, f"{s.seen} outputs for {N} inputs"


@cocotb.test()
async def reset_flushes_pipeline(dut):
    """A reset while vectors are in flight drops them: out_valid is low from the edge after rst
    until new inputs arrive, and the design works normally afterwards."""
    s = await start(dut)
    burst = list(range(min(N, LATENCY + 2)))
    for k in burst:
        await s.put(k)
    s.check("burst before reset")
    dut.rst.value = 1
    s.drive_idle()
    await RisingEdge(dut.clk)          # reset takes effect at this edge
    s.edge += 1
    await quiet(s, 2, "while rst is high")
    dut.rst.value = 0
    await quiet(s, LATENCY + 3, "after a reset with vectors in flight")
    s.accepted, s.seen = [], 0
    await stream(s, range(min(N, 64)), p_gap=0.5)
    s.check("stream after reset")
    assert s.seen == min(N, 64), f"{s.seen} outputs for {min(N, 64)} inputs after reset"
