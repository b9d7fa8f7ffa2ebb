"""Outputs that are complete or absent, never partial, checked up front.

Every file a tool writes goes through :func:`atomic_path` (or a helper
over it): it is written under a temporary name in the same folder and
renamed into place when complete, so a full disk, a kill or Ctrl-C leaves
the old file or none. A folder of results goes through :func:`atomic_dir`
(written as a temporary sibling folder, renamed when complete, recorded in
a ``.citymask-NAME`` file beside it so that only such a folder is ever
replaced: never a folder of the user's files), a set of
files that belong together through :func:`write_files_atomic`. Outputs get the
permissions a plain ``open()`` would give them (``0666 & ~umask``).

:func:`check_writable` runs before the work: an output that cannot be
written fails with one line instead of after an hour of work.

An ``OSError`` raised while writing carries the output path (and, where
known, the bytes needed) so :func:`citymask.cli.exit_on_error` can say
``no space left on PATH ...`` instead of a traceback.
"""
import contextlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Any, Dict, Iterator, Optional, Sequence

from .errors import CitymaskError


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new file: what ``open(path, 'w')`` gives (``0666 &
    ~umask``); ``tempfile.mkstemp`` alone would give ``0600``."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a new folder: what ``os.mkdir`` gives (``0777 & ~umask``);
    ``tempfile.mkdtemp`` alone would give ``0700``."""
    return 0o777 & ~_umask()


def free_bytes(path: str) -> Optional[int]:
    """Free bytes on the file system of ``path`` (or of its nearest
    existing parent); None if unknown."""
    try:
        return shutil.disk_usage(_existing_ancestor(path)).free
    except OSError:
        return None


def _existing_ancestor(path: str) -> str:
    path = osp.abspath(path)
    while not osp.lexists(path):
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def annotate(error: OSError, path: str, needed: Optional[int] = None,
             temporary: Sequence[str] = ()) -> OSError:
    """Name the output ``path`` in an ``OSError`` raised while writing it.

    A failed ``write()`` names no file, a failed temporary file names the
    temporary one; the user knows neither. ``needed`` (bytes) is kept for
    the disk-full message.

    Args:
        error: The error, changed in place.
        path: The output being written.
        needed: Bytes the output needs, if known.
        temporary: Temporary paths that stand for ``path``.

    Returns:
        ``error``, to be re-raised.
    """
    if error.filename is None or error.filename in temporary:
        error.filename = path
        error.filename2 = None
    if needed is not None and getattr(error, 'needed_bytes', None) is None:
        error.needed_bytes = needed
    return error


def _remove(path: str) -> None:
    try:
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif osp.lexists(path):
            os.remove(path)
    except OSError:
        pass  # cleanup must not hide the error that caused it


@contextlib.contextmanager
def atomic_path(path: str, needed: Optional[int] = None) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only
    if the block finishes, delete it otherwise (error, Ctrl-C).

    The temporary file lives in the same folder so the final ``os.replace``
    is an atomic rename on POSIX file systems. Missing folders are created.

    Args:
        path: The output file.
        needed: Bytes the output will take, if known (for the message when
            the disk is full).
    """
    folder = osp.dirname(osp.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(
                dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
        except OSError as e:  # it names the temporary file: name the output
            e.filename = None
            raise
        try:
            os.fchmod(fd, file_mode())
        finally:
            os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise annotate(e, path, needed, [tmp] if tmp else []) from None
    finally:
        if tmp is not None and osp.lexists(tmp):
            _remove(tmp)


def write_files_atomic(files: Dict[str, bytes]) -> None:
    """Write a set of files that belong together (e.g. the converter's JSON
    of every split): all of them, or none if any write fails.

    Each goes to a temporary file first; the renames happen only once all
    are written.

    Args:
        files: ``{path: content}``.
    """
    total = sum(len(d) for d in files.values())
    with contextlib.ExitStack() as stack:
        tmps = {p: stack.enter_context(atomic_path(p)) for p in files}
        for path, data in files.items():
            try:
                with open(tmps[path], 'wb') as f:
                    f.write(data)
            except OSError as e:
                raise annotate(e, path, total, [tmps[path]]) from None


def _marker(full: str) -> str:
    return osp.join(osp.dirname(full), f'.citymask-{osp.basename(full)}')


def is_own_output(path: str) -> bool:
    """Whether folder ``path`` is one :func:`atomic_dir` wrote, as it left
    it: its record beside it names this very folder (inode) and every
    entry in it. A folder the user made, filled or added to is not."""
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
    parent = osp.dirname(osp.abspath(path))
    old = tempfile.mkdtemp(dir=parent, prefix=f'.{osp.basename(path)}.',
                           suffix='.old')
    os.replace(path, old)  # onto an empty folder: allowed on POSIX
    try:
        os.rename(tmp, path)
    except OSError:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str, overwrite: bool = False,
               what: str = 'results folder',
               flag: str = '--overwrite', *,
               owner: Optional[bool] = None) -> Iterator[str]:
    """Yield a temporary folder next to ``path``; rename it to ``path``
    only if the block finishes, delete it otherwise.

    A results folder is never a mix of this run's files and an older
    run's: ``path`` must be absent or empty, or with ``overwrite`` an
    earlier output of :func:`atomic_dir` (:func:`is_own_output`), which is
    then replaced as a whole.

    Args:
        path: The output folder.
        overwrite: Replace a folder that is not empty.
        what: What the folder is, for messages.
        flag: The option that sets ``overwrite``, for messages.
        owner: For a folder several processes (ranks) write into: the
            temporary folder then has a fixed name,
            ``.<name>.partial``, and only the owner (True: rank 0)
            creates, renames or deletes it; the block must end with all
            processes done (a barrier). Such a folder gets no record, so
            it is never replaced.

    Raises:
        CitymaskError: ``path`` is a file, or a folder that is not empty
            (without ``overwrite``), or can't be written.
    """
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
        try:
            if owner:  # a name every rank derives
                os.makedirs(shared, exist_ok=True)
                tmp = shared
            else:
                tmp = tempfile.mkdtemp(dir=parent,
                                       prefix=f'.{osp.basename(full)}.',
                                       suffix='.tmp')
        except OSError as e:  # it names the temporary folder
            e.filename = None
            raise
        os.chmod(tmp, dir_mode())
        yield tmp
        entries = sorted(os.listdir(tmp))
        # again: files the user put there meanwhile must not be deleted
        check_writable(path, 'dir', what=what, overwrite=overwrite, flag=flag)
        _replace_dir(tmp, full)
        if owner is None:  # (one written by ranks is never replaced)
            dump_json_atomic(dict(inode=os.stat(full).st_ino,
                                  entries=entries), _marker(full))
    except OSError as e:
        raise annotate(e, path, None, [tmp] if tmp else []) from None
    finally:
        if tmp is not None and osp.lexists(tmp):
            _remove(tmp)


def check_writable(path: str, kind: str = 'file', what: str = 'output',
                   overwrite: bool = True, flag: str = '--overwrite') -> None:
    """Fail now, with one line, if ``path`` could not be written later.

    The folder that will receive ``path`` (or the nearest existing folder
    above it, where the missing ones will be created) must be a folder
    and accept a new file: a small probe file is created and removed, so
    read-only file systems, permissions and ACLs all count. Nothing is
    left behind.

    Args:
        path: The output a tool will write.
        kind: ``'file'`` or ``'dir'`` (a folder written as a whole, see
            :func:`atomic_dir`).
        what: What the output is (``--out``, ``results folder`` ...), for
            the message.
        overwrite: Whether an existing file, or a folder that is not
            empty, may be replaced; such a folder only if it is an earlier
            output of :func:`atomic_dir` (:func:`is_own_output`).
        flag: The option that sets ``overwrite``, for the message.

    Raises:
        CitymaskError: ``path`` can't be written, is the wrong kind, or is
            a non-empty folder (without ``overwrite``).
    """
    if kind not in ('file', 'dir'):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    label = f'{what} {path}'
    full = osp.abspath(path)
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
            found = (f'not empty ({len(entries)} entries, e.g. '
                     f'{sorted(entries)[0]})')
            raise CitymaskError(
                f'{label} is {found}: its files would mix with this run\'s; '
                f'choose a new or empty folder, or pass {flag} to replace it'
                if own else
                f'{label} is {found} and not an earlier output of this tool '
                f'(no record of it in {_marker(full)}), so it is never '
                'replaced; choose a new or empty folder')
    anchor = _existing_ancestor(osp.dirname(full))
    if not osp.isdir(anchor):
        raise CitymaskError(
            f'cannot write {label}: {anchor} is a file, not a folder')
    try:
        fd, probe = tempfile.mkstemp(dir=anchor, prefix='.citymask-probe-')
    except OSError as e:
        reason = e.strerror or str(e)
        raise CitymaskError(
            f'cannot write {label}: {reason} ({anchor}); choose another '
            'location') from None
    os.close(fd)
    os.remove(probe)


def dump_json_atomic(obj: Any, path: str) -> None:
    """Write ``obj`` as JSON to ``path`` atomically.

    The text is made first, so a disk-full message can say how much was
    needed (and an object JSON can't encode fails before any file).
    """
    data = json.dumps(obj).encode()
    write_bytes_atomic(data, path)


def write_bytes_atomic(data: bytes, path: str) -> None:
    """Write ``data`` (an encoded image, ...) to ``path`` atomically."""
    with atomic_path(path, needed=len(data)) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
