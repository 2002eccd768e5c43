"""Cycle model of a stream chain's handshakes, for report.json's ``ii_cycles`` and
``latency_cycles`` (and checked against the RTL by ``qir sim``).

Each stage is modelled by the same equations as its generator (``stream_window``,
``stream_map``, ``stream_collect``): per cycle the valids are computed from the source forward,
the readies from the sink backward, then every stage's registers update.  The source offers a
beat every cycle, the sink is always ready (full rate).  ``latency``: edges from the one at
which the first input beat of the first image is accepted to the first edge at which the first
output beat of that image is valid (0 = the same cycle).  ``ii``: edges between the acceptances
of the first beats of consecutive images, in steady state."""
from __future__ import annotations


class _Window:
    def __init__(self, g):
        self.g, self.py, self.px, self.ov = g, 0, 0, False

    def flags(self):
        g = self.g
        return (g.interior_row(self.py) and g.interior_col(self.px)), (g.emit_row(self.py) and g.emit_col(self.px))

    def out_valid(self, in_valid):
        return self.ov

    def in_ready(self, out_ready):
        interior, emit = self.flags()
        return interior and (not emit or not self.ov or out_ready)

    def step(self, in_valid, out_ready):
        interior, emit = self.flags()
        adv = (not interior or in_valid) and (not emit or not self.ov or out_ready)
        if out_ready:
            self.ov = False
        if adv:
            if emit:
                self.ov = True
            self.px += 1
            if self.px == self.g.Wp:
                self.px = 0
                self.py = (self.py + 1) % self.g.Hp


class _Map:
    def __init__(self, latency):
        self.v = [False] * latency

    def out_valid(self, in_valid):
        return self.v[-1] if self.v else in_valid

    def in_ready(self, out_ready):
        return (not self.v[-1] or out_ready) if self.v else out_ready

    def step(self, in_valid, out_ready):
        if self.v and (not self.v[-1] or out_ready):
            self.v = [in_valid] + self.v[:-1]


class _Collect:
    def __init__(self, n):
        self.n, self.count, self.ov = n, 0, False

    def out_valid(self, in_valid):
        return self.ov if self.n > 1 else in_valid

    def in_ready(self, out_ready):
        if self.n == 1:
            return out_ready
        return self.count != self.n - 1 or not self.ov or out_ready

    def step(self, in_valid, out_ready):
        if self.n == 1:
            return
        take = in_valid and self.in_ready(out_ready)
        if out_ready:
            self.ov = False
        if take:
            if self.count == self.n - 1:
                self.count, self.ov = 0, True
            else:
                self.count += 1


def model_stage(kind: str, info):
    return {"window": _Window, "map": _Map, "collect": _Collect}[kind](info)


def simulate(stages: list[tuple[str, object]], beats_in: int, beats_out: int, images: int = 4,
             max_cycles: int = 10_000_000) -> tuple[int, int]:
    """(latency, ii) of the chain ``stages`` [(kind, info)] at full rate."""
    models = [model_stage(k, i) for k, i in stages]
    sent = got = 0
    t_in, t_out = [], []
    total_in = beats_in * images
    for cyc in range(max_cycles):
        valid = sent < total_in
        valids = [valid]
        for s in models:
            valids.append(s.out_valid(valids[-1]))
        readies = [True]
        for s in reversed(models):
            readies.append(s.in_ready(readies[-1]))
        readies.reverse()  # readies[k] = ready at stage k's input; readies[-1] = sink
        if valid and readies[0]:
            if sent % beats_in == 0:
                t_in.append(cyc)
            sent += 1
        if valids[-1]:
            if got % beats_out == 0:
                t_out.append(cyc)
            got += 1
        for k, s in enumerate(models):
            s.step(valids[k], readies[k + 1])
        if got == beats_out * images:
            break
    else:
        raise RuntimeError("stream timing model did not finish")
    iis = [b - a for a, b in zip(t_in, t_in[1:])]
    return t_out[0] - t_in[0], max(iis[1:] or iis or [0])
