#!/usr/bin/env bash
# Distributed testing with torchrun, e.g. on 8 GPUs:
#   bash tools/dist_test.sh CONFIG CHECKPOINT 8 [test.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as for torchrun.
set -euo pipefail
: "${3:?usage: dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]}"
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" \
    --launcher pytorch "${@:4}"
