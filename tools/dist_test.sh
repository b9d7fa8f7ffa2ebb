#!/usr/bin/env bash
# Distributed testing with torchrun, e.g. on 8 GPUs:
#   bash tools/dist_test.sh CONFIG CHECKPOINT 8 [test.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as for torchrun.
set -euo pipefail
CONFIG=${1:?usage: dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]}
CHECKPOINT=${2:?usage: dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]}
GPUS=${3:?usage: dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]}
exec bash "$(dirname "$0")/dist_run.sh" test.py "$GPUS" "$CONFIG" \
    "$CHECKPOINT" --launcher pytorch "${@:4}"
