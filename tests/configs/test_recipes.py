"""configs/: the recipes hold the paper's / maskrcnn-benchmark's numbers."""
import os.path as osp

import pytest
from mmengine.config import Config

from ..conftest import CONFIGS

FT = 'maskrcnn_r50_fpn_cityscapes_ft.py'
IN1K = 'maskrcnn_r50_fpn_cityscapes.py'
SEED_SCALES = [800, 832, 864, 896, 928, 960, 992, 1024, 1024]


def _cfg(name):
    return Config.fromfile(osp.join(CONFIGS, name))


def _multistep(cfg):
    return [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0]


@pytest.mark.parametrize('name,iters,step', [(FT, 4000, 3000),
                                             (IN1K, 24000, 18000)])
def test_schedule(name, iters, step):
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


@pytest.mark.parametrize('name', [FT, IN1K])
def test_data_and_model(name):
    cfg = _cfg(name)
    resize = [t for t in cfg.train_pipeline
              if t.type == 'RandomChoiceResize'][0]
    assert [s for _, s in resize.scales] == SEED_SCALES
    assert {w for w, _ in resize.scales} == {2048} and resize.keep_ratio
    test_resize = [t for t in cfg.test_pipeline if t.type == 'Resize'][0]
    assert tuple(test_resize.scale) == (2048, 1024)
    load = [t for t in cfg.train_pipeline if t.type == 'LoadAnnotations'][0]
    assert load.poly2mask is False  # polygons stay vertices
    assert cfg.model.roi_head.bbox_head.num_classes == 8
    assert cfg.model.roi_head.mask_head.num_classes == 8
    assert cfg.model.backbone.depth == 50
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    types = [e.type for e in cfg.val_evaluator]
    assert types == ['CityscapesInstanceMetric', 'CocoMetric']
    assert cfg.default_hooks.checkpoint.save_best == 'cityscapes/mAP'
    assert 'citymask.register' in cfg.custom_imports.imports


def test_finetune_loads_coco_with_surgery():
    cfg = _cfg(FT)
    assert cfg.load_from.endswith('mask_rcnn_r50_fpn_1x_coco_20200205-'
                                  'd4b0c5d6.pth')
    assert {'type': 'CocoToCityscapesHook', 'rider_init': 'random'} in \
        cfg.custom_hooks
    assert cfg.model.backbone.init_cfg is None
    assert _cfg(IN1K).model.backbone.init_cfg.checkpoint == \
        'torchvision://resnet50'


def test_caffe_variants():
    mbm = _cfg('maskrcnn_r50_caffe_fpn_cityscapes_ft_maskrcnn_benchmark.py')
    assert mbm.model.backbone.style == 'caffe'
    assert mbm.model.data_preprocessor.bgr_to_rgb is False
    assert mbm.model.data_preprocessor.std == [1.0, 1.0, 1.0]
    assert mbm.model.roi_head.bbox_roi_extractor.roi_layer.aligned is False
    d2 = _cfg('maskrcnn_r50_caffe_fpn_cityscapes_ft_detectron2.py')
    assert d2.model.data_preprocessor.mean == [103.530, 116.280, 123.675]
    assert d2.model.roi_head.mask_roi_extractor.roi_layer.aligned is True
    assert _multistep(d2).milestones == [3000]
