"""The unit of evaluation work: one frame's ground truth and predictions."""
from typing import NamedTuple, Optional, Sequence

from .crops import CropMask


class FrameTask(NamedTuple):
    """One frame to evaluate; its masks in memory (``masks``, of
    :func:`~.crops.crop_masks`) or as PNGs of the results format
    (``mask_paths``), decoded by the evaluation worker."""
    gt_path: str
    label_ids: Sequence[int]
    scores: Sequence[float]
    masks: Sequence[Optional[CropMask]] = ()
    mask_paths: Sequence[str] = ()
