"""COCO -> Cityscapes Mask R-CNN surgery of checkpoints, for the on-load hook
(``convert_checkpoint``) and tools/surgery.py (``convert_file``)."""
import os.path as osp
from typing import Optional, Tuple

from ..checkpoint import load_checkpoint_file, save_checkpoint
from ..classes import CLASSES
from ..errors import CheckpointError
from .heads import coco_to_cityscapes
from .layouts import to_mmdet_layout


def convert_checkpoint(ckpt: dict, src_format: Optional[str] = None,
                       rider_init: str = 'random') -> Tuple[dict, dict]:
    """Convert a loaded COCO Mask R-CNN checkpoint to mmdet Cityscapes
    heads: ``(checkpoint, info)``, ``info`` with ``format``, ``changed``."""
    state, rest, fmt = to_mmdet_layout(ckpt, src_format)
    state, changed = coco_to_cityscapes(state, rider_init)
    meta = dict(rest.get('meta') or {})
    if changed:
        meta.update(dataset_meta=dict(classes=CLASSES),
                    citymask_surgery=dict(source_format=fmt,
                                          rider_init=rider_init))
    return dict(rest, state_dict=state, meta=meta), dict(format=fmt,
                                                         changed=changed)


def convert_file(src: str, dst: str, src_format: Optional[str] = None,
                 rider_init: str = 'random', force: bool = False) -> dict:
    """Read ``src`` safely, convert it, write ``dst`` atomically; the COCO
    run's optimizer and scheduler states are left out. Returns ``info``."""
    if osp.exists(dst) and not force:
        raise CheckpointError(f'{dst} exists; pass --force to overwrite it')
    ckpt, info = convert_checkpoint(load_checkpoint_file(src), src_format,
                                    rider_init)
    save_checkpoint(dict(state_dict=ckpt['state_dict'], meta=ckpt['meta']),
                    dst)
    return info
