"""A COCO-format stand-in checkpoint (random weights) for architectures with
no model zoo entry (the mini CPU config), for the demo and tests, which
cannot download; real fine-tuning starts from the model zoo's COCO model."""
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from ..checkpoint import save_checkpoint


def make_coco_standin(cfg: Config, out: str, seed: int = 0) -> None:
    """Write the config's model, with COCO's 80 classes, as a checkpoint."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    model_cfg = cfg.model.copy()
    model_cfg.roi_head.bbox_head.num_classes = 80
    model_cfg.roi_head.mask_head.num_classes = 80
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # init_weights logs every tensor
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    meta = dict(note='stand-in for a COCO Mask R-CNN (random weights); real '
                'runs load the model zoo checkpoint')
    save_checkpoint(dict(state_dict=model.state_dict(), meta=meta), out)
