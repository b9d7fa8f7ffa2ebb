"""What every command-line tool shares: flags, error exit, distributed end.

The tools under ``tools/`` are argparse shells over citymask functions; this
module is their common set-up (detectron2 keeps the same in
``engine/defaults.py``).
"""
import argparse
import errno
import functools
import os
import sys
from typing import Callable

from .errors import CitymaskError, one_line

# Exit statuses: 2, refused (bad input, an output that can't be written;
# the command must change); 74, the system failed an I/O operation during
# the work (disk full, I/O error: sysexits.h's EX_IOERR); 130, Ctrl-C.
EXIT_REFUSED = 2
EXIT_IO = 74
EXIT_INTERRUPTED = 130
# errors about the path the user chose, not about the machine's state
_PATH_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                errno.EISDIR, errno.ENOENT, errno.EEXIST, errno.ENAMETOOLONG)


def _size(n: int) -> str:
    return f'{n / 2**20:.1f} MiB' if n >= 2**20 else f'{n} bytes'


def os_error_line(error: OSError) -> str:
    """The one line a tool prints for an ``OSError``: what failed, on which
    path, and what to do.

    The path is the output being written where :mod:`citymask.fileio`
    wrote it (it names the output, not a temporary file, and keeps the
    bytes needed when known).
    """
    from .fileio import free_bytes
    path = error.filename
    code = error.errno
    where = f' {path}' if path else ''
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = ('no space left on' if code == errno.ENOSPC else
                'disk quota exceeded on')
        sizes = []
        needed = getattr(error, 'needed_bytes', None)
        if needed is not None:
            sizes.append(f'{_size(needed)} needed')
        free = free_bytes(path) if path else None
        if free is not None:
            sizes.append(f'{_size(free)} free')
        detail = f' ({", ".join(sizes)})' if sizes else ''
        return (f'{what}{where or " the device"}{detail}; nothing was '
                'written there: free some space or write elsewhere')
    if code == errno.EROFS:
        return f'cannot write{where}: read-only file system; write elsewhere'
    if code in (errno.EACCES, errno.EPERM):
        return (f'cannot access{where}: permission denied; choose a path '
                'you may write (or read)')
    if code == errno.ENOTDIR:
        return (f'cannot use{where}: a part of it is a file, not a folder; '
                'choose another path')
    if code == errno.EISDIR:
        return f'cannot use{where}: it is a folder, a file was expected'
    if code == errno.ENOENT:
        return f'{path or "a file"} does not exist'
    reason = error.strerror or str(error)
    return f'{path}: {reason}' if path else reason


def exit_on_error(main: Callable) -> Callable:
    """Decorate a tool's ``main``: a :class:`CitymaskError` or an
    ``OSError`` becomes one ``error: ...`` line on stderr; Ctrl-C exits 130.

    Exit statuses: :data:`EXIT_REFUSED` (2) for bad input and paths that
    can't be used, :data:`EXIT_IO` (74) for a failed I/O operation (disk
    full, I/O error), :data:`EXIT_INTERRUPTED` (130) for Ctrl-C. Outputs
    are written atomically (:mod:`citymask.fileio`), so none of these
    leaves a partial file.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except CitymaskError as e:
            print(f'error: {one_line(e)}', file=sys.stderr)
            sys.exit(EXIT_REFUSED)
        except OSError as e:
            print(f'error: {os_error_line(e)}', file=sys.stderr)
            sys.exit(EXIT_REFUSED if e.errno in _PATH_ERRNOS else EXIT_IO)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


class CfgOptions(dict):
    """``--cfg-options`` as parsed: ``{key: value}`` as mmengine's
    ``DictAction`` types them, and the text each value was given as
    (``raw``), which :func:`citymask.config.load_config` uses for values
    that are strings in the config (paths may hold spaces and commas)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.raw = dict(getattr(args[0], 'raw', {})) if args else {}


class CfgOptionsAction(argparse.Action):
    """``--cfg-options key=value ...``, parsed by mmengine's ``DictAction``
    rules but keeping each value's text too.

    mmengine 0.10.7's ``DictAction`` deletes every space of a value and
    splits it at commas (``data_root=/my data/`` becomes ``/mydata/``);
    the text kept here lets a path come through as given. A pair without
    ``=`` or a value that can't be parsed is one ``error:`` line.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        options = CfgOptions(getattr(namespace, self.dest, None) or {})
        for pair in values:
            key, sep, text = pair.partition('=')
            if not sep or not key:
                raise CitymaskError(
                    f'--cfg-options {pair!r}: expected KEY=VALUE, e.g. '
                    'train_cfg.max_iters=6 or data_root=/data/cityscapes/')
            try:
                options[key] = DictAction._parse_iterable(text)
            except Exception as e:
                raise CitymaskError(
                    f'--cfg-options {pair!r}: cannot parse the value ({e}); '
                    'lists are written [a,b], tuples (a,b)') from None
            options.raw[key] = text
        setattr(namespace, self.dest, options)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options KEY=VALUE ...`` (:class:`CfgOptionsAction`), for
    :func:`citymask.config.load_config`: every tool that reads a config."""
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        metavar='KEY=VALUE',
                        help='override config settings, key=value '
                        '(e.g. data_root=/data/cityscapes/); keys must '
                        'exist in the config')


# what each launcher reads from the environment (mmengine.dist.init_dist)
# and what starts processes with it
_LAUNCHERS = {
    'pytorch': (('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                'torchrun: tools/dist_train.sh or tools/dist_test.sh'),
    'slurm': (('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'srun: tools/slurm_train.sh'),
    'mpi': (('OMPI_COMM_WORLD_LOCAL_RANK', ), 'mpirun'),
}


def check_launcher(launcher: str) -> None:
    """``--launcher`` must say how this process was started: without the
    variables torchrun (srun, mpirun) sets, mmengine fails with a
    ``KeyError`` traceback."""
    needs, how = _LAUNCHERS.get(launcher, ((), ''))
    unset = [v for v in needs if v not in os.environ]
    if unset:
        raise CitymaskError(
            f'--launcher {launcher}: {", ".join(unset)} not set, so this '
            f'process was not started for it; start it with {how}, or drop '
            '--launcher')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank``: the flags
    mmdet's train and test tools share."""
    add_cfg_options(parser)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the common flags (:func:`add_common_args`), parse, check
    ``--launcher`` (:func:`check_launcher`), and give mmengine the rank
    ``torch.distributed.launch`` passes as a flag (``torchrun`` sets
    ``LOCAL_RANK`` itself)."""
    add_common_args(parser)
    args = parser.parse_args()
    check_launcher(args.launcher)
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
