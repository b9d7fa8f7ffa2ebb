"""Results from elsewhere, read with bounded work: a path may lead out
(``../``, a symlink to ``/dev/zero``) or name a FIFO, a file be one 2 GiB
line. So paths resolve inside their folder, only regular files are read,
sizes are capped (before and while reading), messages quote excerpts.
"""
import os
import os.path as osp
import stat

from ..errors import CitymaskError

# A mask PNG of a 2048x1024 test image stored uncompressed: 2.1 MB grey,
# 8.4 MB RGBA (the official reader accepts any mode); real ones are KBs.
MAX_MASK_BYTES = 32 * 2**20
# A prediction file: lines of ~80 bytes, and mmdet keeps at most 100
# instances per image (max_per_img); 1 MiB holds 12,000 such lines.
MAX_PRED_BYTES = 2**20
# A line: a relative path (PATH_MAX is 4096 bytes on Linux) and two numbers.
MAX_LINE_BYTES = 4096 + 64
# Enough of a PNG for its header (IHDR and what precedes the pixel data).
HEADER_BYTES = 64 * 2**10
EXCERPT_CHARS = 80


def excerpt(text: str) -> str:
    """``text`` quoted, at most :data:`EXCERPT_CHARS` of it."""
    return repr(text) if len(text) <= EXCERPT_CHARS else \
        f'{text[:EXCERPT_CHARS]!r}... ({len(text)} characters)'


def too_big(size: int, limit: int) -> str:
    """Why a file of ``size`` bytes is not read."""
    return (f'{size} bytes, more than the {limit} a real Cityscapes '
            'submission needs; not read')


def inside(root: str, path: str) -> str:
    """``path`` resolved (symlinks included); refused if outside ``root``."""
    real, top = osp.realpath(path), osp.realpath(root)
    if osp.commonpath([real, top]) != top:
        raise CitymaskError(
            f'{excerpt(osp.relpath(path, root))} resolves to '
            f'{excerpt(real)}, outside {root}; results must stay inside '
            'their folder')
    return real


def read_regular(path: str, limit: int, head: int = 0) -> bytes:
    """The bytes (the first ``head`` if given) of a regular file of at
    most ``limit`` bytes, not following a last symlink; CitymaskError if
    missing, not a regular file, or too big."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # never open a device
            raise CitymaskError(f'{path}: not a regular file')
        # NONBLOCK: a FIFO swapped in after the stat can't block the open
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise CitymaskError(f'cannot read {path}: {e.strerror}') from None
    with os.fdopen(fd, 'rb') as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CitymaskError(f'{path}: not a regular file')
        if info.st_size > limit:
            raise CitymaskError(f'{path}: {too_big(info.st_size, limit)}')
        data = f.read(head or limit + 1)
    if len(data) > limit:  # it grew after the stat
        raise CitymaskError(f'{path}: {too_big(len(data), limit)}')
    return data
