#!/usr/bin/env bash
# Start a Dask scheduler and N single-threaded worker processes on this machine and print the
# scheduler file to pass to tomochunk (--scheduler-file). One worker advertises GPU=1 when
# nvidia-smi finds a GPU, so training and inference are routed to it.
#
# usage: deploy/local/start-cluster.sh [N_WORKERS] [DIR]
#   N_WORKERS  CPU workers (default: number of cores)
#   DIR        where the scheduler file, logs and pid files go (default: ./dask-local)
# env: MEMORY_LIMIT per worker (default auto), PROTOCOL (tcp|tls), TLS_CA/TLS_CERT/TLS_KEY for tls
# stop with deploy/local/stop-cluster.sh DIR
set -euo pipefail
N=${1:-$(nproc)}
DIR=${2:-./dask-local}
MEMORY_LIMIT=${MEMORY_LIMIT:-auto}
PROTOCOL=${PROTOCOL:-tcp}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
SF="$DIR/scheduler.json"
rm -f "$SF"
tls_args=()
if [ "$PROTOCOL" = tls ]; then
  : "${TLS_CA:?set TLS_CA, TLS_CERT and TLS_KEY for PROTOCOL=tls}"
  tls_args=(--tls-ca-file "$TLS_CA" --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY")
fi
dask scheduler --scheduler-file "$SF" --protocol "$PROTOCOL" --port 0 --dashboard-address :0 \
  "${tls_args[@]}" >"$DIR/scheduler.log" 2>&1 &
echo $! >"$DIR/scheduler.pid"
for _ in $(seq 1 100); do [ -s "$SF" ] && break; sleep 0.2; done
[ -s "$SF" ] || { echo "scheduler did not start; see $DIR/scheduler.log" >&2; exit 1; }
: >"$DIR/workers.pid"
for i in $(seq 1 "$N"); do
  dask worker --scheduler-file "$SF" --nthreads 1 --nworkers 1 --memory-limit "$MEMORY_LIMIT" \
    --name "cpu-$i" --no-dashboard "${tls_args[@]}" >"$DIR/worker-cpu-$i.log" 2>&1 &
  echo $! >>"$DIR/workers.pid"
done
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  dask worker --scheduler-file "$SF" --nthreads 1 --nworkers 1 --memory-limit "$MEMORY_LIMIT" \
    --name gpu-0 --resources GPU=1 --no-dashboard "${tls_args[@]}" >"$DIR/worker-gpu-0.log" 2>&1 &
  echo $! >>"$DIR/workers.pid"
fi
echo "$SF"
