"""What every command-line tool shares: flags, error exit, distributed end.

The tools under ``tools/`` are argparse shells over citymask functions; this
module is their common set-up (detectron2 keeps the same in
``engine/defaults.py``).
"""
import argparse
import functools
import os
import sys
from typing import Callable

from .errors import CitymaskError, one_line


def exit_on_error(main: Callable) -> Callable:
    """Decorate a tool's ``main``: a :class:`CitymaskError` becomes one
    ``error: ...`` line on stderr and exit status 2; Ctrl-C exits 130."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except CitymaskError as e:
            print(f'error: {one_line(e)}', file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(130)

    return wrapper


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank``: the flags
    mmdet's train and test tools share."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value '
                        '(e.g. data_root=/data/cityscapes/)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, and give mmengine the rank ``torch.distributed.launch``
    passes as a flag (``torchrun`` sets ``LOCAL_RANK`` itself)."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def end_distributed() -> None:
    """Leave a distributed run in step: all ranks reach a barrier, then the
    process group is closed. Without it a gloo rank can abort (SIGABRT) at
    exit when its peer has already gone."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
