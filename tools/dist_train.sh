#!/usr/bin/env bash
# Distributed training with torchrun, e.g. on 8 GPUs:
#   bash tools/dist_train.sh configs/maskrcnn_r50_fpn_cityscapes_ft.py 8
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as for torchrun.
set -euo pipefail
: "${2:?usage: dist_train.sh CONFIG GPUS [train.py args]}"
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" \
    --launcher pytorch "${@:3}"
