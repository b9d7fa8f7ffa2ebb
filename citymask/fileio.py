"""Outputs complete or absent, checked writable up front: renamed into place
when complete (a folder recorded in ``.citymask-NAME``: only such a one is
ever replaced). An ``OSError`` names the output and the bytes needed."""
import contextlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Any, Dict, Iterator, Optional

from .errors import CitymaskError


def _mode(base: int) -> int:
    """``base & ~umask``: what ``open()`` / ``mkdir`` would give."""
    mask = os.umask(0o022)  # the umask is read by setting it
    os.umask(mask)
    return base & ~mask


def _existing_ancestor(path: str) -> str:
    path = osp.abspath(path)
    while not osp.lexists(path) and osp.dirname(path) != path:
        path = osp.dirname(path)
    return path


def free_bytes(path: str) -> Optional[int]:
    """Free bytes where ``path`` would be written; None if unknown."""
    try:
        return shutil.disk_usage(_existing_ancestor(path)).free
    except OSError:
        return None


def annotate(error: OSError, path: str,
             needed: Optional[int] = None) -> OSError:
    """Name the output ``path`` in ``error`` (in place, returned) where it
    names none or a temporary file beside it (``.NAME.*``); keep ``needed``
    bytes for the message."""
    full, name = osp.abspath(path), error.filename
    if name is None or osp.dirname(osp.abspath(name)) == osp.dirname(full) \
            and osp.basename(name).startswith(f'.{osp.basename(full)}.'):
        error.filename, error.filename2 = path, None
    if needed is not None and getattr(error, 'needed_bytes', None) is None:
        error.needed_bytes = needed
    return error


@contextlib.contextmanager
def atomic_path(path: str, needed: Optional[int] = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``, renamed over it if the block
    finishes, else deleted. ``needed``: the output's bytes, for messages."""
    folder = osp.dirname(osp.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
        os.close(fd)
        os.chmod(tmp, _mode(0o666))
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise annotate(e, path, needed) from None
    finally:  # the cleanup must not hide the error that caused it
        with contextlib.suppress(TypeError, OSError):
            os.remove(tmp)  # (None: not made)


def write_bytes_atomic(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_files_atomic({path: data})


def dump_json_atomic(obj: Any, path: str) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (encoded first)."""
    write_files_atomic({path: json.dumps(obj).encode()})


def write_files_atomic(files: Dict[str, bytes]) -> None:
    """Write ``{path: content}`` all or none (renamed once all are written)"""
    total = sum(len(d) for d in files.values())
    with contextlib.ExitStack() as stack:
        tmps = {p: stack.enter_context(atomic_path(p, total)) for p in files}
        for path, data in files.items():
            try:
                with open(tmps[path], 'wb') as f:
                    f.write(data)
            except OSError as e:
                raise annotate(e, path, total) from None


def _marker(full: str) -> str:
    return osp.join(osp.dirname(full), f'.citymask-{osp.basename(full)}')


def is_own_output(path: str) -> bool:
    """Whether folder ``path`` is as :func:`atomic_dir` left it (record)."""
    full = osp.abspath(path)
    try:
        with open(_marker(full)) as f:
            record = json.load(f)
        return (record['inode'] == os.stat(full).st_ino
                and set(os.listdir(full)) <= set(record['entries']))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _replace_dir(tmp: str, path: str) -> None:
    """Rename folder ``tmp`` to ``path``, replacing a folder there."""
    if not osp.lexists(path):
        os.rename(tmp, path)
        return
    old = tempfile.mkdtemp(dir=osp.dirname(path),
                           prefix=f'.{osp.basename(path)}.', suffix='.old')
    os.replace(path, old)  # onto an empty folder: allowed on POSIX
    try:
        os.rename(tmp, path)
    except OSError:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str, overwrite: bool = False,
               what: str = 'results folder', flag: str = '--overwrite', *,
               owner: Optional[bool] = None) -> Iterator[str]:
    """Yield a temporary folder beside ``path`` (absent, empty, or with
    ``overwrite`` an earlier output of this), renamed to it if the block
    finishes, else deleted. ``owner`` (several ranks write): ``.NAME.partial``
    handled by the owner only (end the block after a barrier)."""
    full = osp.abspath(path)  # 'results/' too
    parent = osp.dirname(full)
    shared = osp.join(parent, f'.{osp.basename(full)}.partial')
    if owner is False:  # another rank creates, publishes or deletes it
        yield shared
        return
    check_writable(path, 'dir', what=what, overwrite=overwrite, flag=flag)
    tmp = None
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = shared if owner else tempfile.mkdtemp(  # shared: every rank's
            dir=parent, prefix=f'.{osp.basename(full)}.', suffix='.tmp')
        os.makedirs(tmp, exist_ok=True)
        os.chmod(tmp, _mode(0o777))
        yield tmp
        entries = sorted(os.listdir(tmp))
        # again: files the user put there meanwhile must not be deleted
        check_writable(path, 'dir', what=what, overwrite=overwrite, flag=flag)
        _replace_dir(tmp, full)
        if owner is None:
            dump_json_atomic(dict(inode=os.stat(full).st_ino,
                                  entries=entries), _marker(full))
    except OSError as e:
        raise annotate(e, path) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def check_writable(path: str, kind: str = 'file', what: str = 'output',
                   overwrite: bool = True, flag: str = '--overwrite') -> None:
    """Raise CitymaskError now if output ``path`` (``kind`` ``'file'`` or
    ``'dir'``) could not be written later (probe file); ``overwrite`` lets
    a file or an :func:`atomic_dir` output be replaced, no other folder."""
    label, full = f'{what} {path}', osp.abspath(path)
    if kind == 'file' and osp.isdir(full):
        raise CitymaskError(
            f'cannot write {label}: it is a folder; give a file name')
    if kind == 'file' and osp.lexists(full) and not overwrite:
        raise CitymaskError(f'{label} exists; pass {flag} to replace it')
    if kind == 'dir' and osp.lexists(full) and not osp.isdir(full):
        raise CitymaskError(
            f'cannot write {label}: it is a file, not a folder; give a '
            'folder name')
    if kind == 'dir' and osp.isdir(full):
        try:
            entries = os.listdir(full)
        except OSError as e:
            raise CitymaskError(
                f'cannot write {label}: {e.strerror}') from None
        own = bool(entries) and is_own_output(full)
        if entries and not (own and overwrite):
            found = (f'{label} is not empty ({len(entries)} entries, e.g. '
                     f'{sorted(entries)[0]})')
            raise CitymaskError(
                f"{found}: its files would mix with this run's; choose a new "
                f'or empty folder, or pass {flag} to replace it' if own else
                f'{found} and not an earlier output of this tool (no record '
                f'of it in {_marker(full)}), so it is never replaced; choose '
                'a new or empty folder')
    anchor = _existing_ancestor(osp.dirname(full))
    if not osp.isdir(anchor):
        raise CitymaskError(
            f'cannot write {label}: {anchor} is a file, not a folder')
    try:
        tempfile.TemporaryFile(dir=anchor, prefix='.citymask-probe-').close()
    except OSError as e:
        raise CitymaskError(
            f'cannot write {label}: {e.strerror or e} ({anchor}); choose '
            'another location') from None
