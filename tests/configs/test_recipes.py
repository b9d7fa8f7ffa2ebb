"""configs/: the recipes hold the paper's / maskrcnn-benchmark's numbers and
build mmdet's Mask R-CNN R-50-FPN, which trains on CPU."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from ..conftest import CONFIGS, build_model

FT = 'maskrcnn_r50_fpn_cityscapes_ft.py'
IN1K = 'maskrcnn_r50_fpn_cityscapes.py'


def _cfg(name):
    return Config.fromfile(osp.join(CONFIGS, name))


def _multistep(cfg):
    return [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0]


@pytest.mark.parametrize('name,iters,step', [(FT, 4000, 3000),
                                             (IN1K, 24000, 18000)])
def test_schedule_data_and_evaluation(name, iters, step):
    cfg = _cfg(name)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 0.01, 0.9, 0.0001)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == iters
    ms = _multistep(cfg)
    assert ms.milestones == [step] and ms.gamma == 0.1 and not ms.by_epoch
    assert ms.end == iters
    warm = [s for s in cfg.param_scheduler if s.type == 'LinearLR'][0]
    assert warm.end == 500 and not warm.by_epoch
    # 8 images per iteration = 1 per GPU x 8 GPUs; fewer GPUs: auto-scale
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.auto_scale_lr.base_batch_size == 8
    # the pipelines are the data config's (tests/test_dataset_config.py)
    base = _cfg(osp.join('_base_', 'datasets', 'cityscapes_instance.py'))
    assert cfg.train_dataloader.dataset.pipeline == base.train_pipeline
    assert cfg.test_dataloader.dataset.pipeline == base.test_pipeline
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    types = [e.type for e in cfg.val_evaluator]
    assert types == ['CityscapesInstanceMetric', 'CocoMetric']
    assert cfg.default_hooks.checkpoint.save_best == 'cityscapes/mAP'
    assert 'citymask.register' in cfg.custom_imports.imports


def test_finetune_loads_coco_with_surgery_and_caffe_variants():
    cfg = _cfg(FT)
    assert cfg.load_from.endswith('mask_rcnn_r50_fpn_1x_coco_20200205-'
                                  'd4b0c5d6.pth')
    assert {'type': 'CocoToCityscapesHook', 'rider_init': 'random'} in \
        cfg.custom_hooks
    assert cfg.model.backbone.init_cfg is None
    assert _cfg(IN1K).model.backbone.init_cfg.checkpoint == \
        'torchvision://resnet50'
    # the Caffe2-style variants
    mbm = _cfg('maskrcnn_r50_caffe_fpn_cityscapes_ft_maskrcnn_benchmark.py')
    assert mbm.model.backbone.style == 'caffe'
    assert mbm.model.data_preprocessor.bgr_to_rgb is False
    assert mbm.model.data_preprocessor.std == [1.0, 1.0, 1.0]
    assert mbm.model.roi_head.bbox_roi_extractor.roi_layer.aligned is False
    d2 = _cfg('maskrcnn_r50_caffe_fpn_cityscapes_ft_detectron2.py')
    assert d2.model.data_preprocessor.mean == [103.530, 116.280, 123.675]
    assert d2.model.roi_head.mask_roi_extractor.roi_layer.aligned is True
    assert _multistep(d2).milestones == [3000]


def test_r50_fpn_forward_backward_cpu():
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    model = build_model(IN1K)  # no init_weights(): no download
    assert model.backbone.depth == 50 and type(model.neck).__name__ == 'FPN'
    # mmdet's layout: 8 classes + background last in fc_cls
    assert model.roi_head.bbox_head.fc_cls.out_features == 9
    assert model.roi_head.mask_head.conv_logits.out_channels == 8
    model.train()
    data = model.data_preprocessor(demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 128, 256)], num_items=[3],
        num_classes=8, with_mask=True), True)
    losses = model(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(
        losses)
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
