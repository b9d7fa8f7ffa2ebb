"""Instance masks kept as their box crops, pasted whole only on demand."""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from ..evaluation.crops import CropMask, encode_crop


class BoxMasks:
    """(N, H, W) boolean masks of an image of ``size`` (H, W) as crops at
    ``offsets`` (x, y), pasted whole where mmdet asks (``numpy()``,
    ``astype()``, iteration); an int index gives the full-image COCO RLE."""

    def __init__(self, crops: Sequence[np.ndarray],
                 offsets: Sequence[Tuple[int, int]],
                 size: Sequence[int]) -> None:
        self.crops, self.size = list(crops), tuple(int(v) for v in size)
        self.offsets = [(int(x), int(y)) for x, y in offsets]

    @classmethod
    def of(cls, masks) -> 'BoxMasks':
        """``masks`` itself, or the crops of full (N, H, W) masks."""
        if isinstance(masks, cls):
            return masks
        masks = np.ascontiguousarray(masks, bool)
        boxes = [cv2.boundingRect(m.view(np.uint8)) for m in masks]
        return cls([m[y:y + h, x:x + w] for m, (x, y, w, h) in
                    zip(masks, boxes)], [b[:2] for b in boxes],
                   masks.shape[1:])

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (len(self.crops), *self.size)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, item):
        if not isinstance(item, slice):
            return self._rle(item)
        keep = range(len(self))[item]
        return BoxMasks([self.crops[i] for i in keep],
                        [self.offsets[i] for i in keep], self.size)

    def cat(self, parts: Sequence['BoxMasks']) -> 'BoxMasks':
        return BoxMasks([c for p in parts for c in p.crops],
                        [o for p in parts for o in p.offsets], self.size)

    def _paste(self, i: int, out: np.ndarray) -> np.ndarray:
        (x, y), crop = self.offsets[i], self.crops[i]
        out[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
        return out

    def _rle(self, i: int) -> dict:
        # pasted into a column-major image, pycocotools' order: no transpose
        rle = mask_utils.encode(self._paste(i, np.zeros(
            self.size, np.uint8, order='F'))[..., None])[0]
        return dict(rle, counts=rle['counts'].decode())

    def numpy(self) -> np.ndarray:
        """The full (N, H, W) boolean masks."""
        full = np.zeros(self.shape, bool)
        for i in range(len(self)):
            self._paste(i, full[i])
        return full

    def astype(self, dtype) -> np.ndarray:
        return self.numpy().astype(dtype)

    def cpu(self) -> 'BoxMasks':
        return self  # the crops are numpy arrays

    def __iter__(self):
        return iter(self.numpy())

    def to_crops(self) -> List[Optional[CropMask]]:
        """The :func:`~citymask.evaluation.crops.crop_masks` entries."""
        return [encode_crop(c, x, y) for c, (x, y) in
                zip(self.crops, self.offsets)]
