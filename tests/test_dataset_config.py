"""configs/_base_/datasets/cityscapes_instance.py on converted mini data."""
import json
import os.path as osp

import cv2
import numpy as np
from mmdet.registry import DATASETS
from mmdet.structures.mask import PolygonMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope

import citymask.register  # noqa: F401
from .conftest import CONFIGS

SHORT_SIDES = (800, 832, 864, 896, 928, 960, 992, 1024)


def _expected(ann, scale, flip, width):
    """An annotation's box and polygons from the JSON as mmdet's Resize +
    RandomFlip should make them: scaled, clipped, mirrored if ``flip``."""
    x, y, w, h = ann['bbox']
    height = round(1024 * scale)
    box = np.clip(np.array([x, y, x + w, y + h]) * scale,
                  0, [width, height, width, height])
    polys = [np.array(p, float) * scale for p in ann['segmentation']]
    if flip:
        box = np.array([width - box[2], box[1], width - box[0], box[3]])
        for p in polys:
            p[0::2] = width - p[0::2]
    return box, polys


def test_pipelines_land_on_the_seed_scales(mini_cityscapes, mini_coco):
    cfg = Config.fromfile(
        osp.join(CONFIGS, '_base_', 'datasets', 'cityscapes_instance.py'))
    init_default_scope('mmdet')
    # the paper's scales: 1024 listed twice, as in maskrcnn-benchmark
    assert cfg.train_scales == [(2048, s) for s in SHORT_SIDES + (1024, )]
    with open(mini_coco['polygon']['train']) as f:
        coco = json.load(f)
    anns = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        if not ann['iscrowd']:  # crowd regions become ignored instances
            anns[ann['image_id']].append(ann)

    train = DATASETS.build(dict(cfg.train_dataloader.dataset,
                                data_root=mini_cityscapes,
                                ann_file=mini_coco['polygon']['train']))
    np.random.seed(0)
    shorts, flips = set(), set()
    for i in range(24):
        out = train[i % len(train)]
        sample = out['data_samples']
        h, w = sample.img_shape
        assert h in SHORT_SIDES and (h, w) == (h, 2 * h)
        # keep_ratio: one factor for both sides, the short side's
        scale = h / 1024
        assert sample.scale_factor == (scale, scale)
        # the pixels: OpenCV's bilinear resize, mirrored if flipped
        img = cv2.resize(cv2.imread(sample.img_path), (w, h),
                         interpolation=cv2.INTER_LINEAR)
        if sample.flip:
            assert sample.flip_direction == 'horizontal'
            img = img[:, ::-1]
        np.testing.assert_array_equal(
            out['inputs'].numpy().transpose(1, 2, 0), img)
        # boxes and polygons: the JSON's, scaled and mirrored the same way
        gt = sample.gt_instances
        assert isinstance(gt.masks, PolygonMasks)
        expected = anns[sample.img_id]
        assert len(gt) == len(expected) > 0
        for k, ann in enumerate(expected):
            box, polys = _expected(ann, scale, sample.flip, w)
            np.testing.assert_allclose(gt.bboxes.tensor[k].numpy(), box,
                                       atol=1e-3)
            assert len(gt.masks.masks[k]) == len(polys)
            for got, want in zip(gt.masks.masks[k], polys):
                np.testing.assert_allclose(got, want, atol=1e-3)
        shorts.add(h)
        flips.add(sample.flip)
    assert len(shorts) >= 4 and flips == {True, False}

    test = DATASETS.build(dict(cfg.test_dataloader.dataset,
                               data_root=mini_cityscapes,
                               ann_file=mini_coco['polygon']['val']))
    for out in (test[i] for i in range(len(test))):
        sample = out['data_samples']
        assert sample.img_shape == sample.ori_shape == (1024, 2048)
        assert sample.scale_factor == (1.0, 1.0)
        np.testing.assert_array_equal(out['inputs'].numpy().transpose(
            1, 2, 0), cv2.imread(sample.img_path))
