#!/usr/bin/env bash
# Distributed training with torchrun, e.g. on 8 GPUs:
#   bash tools/dist_train.sh configs/maskrcnn_r50_fpn_cityscapes_ft.py 8
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as for torchrun.
set -euo pipefail
CONFIG=${1:?usage: dist_train.sh CONFIG GPUS [train.py args]}
GPUS=${2:?usage: dist_train.sh CONFIG GPUS [train.py args]}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
DIR=$(cd "$(dirname "$0")" && pwd)

PYTHONPATH="$DIR/..:${PYTHONPATH:-}" "$PYTHON" "$DIR/check_gpus.py" "$GPUS" || exit 2

PYTHONPATH="$DIR/..:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "${@:3}"
