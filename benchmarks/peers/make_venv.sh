#!/usr/bin/env bash
# Create benchmarks/peers/.venv with the peer denoisers used by benchmarks/quality.py.
#
# The peers are NOT dependencies of tomochunk: BM4D is licensed for non-commercial use only,
# and CAREamics pins a torchvision that pulls its own torch build (several GB). They live in
# their own virtual environment; the benchmark runs them as subprocesses that read their input
# from a store and write their output to a store.
#
# Usage: bash benchmarks/peers/make_venv.sh [PYTHON]      (default python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${1:-python3}"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --upgrade pip
# numpy/zarr for the runners' store I/O; each peer installed separately so that one failing
# does not stop the other (the benchmark skips a peer it cannot import, and says so).
"$venv/bin/python" -m pip install numpy "zarr>=2.16" || exit 1
"$venv/bin/python" -m pip install bm4d || echo "make_venv: bm4d could not be installed" >&2
"$venv/bin/python" -m pip install careamics || echo "make_venv: careamics could not be installed" >&2
"$venv/bin/python" - <<'PY'
import importlib
for name in ("bm4d", "careamics"):
    try:
        importlib.import_module(name)
        print(f"make_venv: {name} OK")
    except Exception as exc:  # report, do not fail: the benchmark skips missing peers
        print(f"make_venv: {name} NOT importable: {exc}")
PY
