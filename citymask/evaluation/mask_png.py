"""Predicted mask PNGs of the official results format, read fast.

The official script decodes one full-size PNG per prediction, and so must a
drop-in: with PIL or OpenCV a 2048x1024 mask costs 4-12 ms, mostly zlib's
inflate (4 ms) and un-filtering 2 MB of rows. Mask PNGs are almost all
zeros, so here the stream is inflated with zlib-ng (about 40x faster than
zlib on such long runs) and rows are un-filtered only inside the band where
the filtered bytes are non-zero: 0.2-0.5 ms per mask (docs/benchmarks.md).
Grey 8-bit and 1-bit, non-interlaced files (what mmdet, detectron2, PIL and
OpenCV write) take this path, with every PNG filter type; anything else is
read by PIL exactly as the official script reads it. Both give the same
pixels (tested against PIL and OpenCV).
"""
import struct
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from ..errors import CitymaskError
from .crops import CropMask, crop_masks, encode_crop

try:  # same API as zlib; only its speed differs
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - zlib-ng is in requirements
    import zlib as _zlib

_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def read_pred_mask(path: str) -> np.ndarray:
    """A predicted mask PNG as the official script reads it: non-zero after
    PIL's ``convert('L')``."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert('L')) != 0
    except Exception as e:
        raise CitymaskError(f'cannot read predicted mask {path}: {e}') \
            from None


def read_mask_crop(path: str) -> Tuple[Tuple[int, int], Optional[CropMask]]:
    """``((height, width), crop)`` of a predicted mask PNG's non-zero
    pixels, ``crop`` as :func:`crop_masks` gives it (None if empty)."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise CitymaskError(f'cannot read predicted mask {path}: '
                            f'{e.strerror}') from None
    fast = _decode_grey(data)
    if fast is not None:
        return fast
    mask = read_pred_mask(path)
    return mask.shape, crop_masks(mask[None])[0]


def _chunks(data: bytes) -> Optional[Tuple[tuple, bytes]]:
    """IHDR fields and the IDAT stream, or None if not a plain PNG."""
    if not data.startswith(_SIGNATURE):
        return None
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            return None
        if kind == b'IHDR':
            if length != 13:
                return None
            header = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
        pos += 12 + length
    if header is None or not idat:
        return None
    return header, b''.join(idat)


def _decode_grey(data: bytes
                 ) -> Optional[Tuple[Tuple[int, int], Optional[CropMask]]]:
    """The fast path; None where it does not apply (or the file is broken:
    PIL then says what is wrong)."""
    parsed = _chunks(data)
    if parsed is None:
        return None
    (width, height, depth, colour, _, _, interlace), stream = parsed
    if colour != 0 or depth not in (1, 8) or interlace != 0 or not width:
        return None
    if width * height > (Image.MAX_IMAGE_PIXELS or float('inf')):
        return None  # PIL refuses decompression bombs with a clear error
    row_bytes = (width * depth + 7) // 8
    size = height * (row_bytes + 1)
    try:  # a buffer one byte larger than the image: no regrowing copies
        raw = _zlib.decompress(stream, bufsize=size + 1)
    except _zlib.error:
        return None
    if len(raw) != size:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(height, row_bytes + 1)
    filters, filtered = rows[:, 0], rows[:, 1:]
    if filters.max(initial=0) > 4:
        return None
    band = _unfilter_band(filters, filtered)
    if band is None:
        return (height, width), None
    y0, x0, recon = band
    if depth == 1:
        recon = np.unpackbits(recon, axis=1)[:, :width - 8 * x0]
        x0 *= 8
    return (height, width), encode_crop(recon != 0, x0, y0)


def _unfilter_band(filters: np.ndarray, filtered: np.ndarray
                   ) -> Optional[Tuple[int, int, np.ndarray]]:
    """Un-filter (PNG spec 9, one byte per pixel for filtering) only the
    rows and columns that can be non-zero: ``(y0, x0, rows)``, None if the
    image is all zeros.

    Above the first and left of the leftmost non-zero filtered byte every
    pixel is 0 for every filter type, and so is everything right of a
    column that is 0 in all rows; None and Sub rows do not depend on the
    row above, so past the last non-zero byte a zero row ends the image.
    """
    nonzero = np.flatnonzero(np.bitwise_or.reduce(filtered, axis=1))
    if len(nonzero) == 0:
        return None
    y0, last = int(nonzero[0]), int(nonzero[-1])
    cols = np.flatnonzero(np.bitwise_or.reduce(filtered[y0:last + 1], axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    out = _unfilter_rows(filters, filtered[:, x0:x1], y0, last)
    if x1 < filtered.shape[1] and out[:, -1].any():  # spills to the right
        out = _unfilter_rows(filters, filtered[:, x0:], y0, last)
    return y0, x0, out


def _unfilter_rows(filters: np.ndarray, filtered: np.ndarray, y0: int,
                   last: int) -> np.ndarray:
    """Rows ``y0..`` of a column band, runs of equal filter type at once."""
    height, width = filtered.shape
    out = np.zeros((height - y0, width), np.uint8)
    prior = np.zeros(width, np.uint8)
    starts = np.flatnonzero(np.diff(filters[y0:])) + y0 + 1
    bounds = sorted({y0, last + 1, *starts.tolist(), height})
    for a, b in zip(bounds[:-1], bounds[1:]):
        f, block = int(filters[a]), filtered[a:b]
        if a > last and (f <= 1 or not prior.any()):
            return out[:a - y0]  # zero rows from here on
        if f == 0:  # None
            rec = block
        elif f == 1:  # Sub: running sum along the row (uint8 wraps)
            rec = np.cumsum(block, axis=1, dtype=np.uint8)
        elif f == 2:  # Up: running sum down the rows
            rec = np.cumsum(block, axis=0, dtype=np.uint8)
            rec += prior
        else:  # Average, Paeth: sequential in x; rare in mask files
            rec = np.empty_like(block)
            for i, row in enumerate(block):
                rec[i] = _unfilter_row(f, row, prior)
                prior = rec[i]
        out[a - y0:b - y0] = rec
        prior = out[b - y0 - 1]
    return out


def _unfilter_row(f: int, row: np.ndarray, prior: np.ndarray) -> np.ndarray:
    out, left, up_left = [], 0, 0
    for d, up in zip(row.tolist(), prior.tolist()):
        if f == 3:  # Average
            left = (d + ((left + up) >> 1)) & 255
        else:  # Paeth
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            pred = left if pa <= pb and pa <= pc else (
                up if pb <= pc else up_left)
            left = (d + pred) & 255
        up_left = up
        out.append(left)
    return np.array(out, np.uint8)
