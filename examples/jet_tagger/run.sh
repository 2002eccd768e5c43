#!/usr/bin/env bash
# The main job on the bundled jet tagger: import -> lower -> Verilog -> simulate -> report.
# Writes everything under ${OUT:-out/jet_tagger} (relative to the repository root).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out=${OUT:-out/jet_tagger}
qir=.venv/bin/qir
here=examples/jet_tagger
model=tests/data/qkeras_3layer/qkeras_3layer.json
$qir compile $model -o "$out" --input-type 'fixed<16,6>' --softmax none
$qir eval "$out/net.mlir" --inputs $here/x.npy -o "$out/y_reference.npy"
$qir sim "$out" --inputs $here/x.npy --simulator verilator -o "$out/y_verilator.npy"
$qir sim "$out" --inputs $here/x.npy --simulator icarus -o "$out/y_icarus.npy"
echo "report: $out/report.json"
.venv/bin/python - "$out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  top {r['top']}, latency {r['latency_cycles']} cycles, Verilog: {', '.join(r['rtl'])}")
for p in r["ports"]:
    print(f"  {p['direction']:6} {p['name']:10} {p['width']:5} bits  {p.get('type') or ''}")
PY
$qir report "$out"
