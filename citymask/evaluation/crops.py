"""Predicted masks as RLE of their bounding-box crops: what the evaluator
keeps per prediction (a few hundred bytes, not a full-size mask)."""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils

# A predicted mask: (x0, y0, RLE of the bounding-box crop's transpose)
CropMask = Tuple[int, int, dict]


class FrameTask(NamedTuple):
    """One frame to evaluate; its masks in memory (``masks``, of
    :func:`crop_masks`) or as PNGs of the results format (``mask_paths``),
    decoded by the evaluation worker."""
    gt_path: str
    label_ids: Sequence[int]
    scores: Sequence[float]
    masks: Sequence[Optional[CropMask]] = ()
    mask_paths: Sequence[str] = ()


def crop_masks(masks: np.ndarray) -> List[Optional[CropMask]]:
    """(N, H, W) boolean masks as RLE of their bounding-box crops (None:
    empty); of the transpose: the Fortran order pycocotools wants, without
    a copy. Boxes are found 8 pixels a word (faster than bool ``any()``).
    """
    masks = np.ascontiguousarray(masks, dtype=bool)
    n, h, w = masks.shape
    if w % 8:
        return [encode_crop(m) for m in masks]
    words = masks.view(np.uint64).reshape(n, h, w // 8)
    rows = np.bitwise_or.reduce(words, axis=2) != 0
    out: List[Optional[CropMask]] = []
    for i in range(n):
        ys = np.flatnonzero(rows[i])
        if len(ys) == 0:
            out.append(None)
            continue
        y0, y1 = int(ys[0]), int(ys[-1]) + 1
        cols = np.bitwise_or.reduce(words[i, y0:y1], axis=0).view(np.uint8)
        xs = np.flatnonzero(cols)
        x0, x1 = int(xs[0]), int(xs[-1]) + 1
        out.append(_encode(masks[i, y0:y1, x0:x1], x0, y0))
    return out


def crop_masks_tensor(masks) -> List[Optional[CropMask]]:
    """:func:`crop_masks` of an (N, H, W) GPU tensor: boxes found there,
    only the crops copied, in one transfer (not 2 MB a 2048x1024 mask)."""
    import torch
    if masks.shape[0] == 0:
        return []
    masks = masks.bool()
    rows = masks.any(dim=2).cpu().numpy()
    cols = masks.any(dim=1).cpu().numpy()
    boxes = {}
    for i in range(len(rows)):
        ys, xs = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
        if len(ys):
            boxes[i] = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1,
                        int(ys[-1]) + 1)
    out: List[Optional[CropMask]] = [None] * len(rows)
    if not boxes:
        return out
    flat = torch.cat([masks[i, y0:y1, x0:x1].reshape(-1) for i, (
        x0, y0, x1, y1) in boxes.items()]).cpu().numpy()
    start = 0
    for i, (x0, y0, x1, y1) in boxes.items():
        size = (y1 - y0) * (x1 - x0)
        crop = flat[start:start + size].reshape(y1 - y0, x1 - x0)
        out[i] = _encode(crop, x0, y0)
        start += size
    return out


def encode_crop(mask: np.ndarray, x_off: int = 0,
                y_off: int = 0) -> Optional[CropMask]:
    """The :func:`crop_masks` entry of one (small) boolean array whose
    top-left pixel sits at ``(x_off, y_off)``; None if it is empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(mask[ys[0]:ys[-1] + 1].any(axis=0))
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    return _encode(mask[y0:y1, x0:x1], x0 + x_off, y0 + y_off)


def _encode(crop: np.ndarray, x0: int, y0: int) -> CropMask:
    crop = np.ascontiguousarray(crop, dtype=bool).view(np.uint8)
    return int(x0), int(y0), mask_utils.encode(crop.T)


def decode_crop(mask: CropMask) -> Tuple[int, int, np.ndarray]:
    """``(x0, y0, crop)`` of a :func:`crop_masks` entry; ``crop`` is a
    C-contiguous uint8 0/1 array."""
    x0, y0, rle = mask
    return x0, y0, mask_utils.decode(rle).T


def crop_coco_rle(rle: dict, shape: Sequence[int]) -> Optional[CropMask]:
    """The :func:`crop_masks` entry of a full-image COCO RLE of an
    untrusted file (mmdet's ``DumpDetResults``); ValueError if not one of
    ``shape`` (height, width). Not pycocotools' decoder: it writes past the
    mask's end if the runs say so. Runs are read as its ``rleFrString``.
    """
    h, w = (int(v) for v in shape)
    counts = rle.get('counts') if isinstance(rle, dict) else None
    if isinstance(counts, str):
        counts = counts.encode()
    if not isinstance(counts, bytes) or list(rle.get('size', ())) != [h, w]:
        raise ValueError(f'not a COCO RLE of a {w}x{h} mask')
    # maskApi.c's rleFrString: 5 bits a character ('0' + value), 0x20 =
    # more to come, the last character's 0x10 = negative; from the third
    # on, a count is stored as its difference to the one two before
    c = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    last = (c & 0x20) == 0
    if len(c) and ((c < 0) | (c > 63)).any() or len(c) and not last[-1]:
        raise ValueError('not a COCO RLE string')
    group = np.concatenate([[0], np.cumsum(last)[:-1]])
    k = np.arange(len(c)) - np.flatnonzero(np.r_[True, last[:-1]])[group]
    if len(k) and k.max() > 6:
        raise ValueError('a count of more than 32 bits')
    diffs = np.bincount(group, (c & 0x1f) << 5 * k).astype(np.int64)
    negative = (c[last] & 0x10) != 0
    diffs[negative] -= 1 << 5 * (k[last][negative] + 1)
    runs = diffs.copy()
    runs[3::2] = np.cumsum(diffs[1::2])[1:]
    runs[2::2] = np.cumsum(diffs[2::2])
    runs &= 0xffffffff  # maskApi.c keeps counts as uint
    if runs.sum() != h * w:
        raise ValueError(f'its runs cover {runs.sum()} pixels, not {w}x{h}')
    # runs alternate 0s and 1s along the columns (pixel x * h + y); the
    # bounding box follows from the 1-runs, the crop is filled from them
    ends = np.cumsum(runs)
    start, end = (ends - runs)[1::2], ends[1::2]
    start, end = start[end > start], end[end > start]
    if len(start) == 0:
        return None
    col0, col1 = start // h, (end - 1) // h
    x0, x1 = int(col0.min()), int(col1.max()) + 1
    one = col0 == col1  # a run over several columns touches rows 0, h-1
    y0 = int((start % h).min()) if one.all() else 0
    y1 = int(((end - 1) % h).max()) + 1 if one.all() else h
    edges = np.zeros((x1 - x0) * h + 1, np.int8)
    edges[start - x0 * h] += 1
    edges[end - x0 * h] -= 1
    crop = np.cumsum(edges[:-1], dtype=np.int8).astype(bool)
    crop = crop.reshape(x1 - x0, h)
    return _encode(crop[:, y0:y1].T, x0, y0)
