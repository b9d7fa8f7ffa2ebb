#!/usr/bin/env bash
# Training on a Slurm cluster, e.g. 8 GPUs on one node:
#   GPUS=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# submits a batch job (output: WORK_DIR/slurm-JOBID.out) that survives
# preemption and the time limit: Slurm sends SIGTERM to the training
# SIGNAL_TIME seconds (default 120) before the time limit, and when it
# preempts the job; every rank stops at the next iteration boundary with a
# checkpoint, the job requeues itself and its next start resumes from it.
# SBATCH_ARGS: more sbatch options (e.g. --time=24:00:00); SRUN_ARGS: srun's.
set -euo pipefail
USAGE="usage: slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]"
PARTITION=${1:?$USAGE}
JOB_NAME=${2:?$USAGE}
CONFIG=${3:?$USAGE}
WORK_DIR=${4:?$USAGE}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}

if [ -z "${_CITYMASK_TOOLS:-}" ]; then  # submit; the job runs the part below
    DIR=$(cd "$(dirname "$0")" && pwd)
    mkdir -p "$WORK_DIR"
    # shellcheck disable=SC2086
    exec sbatch -p "$PARTITION" \
        --job-name="$JOB_NAME" \
        --gres=gpu:"$GPUS_PER_NODE" \
        --ntasks="${GPUS:-8}" \
        --ntasks-per-node="$GPUS_PER_NODE" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --requeue \
        --signal="TERM@${SIGNAL_TIME:-120}" \
        --open-mode=append \
        --output="$WORK_DIR/slurm-%j.out" \
        --export="ALL,_CITYMASK_TOOLS=$DIR" \
        ${SBATCH_ARGS:-} \
        "$DIR/slurm_train.sh" "$@"
fi

# In the job (Slurm runs a copy of this script: the tools come from
# _CITYMASK_TOOLS). A requeued start resumes from the work dir.
DIR=$_CITYMASK_TOOLS
RESUME=()
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] \
        && compgen -G "$WORK_DIR/iter_*.pth" > /dev/null; then
    RESUME=(--resume)
fi
# Preemption signals this shell too: it must outlive the training to requeue.
trap 'echo "slurm_train.sh: SIGTERM; the training stops at the next iteration" >&2' TERM
# shellcheck disable=SC2086
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" \
srun --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher slurm ${RESUME[@]+"${RESUME[@]}"} "${@:5}" &
SRUN=$!
while :; do  # `wait` also returns when the trap runs
    STATUS=0
    wait "$SRUN" || STATUS=$?
    kill -0 "$SRUN" 2> /dev/null || break
done
if [ "$STATUS" -eq 143 ]; then  # stopped by SIGTERM, checkpoint written
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$STATUS"
