import numpy as np
import pycocotools.mask as mask_utils


def to_mask(segm, h: int, w: int) -> np.ndarray:
    """The boolean mask of a COCO ``segmentation`` (polygons or RLE), as
    pycocotools (and so mmdet) reads it."""
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    else:
        rle = dict(size=segm['size'], counts=segm['counts'].encode())
    return mask_utils.decode(rle).astype(bool)
