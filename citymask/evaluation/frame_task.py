"""The unit of evaluation work: one frame's ground truth and predictions."""
from typing import NamedTuple, Optional, Sequence

from .crops import CropMask


class FrameTask(NamedTuple):
    """One frame to evaluate.

    Predicted masks come either in memory, as
    :func:`~citymask.evaluation.crops.crop_masks` outputs (``masks``), or
    as PNG files of the official results format (``mask_paths``), which the
    evaluation worker decodes.
    """
    gt_path: str
    label_ids: Sequence[int]
    scores: Sequence[float]
    masks: Sequence[Optional[CropMask]] = ()
    mask_paths: Sequence[str] = ()
