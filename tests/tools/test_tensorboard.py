"""tools/train.py --tensorboard, read back with TensorBoard's own event
reader: loss curves, every metric, validation images with predictions."""
import glob
import io
import json
import os.path as osp

import numpy as np
import pytest
from mmdet.datasets import CityscapesDataset
from PIL import Image

from citymask.runner_setup import use_tensorboard
from citymask.visualization import read_scalars
from ..conftest import CONFIGS, run_tool
from .conftest import CFG, error, ok

ITERS = 2


def test_scalars_metrics_and_validation_images(mini_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    root, data = mini_data
    work = str(tmp_path / 'work')
    ok(run_tool(
        'tools/train.py', CFG, '--work-dir', work, '--tensorboard',
        '--cfg-options', f'data_root={data}',
        f'load_from={osp.join(root, "standin_cs.pth")}',
        f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
        'default_hooks.logger.interval=1',
        # 3 validation images, every 2nd drawn with all its predictions
        'val_dataloader.dataset.indices=3',
        'default_hooks.visualization.interval=2',
        'default_hooks.visualization.score_thr=0.0', 'randomness.seed=0'))
    folder, = glob.glob(osp.join(work, '*', 'vis_data'))
    assert glob.glob(osp.join(folder, 'events.out.tfevents.*'))
    acc = EventAccumulator(folder, size_guidance={'scalars': 0, 'images': 0})
    acc.Reload()
    tags = set(acc.Tags()['scalars'])
    want = {'loss', 'loss_mask', 'lr', 'cityscapes/mAP', 'cityscapes/AP@50',
            'coco/segm_mAP'}
    want |= {f'cityscapes/{c}_{k}' for k in ('AP', 'AP50')
             for c in CityscapesDataset.METAINFO['classes']}
    assert want <= tags, want - tags
    # one loss point per iteration, the values mmengine logged locally
    assert [e.step for e in acc.Scalars('loss')] == list(range(1, ITERS + 1))
    compared = 0
    for record in read_scalars(work):
        for key, value in record.items():
            # time, data_time: logged by training and validation at one step
            if key in tags and key not in ('time', 'data_time'):
                tb = {e.step: e.value for e in acc.Scalars(key)}
                assert tb[record['step']] == pytest.approx(
                    value, rel=1e-6, nan_ok=True), key
                compared += 1
    assert compared >= len(want)

    images = acc.Images('val_img')
    # drawn at val batches 0 and 2 (steps ITERS + 0, ITERS + 2)
    assert [e.step for e in images] == [ITERS, ITERS + 2]
    with open(osp.join(data, 'annotations',
                       'instancesonly_filtered_gtFine_val.json')) as f:
        files = [im['file_name'] for im in json.load(f)['images']]
    for e in images:
        drawn = np.asarray(Image.open(io.BytesIO(e.encoded_image_string))
                           .convert('RGB'))
        # the same picture mmengine's local backend saved
        local, = glob.glob(osp.join(work, '*', 'vis_data', 'vis_image',
                                    f'val_img_{e.step}.png'))
        np.testing.assert_array_equal(
            drawn, np.asarray(Image.open(local).convert('RGB')))
        # the val image of that step | the same with predictions drawn
        raw = np.asarray(Image.open(osp.join(
            data, 'leftImg8bit', 'val', files[e.step - ITERS])).convert('RGB'))
        h, w = raw.shape[:2]
        assert drawn.shape == (h, 2 * w, 3)
        np.testing.assert_array_equal(drawn[:, :w], raw)
        assert (drawn[:, w:] != raw).any(2).mean() > 0.01, 'nothing drawn'


def test_use_tensorboard_config(monkeypatch):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CONFIGS, 'mini',
                                   'maskrcnn_r18_fpn_mini_cityscapes.py'))
    use_tensorboard(cfg)
    use_tensorboard(cfg)  # twice: still one TensorBoard backend
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', 'TensorboardVisBackend']
    assert cfg.default_hooks.visualization.draw is True
    import importlib.util
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    assert 'requirements/tensorboard.txt' in error(use_tensorboard, cfg)
