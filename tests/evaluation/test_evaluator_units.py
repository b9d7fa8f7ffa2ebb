"""The evaluator vs cityscapesscripts' on small frames, every number equal;
small enough for every mutant (``mutation.sh evaluator``)."""
import json
import os
import os.path as osp
import shutil
import warnings
from unittest import mock

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from citymask.classes import CLASSES, INSTANCE_ID_FACTOR, LABEL_IDS, VOID_IDS
from citymask.evaluation import evaluate
from citymask.evaluation.cityscapes_instance import (evaluate_matches,
                                                     format_table,
                                                     match_frames, match_image,
                                                     summarize)
from citymask.evaluation.crops import crop_masks, encode_crop
from citymask.evaluation.mask_png import as_uint16, read_gt
from citymask.evaluation.results_format import find_gt_files
from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.testing.official import run_official
from citymask.testing.predictions import make_predictions
from ..tools.conftest import error
from .conftest import (assert_same, box, filled_gt_instances, perfect,
                       same_as_official, things, write_gt, write_results)


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    """6 frames at 512x256, 2 of them without things."""
    root = str(tmp_path_factory.mktemp('small_evalset'))
    make_mini_cityscapes(root, dict(val=6), width=512, height=256, seed=4,
                         empty_every=3)
    return find_gt_files(osp.join(root, 'gtFine', 'val'))


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_mixed_predictions(small_set, tmp_path, seed):
    rng = np.random.default_rng(seed)
    ours = same_as_official(tmp_path, small_set, lambda gt, k: (
        make_predictions(gt, rng, n_false=10)))
    assert 0.0 < ours['averages']['allAp'] < 1.0


