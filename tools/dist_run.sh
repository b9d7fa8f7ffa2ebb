#!/usr/bin/env bash
# torchrun for tools/dist_train.sh and tools/dist_test.sh:
#   bash tools/dist_run.sh TOOL GPUS [TOOL args]   (TOOL: train.py / test.py)
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as for torchrun;
# RDZV_TIMEOUT: seconds to wait for all nodes (default 300);
# SHUTDOWN_TIMEOUT: seconds the workers get to stop on SIGTERM / Ctrl-C
# (finish the iteration, write its checkpoint) before SIGKILL (default 90).
set -euo pipefail
TOOL=$1
GPUS=$2
DIR=$(cd "$(dirname "$0")" && pwd)
case $TOOL in /*) ;; *) TOOL=$DIR/$TOOL ;; esac

PYTHONPATH="$DIR/..:${PYTHONPATH:-}" \
exec "${PYTHON:-python}" "$DIR/misc/dist_launch.py" "$GPUS" \
    --nnodes="${NNODES:-1}" \
    --node-rank="${NODE_RANK:-0}" \
    --master-addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc-per-node="$GPUS" \
    --master-port="${PORT:-29500}" \
    --rdzv-conf="timeout=${RDZV_TIMEOUT:-300}" \
    --shutdown-timeout="${SHUTDOWN_TIMEOUT:-90}" \
    "$TOOL" "${@:3}"
