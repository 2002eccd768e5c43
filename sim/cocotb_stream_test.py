"""cocotb 2.1 tests for a stream design compiled by qir (qir.sim.stream_bench copies this file,
sim/cocotb_stream_test.py, to OUTDIR/tb/test_<top>.py).

Images and expected output beats (qir's reference interpreter on net.mlir) are read from
cocotb_<top>.json.  Two tests: full rate (checks every beat and latency_cycles) and seeded random
in_valid gaps / out_ready stalls (checks every beat).  Run: python run_cocotb.py --simulator
icarus|verilator.
"""
import json
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

SPEC = json.loads(Path(__file__).with_name(f"cocotb_{Path(__file__).stem[len('test_'):]}.json").read_text())


def pack(values, w):
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & ((1 << w) - 1)) << (k * w)
    return word


def unpack(word, w, count, signed):
    out = []
    for k in range(count):
        v = (word >> (k * w)) & ((1 << w) - 1)
        out.append(v - (1 << w) if signed and v >> (w - 1) else v)
    return out


async def drive(dut, p_gap, p_stall, seed):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    rng = random.Random(seed)
    i, o = SPEC["in"], SPEC["out"]
    beats = [pack(b, i["elem_width"]) for b in SPEC["beats_in"]]
    expected = SPEC["beats_out"]
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.out_ready.value = 0
    dut.in_data.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    k, got, cyc, first_in, first_out = 0, [], 0, None, None
    limit = 50 * (len(beats) + SPEC["latency"] + SPEC["ii"]) + 1000
    while len(got) < len(expected) or k < len(beats):
        offer = k < len(beats) and rng.random() >= p_gap
        ready = rng.random() >= p_stall
        dut.in_valid.value = int(offer)
        if offer:
            dut.in_data.value = beats[k]
        dut.out_ready.value = int(ready)
        await ReadOnly()
        if ready and dut.out_valid.value == 1:
            if first_out is None:
                first_out = cyc
            got.append(unpack(int(dut.out_data.value), o["elem_width"], o["count"], o["signed"]))
        if offer and dut.in_ready.value == 1:
            if first_in is None:
                first_in = cyc
            k += 1
        await RisingEdge(dut.clk)
        cyc += 1
        assert cyc < limit, f"stalled: {k} of {len(beats)} beats in, {len(got)} of {len(expected)} out"
    for n, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"output beat {n}: got {g}, expected {e}"
    return first_out - first_in


@cocotb.test()
async def full_rate(dut):
    latency = await drive(dut, 0.0, 0.0, 1)
    assert latency == SPEC["latency"], f"latency {latency} != report.json {SPEC['latency']}"


@cocotb.test()
async def random_gaps_and_stalls(dut):
    await drive(dut, 0.3, 0.3, 2)
