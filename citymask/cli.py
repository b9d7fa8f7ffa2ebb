"""What every command-line tool shares: flags, error exit, distributed end."""
import argparse
import errno
import functools
import os
import sys
from typing import Callable, Optional, Sequence

from .errors import CitymaskError, one_line

# 2: refused (the command must change); 74: I/O failed during the work
# (sysexits.h's EX_IOERR); 130: Ctrl-C
EXIT_REFUSED, EXIT_IO, EXIT_INTERRUPTED = 2, 74, 130
# errors about the path the user chose, not about the machine's state
_PATH_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                errno.EISDIR, errno.ENOENT, errno.EEXIST, errno.ENAMETOOLONG)
_PATH_LINES = {
    errno.EROFS: 'cannot write{}: read-only file system; write elsewhere',
    errno.EACCES: 'cannot access{}: permission denied; choose a path you '
    'may write (or read)',
    errno.ENOTDIR: 'cannot use{}: a part of it is a file, not a folder; '
    'choose another path',
    errno.EISDIR: 'cannot use{}: it is a folder, a file was expected',
}
_PATH_LINES[errno.EPERM] = _PATH_LINES[errno.EACCES]


def _size(n: int) -> str:
    return f'{n / 2**20:.1f} MiB' if n >= 2**20 else f'{n} bytes'


def os_error_line(error: OSError) -> str:
    """The line a tool prints for an ``OSError``: what, where, what to do."""
    from .fileio import free_bytes
    path, code = error.filename, error.errno
    where = f' {path}' if path else ''
    if code in (errno.ENOSPC, errno.EDQUOT):
        needed = getattr(error, 'needed_bytes', None)
        free = free_bytes(path) if path else None
        sizes = [f'{_size(n)} {w}' for n, w in ((needed, 'needed'),
                                                (free, 'free'))
                 if n is not None]
        return ('no space left on' if code == errno.ENOSPC else
                'disk quota exceeded on') + (
            f'{where or " the device"}'
            f'{" (" + ", ".join(sizes) + ")" if sizes else ""}; nothing was '
            'written there: free some space or write elsewhere')
    if code in _PATH_LINES:
        return _PATH_LINES[code].format(where)
    if code == errno.ENOENT:
        return f'{path or "a file"} does not exist'
    reason = error.strerror or str(error)
    return f'{path}: {reason}' if path else reason


def exit_on_error(main: Callable) -> Callable:
    """Decorate a tool's ``main``: a CitymaskError or OSError is one
    ``error: ...`` line, exit 2 (74 for failed I/O, e.g. a full disk);
    Ctrl-C prints ``interrupted``, exit 130."""

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
    """``--cfg-options`` as typed by ``DictAction``; ``raw``: the texts."""

    def __init__(self, *args):
        super().__init__(*args)
        self.raw = dict(getattr(args[0], 'raw', {})) if args else {}


class CfgOptionsAction(argparse.Action):
    """``--cfg-options key=value ...`` by ``DictAction``'s rules, keeping
    each value's text (mmengine 0.10.7's deletes spaces, splits at commas).
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
    """``--cfg-options KEY=VALUE ...`` (:class:`CfgOptionsAction`)."""
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        metavar='KEY=VALUE',
                        help='override config settings, key=value '
                        '(e.g. data_root=/data/cityscapes/); keys must '
                        'exist in the config')


# what mmengine.dist.init_dist reads for each launcher, and what sets it
_LAUNCHERS = {
    'pytorch': (('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                'torchrun: tools/dist_train.sh or tools/dist_test.sh'),
    'slurm': (('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'srun: tools/slurm_train.sh'),
    'mpi': (('OMPI_COMM_WORLD_LOCAL_RANK', ), 'mpirun'),
}


def parse_tool_args(parser: argparse.ArgumentParser,
                    argv: Optional[Sequence[str]] = None
                    ) -> argparse.Namespace:
    """Add mmdet's common ``--cfg-options``, ``--launcher``, ``--local-rank``
    and parse. The launcher's variables must be set (else mmengine's
    ``KeyError``); ``--local-rank`` goes to ``LOCAL_RANK``."""
    add_cfg_options(parser)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    needs, how = _LAUNCHERS.get(args.launcher, ((), ''))
    unset = [v for v in needs if v not in os.environ]
    if unset:
        raise CitymaskError(
            f'--launcher {args.launcher}: {", ".join(unset)} not set, so '
            f'this process was not started for it; start it with {how}, or '
            'drop --launcher')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def end_distributed() -> None:
    """Barrier, then close the process group (else gloo can abort at exit)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