def _shifted(gt, rng, tied):
    """Each thing predicted shifted by 0-6 px (IoU across the 10
    thresholds), some twice; scores tied or spread."""
    labels, scores, masks = [], [], []
    for i in things(gt):
        for dx in ([0, 4] if rng.random() < 0.3 else [int(rng.integers(7))]):
            labels.append(int(i // INSTANCE_ID_FACTOR))
            scores.append(0.5 if tied else float(rng.random()))
            masks.append(np.roll(gt == i, dx, axis=1))
    return labels, scores, masks


@pytest.mark.parametrize('tied', [True, False])
def test_overlap_thresholds_duplicates_and_ties(small_set, tmp_path, tied):
    # a frame without predictions too
    rng = np.random.default_rng(7)
    ours = same_as_official(
        tmp_path, small_set,
        lambda gt, k: ([], [], []) if k == 1 else _shifted(gt, rng, tied),
        nproc=2)
    ap = np.array(ours['resultApMatrix'])[0]
    # the shifts reach across thresholds: AP falls from 0.5 to 0.95 IoU
    assert np.nanmax(ap[:, 0] - ap[:, -1]) > 0.1


@pytest.mark.parametrize('distance', [False, True])
def test_format_table(distance):
    keys = ('ap', 'ap50%') + (('ap100m', 'ap50m', 'ap50%50m') * distance)
    avg = {'allAp': 0.25, 'allAp50%': 0.5, 'classes': {
        n: {key: (k + j) / 100 for j, key in enumerate(keys)}
        for k, n in enumerate(CLASSES)}}
    if distance:
        avg.update({'allAp100m': 0.125, 'allAp50m': 0.375,
                    'allAp50%50m': 0.625})
    lines = format_table(dict(averages=avg)).splitlines()
    rows = [[c.strip() for c in line.strip('|').split('|')]
            for line in lines if line.startswith('|')]
    assert rows[0] == ['class', 'AP', 'AP50'] + [
        'AP 100m*', 'AP 50m*', 'AP50 50m*'] * distance
    assert rows[1:-1] == [[n] + [f'{k + j}.0' for j in range(len(keys))]
                          for k, n in enumerate(CLASSES)]
    assert rows[-1] == ['average', '25.0', '50.0'] + [
        '12.5', '37.5', '62.5'] * distance
    # the averages are a footing, under a border of their own
    assert lines[-3 - distance].startswith('+-')
    assert lines[-2 - distance].startswith('| average')
    assert (lines[-1] == ('* unofficial: distances from disparity/ and '
                          'camera/ as citymask fills them (the public '
                          'evaluator never does)')) == distance


# --- hand-made frames: the rules' boundaries, against the official script


def test_rule_boundaries_same_as_official(tmp_path):
    """Each rule where ``<`` and ``<=`` differ: an instance of 100 px
    (kept), IoU 0.5 (no match at 0.5: a FP), an unmatched prediction half
    on void (a FP at 0.5); classes without ground truth are NaN."""
    gt = np.full((64, 96), 7, np.uint16)  # road
    gt[2:12, 2:12] = 26000  # car, 100 px: kept (size >= 100)
    gt[2:12, 20:30] = 24000  # person, 100 px
    gt[20:30, 2:12] = 25000  # rider, 100 px
    gt[40:45, 0:20] = 4  # static: void
    gt[50:60, 40:60] = 26  # a car group
    gt[20:29, 40:51] = 26001  # car, 99 px: ignored (size < 100)
    gt[30:40, 60:70] = 33000  # bicycle, 100 px
    s = gt.shape
    preds = [
        (26, 0.8, box(s, 2, 12, 2, 12)),  # the car, exactly
        (24, 0.6, box(s, 2, 12, 20, 40)),  # person + 100 px: IoU 0.5
        (25, 0.5, box(s, 20, 30, 2, 12)),  # the rider, exactly
        (25, 0.9, box(s, 40, 50, 2, 12)),  # 50 px void, 50 px road
        (26, 0.95, box(s, 50, 60, 40, 60)),  # the group: ignored
        (26, 0.7, box(s, 20, 29, 40, 51)),  # the small car: ignored
        (31, 0.7, box(s, 30, 35, 60, 80)),  # a train: no train GT
        (33, 0.5, box(s, 30, 40, 60, 70)),  # the bicycle, exactly
        (33, 0.9, box(s, 30, 40, 60, 80)),  # bicycle + 100 px: IoU 0.5
    ]
    gt_files = write_gt(tmp_path / 'cs', [gt])
    ours = same_as_official(tmp_path, gt_files,
                            lambda gt, k: tuple(map(list, zip(*preds))))
    ap = dict(zip(CLASSES, np.array(ours['resultApMatrix'])[0]))
    assert ap['car'].tolist() == [1.0] * 10
    # IoU 0.5 is no match at 0.5 ("> threshold"): a miss and a FP
    assert ap['person'].tolist() == [0.0] * 10
    # the half-void prediction (ignored share 0.5 <= 0.5) is a FP that
    # outscores the rider: precision 1/2 at recall 1, AP 1/4
    assert ap['rider'].tolist() == [0.25] * 10
    # a prediction of IoU exactly 0.5 with its only GT, which another
    # prediction matches: a FP at 0.5 too
    assert ap['bicycle'].tolist() == [0.25] * 10
    for name in ('truck', 'bus', 'train', 'motorcycle'):
        assert np.isnan(ap[name]).all(), name


def _stereo_frame():
    """A frame whose instances sit exactly on the distance settings'
    limits (baseline * fx = 500: disparity value p is 500 * 256 / (p - 1)
    metres), with ``{instance id: (medDist, distConf)}``."""
    gt = np.full((64, 128), 7, np.uint16)
    disparity = np.zeros(gt.shape, np.uint16)
    gt[0:20, 0:50] = 26000  # car: 1000 px at exactly 50 m
    disparity[0:20, 0:50] = 2561
    gt[20:40, 0:50] = 28000  # bus: 1000 px at exactly 100 m, half measured
    disparity[20:30, 0:50] = 1281
    gt[40:60, 0:50] = 24000  # person: 999 px at 40 m
    gt[59, 49] = 7
    disparity[40:60, 0:50] = 3201
    gt[0:20, 60:110] = 27000  # truck: 1000 px at 50 m, 499 px measured
    truck = np.zeros(1000, np.uint16)
    truck[:499] = 2561
    disparity[0:20, 60:110] = truck.reshape(20, 50)
    dist = {26000: (50.0, 1.0), 28000: (100.0, 0.5), 24000: (40.0, 1.0),
            27000: (50.0, 0.499)}
    return gt, disparity, dist


def test_distance_limits_same_as_official(tmp_path):
    """Distance-aware AP at the settings' limits (1000 pixels, 100 m / 50 m,
    distConf 0.5: all kept), vs the official script given the same
    medDist / distConf; and the stereo files found under another root."""
    gt, disparity, dist = _stereo_frame()
    root = tmp_path / 'cs'
    (gt_file,) = write_gt(root, [gt])
    stem = osp.basename(gt_file).replace('_gtFine_instanceIds.png', '')
    for sub in ('disparity', 'camera'):
        os.makedirs(root / sub / 'val' / 'frankfurt')
    cv2.imwrite(str(root / 'disparity' / 'val' / 'frankfurt' /
                    f'{stem}_disparity.png'), disparity)
    with open(root / 'camera' / 'val' / 'frankfurt' /
              f'{stem}_camera.json', 'w') as f:
        json.dump(dict(extrinsic=dict(baseline=0.25),
                       intrinsic=dict(fx=2000.0)), f)
    tasks = write_results(str(tmp_path / 'results'), [gt_file], perfect)

    # the distances match_image gives, from the files
    (m,) = match_frames(tasks, distance=True)
    got = {int(i): tuple(d) for i, d in zip(m['gt'][:, 0], m['dist'])}
    assert got == {i: pytest.approx(d, abs=1e-12) for i, d in dist.items()}

    theirs = run_official([gt_file], str(tmp_path / 'results'),
                          str(tmp_path / 'official'), distance=True,
                          gt_instances=filled_gt_instances([gt_file]))
    ours = evaluate(tasks, distance=True)
    assert_same(ours, theirs, settings=3)
    a, b = (np.array(r['resultApMatrix']) for r in (ours, theirs))
    np.testing.assert_array_equal(a, b)  # NaN where NaN, else equal
    ap = {name: a[:, i, 0].tolist() for i, name in enumerate(CLASSES)}
    # car at 50 m and bus at 100 m (distConf 0.5) on the limits: kept;
    # the 999-pixel person and the truck (distConf 0.499) only in the first
    assert ap['car'] == [1.0, 1.0, 1.0]
    assert ap['bus'][:2] == [1.0, 1.0] and np.isnan(ap['bus'][2])
    assert ap['person'][0] == 1.0 and np.isnan(ap['person'][1:]).all()
    assert ap['truck'][0] == 1.0 and np.isnan(ap['truck'][1:]).all()
    assert np.isnan(ap['rider']).all()

    # the same stereo files under another root; none under a third
    other = tmp_path / 'stereo'
    for sub in ('disparity', 'camera'):
        shutil.copytree(root / sub, other / sub)
        shutil.rmtree(root / sub)
    moved = evaluate(tasks, distance=True, stereo_root=str(other))
    np.testing.assert_array_equal(np.array(moved['resultApMatrix']), a)
    assert error(evaluate, tasks, distance=True).startswith(
        str(root / 'disparity' / 'val' / 'frankfurt' / stem) +
        '_disparity.png not found')


# --- match_image against a plain numpy recount


def _recount(gt, label_ids, scores, masks):
    """match_image's output from boolean masks: the evaluated regions; per
    kept prediction size, void pixels, overlaps (``inter``, ``xinter``)."""
    ids, counts = np.unique(gt, return_counts=True)
    labels = np.where(ids >= INSTANCE_ID_FACTOR, ids // INSTANCE_ID_FACTOR,
                      ids)
    rows = [[int(i), int(lab), int(c)]
            for i, lab, c in zip(ids, labels, counts) if lab in LABEL_IDS]
    void = np.isin(gt, VOID_IDS)
    preds, inter, xinter = [], [], []
    for label, score, mask in zip(label_ids, scores, masks):
        if label not in LABEL_IDS or not mask.any():
            continue
        p = len(preds)
        preds.append((label, score, int(mask.sum()), int((mask & void).sum())))
        for g, (i, lab, _) in enumerate(rows):
            k = int((mask & (gt == i)).sum())
            if k:
                (inter if lab == label else xinter).append((p, g, k))
    return rows, preds, inter, xinter


@pytest.mark.parametrize('n', [254, 255, 300])
def test_match_image_many_instances(n):
    """Frames of 254 (8-bit region codes), 255 and 300 evaluated regions
    (16-bit codes): the same as a numpy recount."""
    rng = np.random.default_rng(n)
    gt = np.full((48, 80), 7, np.uint16)  # road
    gt[40:44] = VOID_IDS[1]
    for k in range(n):  # 2x2 regions of every class, some groups
        label = LABEL_IDS[k % len(LABEL_IDS)]
        inst = label if k < 8 else label * INSTANCE_ID_FACTOR + k
        y, x = 2 * (k // 40), 2 * (k % 40)
        gt[y:y + 2, x:x + 2] = inst
    label_ids = [int(rng.choice(LABEL_IDS)) for _ in range(6)] + [29]
    scores = rng.random(len(label_ids)).tolist()
    masks = rng.random((len(label_ids),) + gt.shape) < 0.3
    masks[0] = True  # every region, void and road
    rows, preds, inter, xinter = _recount(gt, label_ids, scores, masks)
    assert len(rows) == n
    out = match_image(gt, label_ids, scores, crop_masks(masks),
                      cross_labels=True)
    assert out['gt'].dtype == np.int64 and out['gt'].tolist() == rows
    assert out['pred'] == preds
    assert out['inter'] == inter and out['xinter'] == xinter
    assert len(xinter) > len(inter) > n // 8
    plain = match_image(gt, label_ids, scores, crop_masks(masks))
    assert sorted(plain) == ['gt', 'inter', 'pred']  # xinter on request
    assert plain['inter'] == inter


def test_match_image_masks_and_ids():
    """Masks reaching out on one side only are refused, an empty crop is
    skipped like None, ids of any integer type in 0..65535 are read; a
    disparity of another size is refused."""
    gt = np.full((20, 30), 7, np.int32)
    gt[0, 0], gt[0, 1] = 0, 65535  # the id range's ends
    gt[2:12, 2:12] = 26000
    ones = np.ones((2, 10), bool)
    for crop, reach in ((encode_crop(ones, 25, 10), (35, 12)),
                        (encode_crop(ones.T, 3, 15), (5, 25))):
        assert error(match_image, gt, [26], [0.5], [crop]) == (
            f'a predicted mask reaches {reach}, outside the 30x20 ground '
            'truth: masks must have the size of the original image')
    empty = (4, 4, mask_utils.encode(np.zeros((3, 3), np.uint8, order='F')))
    car = encode_crop(np.ones((10, 10), bool), 2, 2)
    out = match_image(gt, [26, 26], [0.4, 0.6], [empty, car])
    assert out['pred'] == [(26, 0.6, 100, 0)]
    assert out['inter'] == [(0, 0, 100)]
    # int32 ids give what their uint16 copy gives
    same = match_image(gt.astype(np.uint16), [26, 26], [0.4, 0.6],
                       [empty, car])
    assert out['gt'].tolist() == same['gt'].tolist() == [[26000, 26, 100]]
    for bad in (-1, 65536):
        gt[0, 1] = bad
        assert error(match_image, gt, [], [], []) == (
            'ground truth: instance ids must be 0..65535')
    empty_gt = as_uint16(np.zeros((0, 3), np.int64))
    assert empty_gt.dtype == np.uint16 and empty_gt.shape == (0, 3)
    gt[0, 1] = 7
    disparity = np.ones((20, 31), np.uint16)
    assert error(match_image, gt, [], [], [], stereo=(
        disparity, 0.2, 2000.)) == 'disparity is 31x20, the ground truth 30x20'
    out = match_image(gt, [], [], [],
                      stereo=(disparity[:, :30] * 1281, 0.25, 2000.))
    np.testing.assert_array_equal(out['dist'], [[100.0, 1.0]])


# --- match_frames: processes, options; evaluate_matches called directly


def _assert_same_matches(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_match_frames_processes(small_set, monkeypatch):
    """``nproc`` forked workers (no more than frames) for several frames,
    else in process; the same matches, cross labels on request; the AP of
    evaluate_matches called directly."""
    import citymask.evaluation.cityscapes_instance as ci
    rng = np.random.default_rng(11)
    tasks = write_results(None, small_set, lambda gt, k: make_predictions(
        gt, rng, n_false=4))
    want = [match_image(read_gt(g), labels, scores, crops)
            for g, labels, scores, crops in tasks]
    # pools mapping in this process (real ones: the official comparisons)
    ctx = mock.MagicMock()
    pool = ctx.Pool.return_value.__enter__.return_value
    pool.map.side_effect = lambda func, items, chunksize: list(
        map(func, items))
    get_context = mock.Mock(return_value=ctx)
    monkeypatch.setattr(ci.multiprocessing, 'get_context', get_context)
    # (nproc, frames, pool size or None: in process); nproc 1 by default
    for nproc, frames, size in ((None, 6, None), (1, 6, None), (2, 1, None),
                                (2, 2, 2), (4, 3, 3), (2, 6, 2), (2, 12, 2)):
        kwargs = {} if nproc is None else dict(nproc=nproc)
        got = ci.match_frames((tasks * 2)[:frames], **kwargs)
        _assert_same_matches(got, (want * 2)[:frames])
        if size is None:
            assert not ctx.Pool.called, (nproc, frames)
        else:
            get_context.assert_called_once_with('fork')
            ctx.Pool.assert_called_once_with(size)
            chunksize = pool.map.call_args.kwargs['chunksize']
            assert isinstance(chunksize, int) and chunksize >= 1
        get_context.reset_mock()
        ctx.Pool.reset_mock()
    result = ci.evaluate(tasks)  # nproc 1 by default here too
    assert not ctx.Pool.called
    # evaluate_matches of matches without stereo: the one setting, as
    # evaluate gives it; distance-aware AP refuses them
    ap = evaluate_matches(want)
    assert ap.shape == (1, 8, 10)
    np.testing.assert_array_equal(ap, np.array(result['resultApMatrix']))
    assert summarize(ap)['averages']['allAp'] == pytest.approx(np.nanmean(ap))
    assert error(evaluate_matches, want, distance=True) == (
        'distance-aware AP needs matches made with stereo '
        '(match_frames(..., distance=True))')

    crossed = [match_image(read_gt(g), labels, scores, crops,
                           cross_labels=True)
               for g, labels, scores, crops in tasks[:2]]
    assert all(m['xinter'] for m in crossed)
    for nproc in (1, 2):
        _assert_same_matches(ci.match_frames(
            tasks[:2], nproc=nproc, cross_labels=True), crossed)


def test_summarize_without_ground_truth():
    """No class with ground truth anywhere: NaN averages, as the official
    script's, without its "mean of empty slice" warnings."""
    for settings in (1, 3):
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            result = summarize(np.full((settings, 8, 10), np.nan))
        averages = result['averages']
        means = [v for k, v in averages.items() if k != 'classes']
        assert np.isnan(means).all()
        assert len(averages) == (3 if settings == 1 else 6)
