"""configs/_base_/datasets/cityscapes_instance.py on converted mini data."""
import os.path as osp

import numpy as np
from mmdet.registry import DATASETS
from mmdet.structures.mask import PolygonMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope

import citymask.register  # noqa: F401
from ..conftest import CONFIGS

SEED_SHORT_SIDES = (800, 832, 864, 896, 928, 960, 992, 1024)


def _dataset(cfg_dataset, root, ann_file):
    ds = cfg_dataset.copy()
    ds.update(data_root=root, ann_file=ann_file)
    return DATASETS.build(ds)


def test_pipelines_land_on_the_seed_scales(mini_cityscapes, mini_coco):
    cfg = Config.fromfile(
        osp.join(CONFIGS, '_base_', 'datasets', 'cityscapes_instance.py'))
    init_default_scope('mmdet')
    assert [s for _, s in cfg.train_scales] == [
        800, 832, 864, 896, 928, 960, 992, 1024, 1024]

    train = _dataset(cfg.train_dataloader.dataset, mini_cityscapes,
                     mini_coco['polygon']['train'])
    np.random.seed(0)
    shorts, flips = set(), set()
    for i in range(24):
        out = train[i % len(train)]
        sample = out['data_samples']
        h, w = sample.img_shape
        assert out['inputs'].shape[1:] == (h, w)
        assert h in SEED_SHORT_SIDES and w == 2 * h <= 2048
        assert isinstance(sample.gt_instances.masks, PolygonMasks)
        assert len(sample.gt_instances) > 0
        # boxes were scaled with the image
        assert sample.gt_instances.bboxes.tensor[:, 2].max() <= w + 1
        shorts.add(h)
        flips.add(sample.flip)
    assert len(shorts) >= 4 and flips == {True, False}

    test = _dataset(cfg.test_dataloader.dataset, mini_cityscapes,
                    mini_coco['polygon']['val'])
    for i in range(len(test)):
        sample = test[i]['data_samples']
        assert sample.img_shape == (1024, 2048)
        assert sample.ori_shape == (1024, 2048)
