"""citymask's evaluator against cityscapesscripts' on small frames, every
number equal, in several regimes; in process and small enough to run for
every mutant (``tools/analysis_tools/mutation.sh evaluator``)."""
import os.path as osp

import numpy as np
import pytest

from citymask.classes import INSTANCE_ID_FACTOR, LABEL_IDS, VOID_IDS
from citymask.errors import CitymaskError
from citymask.evaluation import evaluate
from citymask.evaluation.cityscapes_instance import (format_table, match_image,
                                                     read_gt)
from citymask.evaluation.crops import crop_masks
from citymask.evaluation.results_format import find_gt_files
from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.testing.predictions import make_predictions
from .conftest import assert_same, official, write_results


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    """6 frames at 512x256, 2 of them without things."""
    root = str(tmp_path_factory.mktemp('small_evalset'))
    make_mini_cityscapes(root, dict(val=6), width=512, height=256, seed=4,
                         empty_every=3)
    return find_gt_files(osp.join(root, 'gtFine', 'val'))


def _things(gt):
    return [i for i in np.unique(gt) if i >= INSTANCE_ID_FACTOR
            and i // INSTANCE_ID_FACTOR in LABEL_IDS]


def _same_as_official(tmp_path, gt_files, make):
    tasks = write_results(str(tmp_path / 'results'), gt_files, make)
    theirs = official(gt_files, str(tmp_path / 'results'),
                      str(tmp_path / 'official'))
    ours = evaluate(tasks)
    assert_same(ours, theirs)
    return ours


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_mixed_predictions(small_set, tmp_path, seed):
    rng = np.random.default_rng(seed)
    ours = _same_as_official(
        tmp_path, small_set,
        lambda gt, k: make_predictions(gt, rng, n_false=10))
    assert 0.0 < ours['averages']['allAp'] < 1.0


def _shifted(gt, rng, tied):
    """Each thing predicted shifted by 0-6 px (IoU across the 10
    thresholds), some twice; scores tied or spread."""
    labels, scores, masks = [], [], []
    for i in _things(gt):
        for dx in ([0, 4] if rng.random() < 0.3 else [int(rng.integers(7))]):
            labels.append(int(i // INSTANCE_ID_FACTOR))
            scores.append(0.5 if tied else float(rng.random()))
            masks.append(np.roll(gt == i, dx, axis=1))
    return labels, scores, masks


@pytest.mark.parametrize('tied', [True, False])
def test_overlap_thresholds_duplicates_and_ties(small_set, tmp_path, tied):
    rng = np.random.default_rng(7)
    ours = _same_as_official(
        tmp_path, small_set,
        lambda gt, k: ([], [], []) if k == 1 else _shifted(gt, rng, tied))
    ap = np.array(ours['resultApMatrix'])[0]
    # the shifts reach across thresholds: AP falls from 0.5 to 0.95 IoU
    assert np.nanmax(ap[:, 0] - ap[:, -1]) > 0.1


def test_perfect_predictions(small_set, tmp_path):
    def perfect(gt, k):
        ids = _things(gt)
        return ([int(i // INSTANCE_ID_FACTOR) for i in ids],
                [0.5 + 0.01 * j for j in range(len(ids))],
                [gt == i for i in ids])

    ours = _same_as_official(tmp_path, small_set, perfect)
    for c in ours['averages']['classes'].values():
        for key in ('ap', 'ap50%'):
            assert np.isnan(c[key]) or c[key] == pytest.approx(1, abs=1e-12)


def test_predictions_on_void_and_groups_are_ignored(small_set, tmp_path):
    # masks mostly on void or on a group region of their label are not
    # false positives; the same masks moved to background are
    rng = np.random.default_rng(3)

    def ignorable(gt, k):
        labels, scores, masks = [], [], []
        for i in _things(gt):
            labels.append(int(i // INSTANCE_ID_FACTOR))
            scores.append(0.4)
            masks.append(gt == i)
        void = np.isin(gt, VOID_IDS)
        for lab in LABEL_IDS:
            group = gt == lab
            if group.any():
                labels.append(lab)
                scores.append(0.9)
                masks.append(group)
        if void.any():
            labels.append(int(rng.choice(LABEL_IDS)))
            scores.append(0.95)
            masks.append(void)
        return labels, scores, masks

    _same_as_official(tmp_path, small_set, ignorable)


def test_match_image_counts():
    gt = np.full((20, 30), 7, np.uint16)  # road: neither void nor a thing
    gt[2:12, 2:12] = 26000  # a car, 100 px
    gt[2:12, 15:20] = 26001  # another, 50 px (below the minimum size)
    gt[15:20, :] = VOID_IDS[0]
    gt[0:2, 20:30] = 26  # a car group
    pred = np.zeros((3, 20, 30), bool)
    pred[0, 2:12, 2:17] = True  # the first car and 20 px of the second
    pred[1, 10:20, 0:5] = True  # half on void
    pred[2, 0:4, 20:30] = True  # over the group
    out = match_image(gt, [26, 24, 26], [0.9, 0.8, 0.7],
                      crop_masks(pred) + [None])
    assert out['gt'].tolist() == [[26, 26, 20], [26000, 26, 100],
                                  [26001, 26, 50]]
    assert out['pred'] == [(26, 0.9, 150, 0), (24, 0.8, 50, 25),
                           (26, 0.7, 40, 0)]
    assert sorted(out['inter']) == [(0, 1, 100), (0, 2, 20), (2, 0, 20)]
    # unknown and not-evaluated labels, and empty masks, are left out
    skipped = match_image(gt, [99, 29, 26], [0.5] * 3,
                          crop_masks(pred[:2]) + [None])
    assert skipped['pred'] == [] and skipped['inter'] == []


def test_read_gt_and_errors(tmp_path):
    import cv2
    path = str(tmp_path / 'x_gtFine_instanceIds.png')
    gt = np.zeros((6, 8), np.uint16)
    gt[1:3, 1:4] = 33001
    cv2.imwrite(path, gt)
    np.testing.assert_array_equal(read_gt(path), gt)
    assert read_gt(path).dtype == np.uint16
    cv2.imwrite(path, np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(CitymaskError) as e:
        read_gt(path)
    assert str(e.value) == (f'{path}: expected a single-channel instance '
                            'id image, got shape (6, 8, 3)')
    with open(path, 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(CitymaskError, match=f'cannot read ground truth '
                       f'{path}: '):
        read_gt(path)
    with pytest.raises(CitymaskError) as e:
        match_image(np.full((2, 2), -1), [], [], [])
    assert str(e.value) == 'ground truth: instance ids must be 0..65535'


def test_format_table():
    result = dict(averages=dict(
        allAp=0.25, **{'allAp50%': 0.5},
        classes={name: dict(ap=k / 10, **{'ap50%': k / 8})
                 for k, name in enumerate(
                     ['person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle'])}))
    rows = [[c.strip() for c in line.strip('|').split('|')]
            for line in format_table(result).splitlines()
            if line.startswith('|')]
    assert rows == [['class', 'AP', 'AP50'], ['person', '0.0', '0.0'],
                    ['rider', '10.0', '12.5'], ['car', '20.0', '25.0'],
                    ['truck', '30.0', '37.5'], ['bus', '40.0', '50.0'],
                    ['train', '50.0', '62.5'],
                    ['motorcycle', '60.0', '75.0'],
                    ['bicycle', '70.0', '87.5'], ['average', '25.0', '50.0']]


def test_format_table_with_distances():
    names = ['person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
             'bicycle']
    keys = ('ap', 'ap50%', 'ap100m', 'ap50m', 'ap50%50m')
    avg = {'allAp': 0.25, 'allAp50%': 0.5, 'allAp100m': 0.125,
           'allAp50m': 0.375, 'allAp50%50m': 0.625,
           'classes': {n: {key: (k + j) / 100 for j, key in enumerate(keys)}
                       for k, n in enumerate(names)}}
    lines = format_table(dict(averages=avg)).splitlines()
    rows = [[c.strip() for c in line.strip('|').split('|')]
            for line in lines if line.startswith('|')]
    assert rows[0] == ['class', 'AP', 'AP50', 'AP 100m*', 'AP 50m*',
                       'AP50 50m*']
    assert rows[2] == ['rider', '1.0', '2.0', '3.0', '4.0', '5.0']
    assert rows[-1] == ['average', '25.0', '50.0', '12.5', '37.5', '62.5']
    # the averages are a footing, under a border of their own
    assert lines[-4].startswith('+-') and lines[-3].startswith('| average')
    assert lines[-1] == ('* unofficial: distances from disparity/ and '
                         'camera/ as citymask fills them (the public '
                         'evaluator never does)')
