"""The configs build mmdet's Mask R-CNN R-50-FPN, which trains on CPU."""
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import init_default_scope

import citymask.register  # noqa: F401
from .conftest import CONFIGS


def test_r50_fpn_forward_backward_cpu():
    cfg = Config.fromfile(osp.join(CONFIGS, 'maskrcnn_r50_fpn_cityscapes.py'))
    assert cfg.model.type == 'MaskRCNN'
    assert cfg.model.backbone.depth == 50 and cfg.model.neck.type == 'FPN'
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)  # no init_weights(): no download
    # mmdet's layout: 8 classes + background last in fc_cls.
    assert model.roi_head.bbox_head.fc_cls.out_features == 9
    assert model.roi_head.mask_head.conv_logits.out_channels == 8
    model.train()

    data = demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 128, 256)], num_items=[3],
        num_classes=8, with_mask=True)
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    for name in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert name in losses
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    for p in (model.roi_head.bbox_head.fc_cls.weight,
              model.roi_head.mask_head.conv_logits.weight,
              model.backbone.layer4[0].conv1.weight,
              model.neck.lateral_convs[0].conv.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0
    # frozen stem (frozen_stages=1) gets no gradient, as in the paper
    assert model.backbone.conv1.weight.grad is None
