"""The evaluation's PNGs read fast: 16-bit id images (ground truth,
disparity) by pyspng (PIL where it can't), and predicted masks.

The official script decodes a full-size PNG per mask (4-14 ms at
2048x1024, mostly 2 MB of zero rows). Grey 8-bit and 1-bit non-interlaced
masks (what mmdet, detectron2, PIL and OpenCV write) are inflated here
with zlib-ng (~40x faster on such runs) and only the band whose filtered
bytes are non-zero is un-filtered, by libspng; anything else is read by
PIL as the official script does. Same pixels (tested); times in
docs/benchmarks.md.
"""
import io
import struct
from typing import Optional, Tuple

import numpy as np
import pyspng
from PIL import Image
from zlib_ng import zlib_ng as _zlib  # zlib's API, much faster here

from ..errors import CitymaskError
from .crops import CropMask, crop_masks, encode_crop
from .untrusted import MAX_MASK_BYTES, read_regular

_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def read_gt(path: str) -> np.ndarray:
    """``*_gtFine_instanceIds.png`` (or ``*_disparity.png``) as uint16."""
    try:
        with open(path, 'rb') as f:
            img = pyspng.load(f.read())
        if img.ndim == 3 and img.shape[2] == 2:  # grey16 comes with alpha
            img = np.ascontiguousarray(img[..., 0])
    except Exception:
        try:
            with Image.open(path) as im:
                img = np.asarray(im)
        except Exception as e:
            raise CitymaskError(
                f'cannot read ground truth {path}: {e}') from None
    if img.ndim != 2:
        raise CitymaskError(f'{path}: expected a single-channel instance '
                            f'id image, got shape {img.shape}')
    return as_uint16(img, path)


def as_uint16(gt: np.ndarray, what: str = 'ground truth') -> np.ndarray:
    """Instance ids as a C-contiguous uint16 array (0..65535 checked)."""
    if gt.dtype != np.uint16:
        if gt.size and (gt.min() < 0 or gt.max() > 65535):
            raise CitymaskError(f'{what}: instance ids must be 0..65535')
        gt = gt.astype(np.uint16)
    return np.ascontiguousarray(gt)


def read_pred_mask(path: str, data: Optional[bytes] = None) -> np.ndarray:
    """A predicted mask PNG as the official script reads it: non-zero after
    PIL's ``convert('L')`` (of ``data``, the file's bytes, if given)."""
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as im:
            return np.asarray(im.convert('L')) != 0
    except Exception as e:
        raise CitymaskError(f'cannot read predicted mask {path}: {e}') \
            from None


def read_mask_crop(path: str, max_bytes: int = MAX_MASK_BYTES
                   ) -> Tuple[Tuple[int, int], Optional[CropMask]]:
    """``((height, width), crop)`` of a predicted mask PNG's non-zero
    pixels, ``crop`` as :func:`crop_masks` gives it (None if empty); only
    a regular file of at most ``max_bytes`` is read."""
    data = read_regular(path, max_bytes)
    fast = _decode_grey(data)
    if fast is not None:
        return fast
    mask = read_pred_mask(path, data)
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
    return (header, b''.join(idat)) if header and idat else None


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
    """``(y0, x0, rows)``: only the rows and columns that can be non-zero
    un-filtered (PNG spec 9, a byte per pixel); None if all zeros.

    Above and left of the first non-zero filtered byte every pixel is 0.
    Right of the last one a pixel is its prediction: 0 (None), the pixel
    above (Up) or the one to its left (Sub / Average / Paeth): the band
    is widened to the edge only when such a row ends non-zero.
    """
    nonzero = np.flatnonzero(np.bitwise_or.reduce(filtered, axis=1))
    if len(nonzero) == 0:
        return None
    y0, last = int(nonzero[0]), int(nonzero[-1])
    cols = np.flatnonzero(np.bitwise_or.reduce(filtered[y0:last + 1], axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    out = _unfilter_rows(filters, filtered[:, x0:x1], y0, last)
    if x1 < filtered.shape[1]:
        leftward = _LEFTWARD[filters[y0:y0 + len(out)]]
        if out[leftward, -1].any():  # spills to the right
            out = _unfilter_rows(filters, filtered[:, x0:], y0, last)
    return y0, x0, out


# filter types whose prediction is (also) the pixel to the left
_LEFTWARD = np.zeros(256, bool)
_LEFTWARD[[1, 3, 4]] = True


def _unfilter_rows(filters: np.ndarray, filtered: np.ndarray, y0: int,
                   last: int) -> np.ndarray:
    """Rows ``y0..`` of a column band, un-filtered by libspng.

    The pixels left of and above the band are 0, as PNG filters assume
    outside an image: its rows go uncompressed into an 8-bit grey PNG of
    their own (filters work on bytes, 1-bit or 8-bit). Past ``last`` all
    filtered bytes are 0: the first None or Sub row there ends the band
    (Up / Average / Paeth rows before it may repeat the rows above).
    """
    after = np.flatnonzero(filters[last + 1:] <= 1)
    end = last + 1 + int(after[0]) if len(after) else len(filters)
    rows = np.empty((end - y0, filtered.shape[1] + 1), np.uint8)
    rows[:, 0] = filters[y0:end]
    rows[:, 1:] = filtered[y0:end]
    header = struct.pack('>IIBBBBB', rows.shape[1] - 1, rows.shape[0], 8, 0,
                         0, 0, 0)
    png = b''.join([_SIGNATURE, _chunk(b'IHDR', header),
                    _chunk(b'IDAT', _zlib.compress(rows.tobytes(), 0)),
                    _chunk(b'IEND', b'')])
    return pyspng.load(png)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack('>I', len(body)) + kind + body +
            struct.pack('>I', _zlib.crc32(kind + body)))
