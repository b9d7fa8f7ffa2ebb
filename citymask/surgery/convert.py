"""COCO Mask R-CNN -> Cityscapes Mask R-CNN weight surgery.

``convert_checkpoint`` works on a loaded checkpoint (used by the on-load
hook); ``convert_file`` reads and writes files (used by tools/surgery.py).
"""
import os.path as osp
from typing import Optional, Tuple

from ..checkpoint import load_checkpoint_file, save_checkpoint
from ..classes import CLASSES
from ..errors import CheckpointError
from .heads import coco_to_cityscapes
from .layouts import to_mmdet_layout


def convert_checkpoint(ckpt: dict,
                       src_format: Optional[str] = None,
                       rider_init: str = 'random') -> Tuple[dict, dict]:
    """Convert a loaded COCO Mask R-CNN checkpoint to mmdet Cityscapes heads.

    Returns:
        ``(checkpoint, info)``: an mmdet checkpoint ``{'state_dict', 'meta'}``
        and ``info`` with ``format`` and ``changed`` (False when the heads
        were Cityscapes heads already).
    """
    state, rest, fmt = to_mmdet_layout(ckpt, src_format)
    state, changed = coco_to_cityscapes(state, rider_init)
    meta = dict(rest.get('meta') or {})
    if changed:
        meta['dataset_meta'] = dict(classes=CLASSES)
        meta['citymask_surgery'] = dict(source_format=fmt,
                                        rider_init=rider_init)
    out = dict(rest, state_dict=state, meta=meta)
    return out, dict(format=fmt, changed=changed)


def convert_file(src: str,
                 dst: str,
                 src_format: Optional[str] = None,
                 rider_init: str = 'random',
                 force: bool = False) -> dict:
    """Read ``src`` safely, convert it, write ``dst`` atomically.

    Raises:
        CheckpointError: bad input, or ``dst`` exists and not ``force``.
    """
    if osp.exists(dst) and not force:
        raise CheckpointError(
            f'{dst} exists; pass --force to overwrite it')
    ckpt, info = convert_checkpoint(load_checkpoint_file(src), src_format,
                                    rider_init)
    # optimizer / scheduler states of the COCO run don't apply to this one
    ckpt = dict(state_dict=ckpt['state_dict'], meta=ckpt['meta'])
    save_checkpoint(ckpt, dst)
    return info
