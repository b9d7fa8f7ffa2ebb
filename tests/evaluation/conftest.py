import os.path as osp

import numpy as np
import pytest

from citymask.classes import CLASSES, LABEL_IDS
from citymask.evaluation.crops import crop_masks
from citymask.evaluation.mask_png import read_gt
from citymask.evaluation.results_format import find_gt_files, write_frame
from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.testing.official import run_official

NAMES = {**dict(zip(LABEL_IDS, CLASSES)), 29: 'caravan'}


def official(gt_files, results_dir, work):
    return run_official(gt_files, results_dir, work)


def assert_same(ours, theirs):
    a = np.array(ours['resultApMatrix'])
    b = np.array(theirs['resultApMatrix'])
    assert a.shape == b.shape == (1, 8, 10)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, equal_nan=True)
    for key in ('allAp', 'allAp50%'):
        assert ours['averages'][key] == pytest.approx(
            theirs['averages'][key], abs=1e-12, nan_ok=True)
    for name in CLASSES:
        for key in ('ap', 'ap50%'):
            assert ours['averages']['classes'][name][key] == pytest.approx(
                theirs['averages']['classes'][name][key], abs=1e-12,
                nan_ok=True)
    assert ours['instLabels'] == theirs['instLabels']
    # the rest of the official JSON: same keys, same settings
    assert set(ours) == set(theirs)
    assert set(ours['averages']) == set(theirs['averages'])
    for key in ('overlaps', 'minRegionSizes', 'distanceThresholds',
                'minStereoDensities'):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    for name in CLASSES:
        assert set(ours['averages']['classes'][name]) == set(
            theirs['averages']['classes'][name])


@pytest.fixture(scope='session')
def eval_set(tmp_path_factory):
    """A val-like set at 1024x512: 8 frames, 2 of them without things."""
    root = str(tmp_path_factory.mktemp('evalset'))
    make_mini_cityscapes(root, dict(val=8), width=1024, height=512, seed=3,
                         empty_every=4)
    return root, find_gt_files(osp.join(root, 'gtFine', 'val'))


def write_results(folder, gt_files, make):
    """Predictions by ``make(gt, k) -> (labels, scores, masks)`` written in
    the official format; returns the in-memory tasks too."""
    tasks = []
    for k, g in enumerate(gt_files):
        gt = read_gt(g)
        labels, scores, masks = make(gt, k)
        crops = crop_masks(np.stack(masks)) if masks else []
        write_frame(folder, g.replace('gtFine_instanceIds', 'leftImg8bit'),
                    gt.shape, labels, scores, crops, NAMES)
        tasks.append((g, labels, scores, crops))
    return tasks
