#!/usr/bin/env bash
# Stop what deploy/local/start-cluster.sh started in DIR (default ./dask-local).
set -euo pipefail
DIR=${1:-./dask-local}
for f in "$DIR/workers.pid" "$DIR/scheduler.pid"; do
  [ -f "$f" ] || continue
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$f"
  rm -f "$f"
done
