"""BatchChoiceResize + SeededBatchSampler: one size per batch, the recipe's
scale distribution, through mmengine's dataloader and its workers."""
import itertools
import os.path as osp
from collections import Counter

import numpy as np
from mmcv.transforms import RandomChoiceResize
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from scipy.stats import chisquare

import citymask.register  # noqa: F401
from citymask.datasets.samplers import SeededBatchSampler
from citymask.datasets.transforms.batch_choice_resize import BatchChoiceResize
from ...conftest import CONFIGS

MINI = osp.join(CONFIGS, 'mini', 'maskrcnn_r18_fpn_mini_cityscapes.py')
# the recipe's list (800..1024 step 32, 1024 twice) divided by 32
SCALES = [(w // 32, h // 32) for w, h in Config.fromfile(osp.join(
    CONFIGS, 'maskrcnn_r50_fpn_cityscapes.py')).train_scales]


def _resize(transform, idx):
    return transform(dict(img=np.zeros((2, 4, 3), np.uint8), img_shape=(2, 4),
                          sample_idx=idx))


def test_each_batch_one_scale_uniform_over_the_list():
    transform = BatchChoiceResize(SCALES, keep_ratio=True)
    sampler = SeededBatchSampler(InfiniteSampler(range(10), seed=0), 2)
    chosen = []
    for batch in itertools.islice(sampler, 1800):
        picks = {_resize(transform, i)['scale'] for i in batch}
        assert len(picks) == 1
        chosen += picks
    counts = Counter(chosen)
    # each entry 1/9 (the last value twice: 2/9), as RandomChoiceResize
    expected = {s: 1800 * SCALES.count(s) / len(SCALES) for s in counts}
    assert set(counts) == set(SCALES)
    # seeded: the same p every run; p < 0.001 would mean a skewed choice
    assert chisquare([counts[s] for s in expected],
                     list(expected.values())).pvalue > 1e-3


def test_without_a_batch_seed_it_is_random_choice_resize():
    ours, mmcv = BatchChoiceResize(SCALES), RandomChoiceResize(SCALES)
    np.random.seed(0)
    a = [_resize(ours, i)['scale'] for i in range(20)]
    np.random.seed(0)
    assert a == [_resize(mmcv, i)['scale'] for i in range(20)]
    assert len(set(a)) > 1


def test_dataloader_batches_share_a_size_with_workers(tmp_path):
    # the mini config's dataset on four generated 128x64 frames
    from citymask.datasets.cityscapes_converter import convert_cityscapes
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    root = str(tmp_path / 'cs')
    make_mini_cityscapes(root, dict(train=4), 128, 64, empty_every=0)
    cfg = Config.fromfile(MINI)
    dataset = dict(cfg.train_dataloader.dataset, data_root=root,
                   ann_file=convert_cityscapes(root, str(tmp_path), ['train'],
                                               progress=False)['train'])

    def shapes(pipeline, workers, **kwargs):
        init_default_scope('mmdet')
        loader = Runner.build_dataloader(
            dict(batch_size=3, num_workers=workers,
                 sampler=dict(type='InfiniteSampler'),
                 dataset=dict(dataset, pipeline=pipeline), **kwargs), seed=0)
        return [[tuple(x.shape) for x in batch['inputs']]
                for batch in itertools.islice(loader, 6)]

    seeded = dict(batch_sampler=dict(type='SeededBatchSampler'))
    batches = shapes(cfg.batch_scale_train_pipeline, 2, **seeded)
    allowed = {(3, s, 2 * s) for _, s in cfg.train_scales}
    assert all(len(set(b)) == 1 and b[0] in allowed for b in batches)
    assert len({b[0] for b in batches}) > 1  # a new scale per batch
    # the seeds travel with the indices: same batches without workers
    assert shapes(cfg.batch_scale_train_pipeline, 0, **seeded) == batches
    # mmdet's per-image choice mixes sizes in a batch (padding)
    assert any(len(set(b)) > 1 for b in shapes(cfg.train_pipeline, 0))
