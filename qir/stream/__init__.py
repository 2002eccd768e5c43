"""The stream cycle model and stage graph (``--io stream``), in the core so that the planner
(``qir-fold-auto``), the generator (``rtl/stream_top.py``), ``qir report`` and ``qir sim`` share
one home for them; pure Python, no Amaranth (docs/ARCHITECTURE.md "Streaming").

- ``geometry``: a window's walk over its padded map, a collect's and a stream_mvu's beats, the
  model-input beats every stream value needs, the FIFO depth a join input needs;
- ``graph``: ``stage_graph``, the one builder of the stages, forks and FIFOs of a stream model;
- ``cycles``: the cycle model of their handshakes (``simulate_dag``, ``steady_ii``).
"""
