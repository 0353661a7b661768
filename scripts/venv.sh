#!/usr/bin/env bash
# Makes sure $VENV is a working virtual environment of a Python 3.11+ interpreter, with Sealring
# and its extras installed. Run by every Makefile target; quick when there is nothing to do.
#
#   scripts/venv.sh          check, rebuild a stale venv, install when pyproject.toml changed
#   scripts/venv.sh check    only check the interpreter and remove a venv made by another one
#
# PYTHON (default python3) is the interpreter to use; VENV (default .venv) where the venv lives.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-all,dev,docs}

fail() { echo "make: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 ||
  fail "no '$PYTHON' on PATH: Sealring needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)"
want=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) ||
  fail "'$PYTHON' does not run: Sealring needs Python 3.11 or newer (set PYTHON=...)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  fail "Sealring needs Python 3.11 or newer; '$PYTHON' is $want (set PYTHON=python3.11, for example)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
  fail "'$PYTHON' ($want) has no venv/ensurepip module: install it (Debian: apt-get install python3-venv)"

# A venv made by another interpreter (an older Python, or one since removed) is rebuilt, not
# patched: its scripts and compiled packages belong to that interpreter.
if [ -e "$VENV" ]; then
  have=$(sed -n 's/^version\(_info\)\{0,1\} *= *\([0-9]*\.[0-9]*\.[0-9]*\).*/\2/p' "$VENV/pyvenv.cfg" 2>/dev/null | head -n1)
  if [ "$have" != "$want" ] || ! "$VENV/bin/python" -c pass >/dev/null 2>&1; then
    echo "make: rebuilding $VENV: it was made by Python ${have:-unknown}, not $want ('$PYTHON')" >&2
    rm -rf "$VENV"
  fi
fi
[ "${1:-}" = check ] && exit 0

stamp="$VENV/.installed"
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
  touch "$stamp"
fi
