import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from cityscapesscripts.evaluation.instances2dict import instances2dict
from PIL import Image

from citymask.classes import CLASSES, INSTANCE_ID_FACTOR, LABEL_IDS
from citymask.evaluation import evaluate
from citymask.evaluation.crops import crop_masks
from citymask.evaluation.mask_png import read_gt
from citymask.evaluation.results_format import (find_gt_files, read_results,
                                                write_frame)
from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.testing.official import run_official

NAMES = {**dict(zip(LABEL_IDS, CLASSES)), 29: 'caravan'}
official = run_official  # the name tests/evaluation/metrics/ import


def assert_same(ours, theirs, settings=1):
    """Two official result JSONs agree to 1e-12: every number (NaN where
    NaN), key and setting."""
    a = np.array(ours['resultApMatrix'])
    b = np.array(theirs['resultApMatrix'])
    assert a.shape == b.shape == (settings, 8, 10)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, equal_nan=True)
    # and citymask's note that distances are unofficial
    assert set(ours) == set(theirs) | ({'note'} if settings > 1 else set())
    assert set(ours['averages']) == set(theirs['averages'])
    for key in set(theirs['averages']) - {'classes'}:
        assert ours['averages'][key] == pytest.approx(
            theirs['averages'][key], abs=1e-12, nan_ok=True), key
    assert ours['instLabels'] == theirs['instLabels'] == list(CLASSES)
    for name in CLASSES:
        c, want = (r['averages']['classes'][name] for r in (ours, theirs))
        assert set(c) == set(want)
        assert c == pytest.approx(want, abs=1e-12, nan_ok=True), name
    for key in ('overlaps', 'minRegionSizes', 'distanceThresholds',
                'minStereoDensities'):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@pytest.fixture(scope='session')
def eval_set(tmp_path_factory):
    """A val-like set at 1024x512: 8 frames, 2 of them without things."""
    root = str(tmp_path_factory.mktemp('evalset'))
    make_mini_cityscapes(root, dict(val=8), width=1024, height=512, seed=3,
                         empty_every=4)
    return root, find_gt_files(osp.join(root, 'gtFine', 'val'))


def write_results(folder, gt_files, make):
    """Predictions by ``make(gt, k) -> (labels, scores, masks)`` written in
    the official format (unless ``folder`` is None); returns the in-memory
    tasks too."""
    tasks = []
    for k, g in enumerate(gt_files):
        gt = read_gt(g)
        labels, scores, masks = make(gt, k)
        crops = crop_masks(np.stack(masks)) if masks else []
        if folder is not None:
            write_frame(folder, g.replace('gtFine_instanceIds', 'leftImg8bit'),
                        gt.shape, labels, scores, crops, NAMES)
        tasks.append((g, labels, scores, crops))
    return tasks


def same_as_official(tmp_path, gt_files, make, nproc=1, gt_instances=None):
    """citymask's result on ``make``'s predictions (memory and PNGs), equal
    to the official one; with ``gt_instances`` (distances filled) distance
    settings too."""
    folder = str(tmp_path / 'results')
    tasks = write_results(folder, gt_files, make)
    distance = gt_instances is not None
    theirs = run_official(gt_files, folder, str(tmp_path / 'official'),
                          gt_instances=gt_instances, distance=distance)
    from_pngs, missing = read_results(gt_files, folder)
    assert not missing
    results = [evaluate(tasks, nproc=nproc, distance=distance),
               evaluate(from_pngs, nproc=1, distance=distance)]
    for ours in results:
        assert_same(ours, theirs, settings=3 if distance else 1)
    return results[0]


def run_metric(metric, samples):
    """``metric`` fed ``samples`` one at a time, then evaluated."""
    metric.dataset_meta = dict(classes=CLASSES)
    for s in samples:
        metric.process({}, [s])
    return metric.evaluate(len(samples))


def things(gt):
    """The instance ids of the evaluated classes in ``gt``."""
    return [i for i in np.unique(gt) if i >= INSTANCE_ID_FACTOR
            and i // INSTANCE_ID_FACTOR in LABEL_IDS]


def perfect(gt, k):
    """Each evaluated instance predicted exactly, scores all different."""
    ids = things(gt)
    return ([int(i // INSTANCE_ID_FACTOR) for i in ids],
            [0.5 + 0.001 * j for j in range(len(ids))],
            [gt == i for i in ids])


def box(shape, y0, y1, x0, x1):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def write_gt(root, frames):
    """Hand-made ground truth as ``gtFine/val/frankfurt`` files (sorted
    paths), named as the official script pairs them with predictions."""
    folder = osp.join(str(root), 'gtFine', 'val', 'frankfurt')
    os.makedirs(folder, exist_ok=True)
    paths = [osp.join(folder, f'frankfurt_000000_{k:06d}_gtFine_instanceIds'
                      '.png') for k in range(len(frames))]
    for path, gt in zip(paths, frames):
        cv2.imwrite(path, gt.astype(np.uint16))
    return paths


def reference_distances(gt_path):
    """{instance id: (medDist, distConf)} by the README's rule, computed
    with numpy on PIL-decoded files (not citymask's code)."""
    disp_path, cam_path = (gt_path.replace('/gtFine/', f'/{d}/').replace(
        '_gtFine_instanceIds.png', f'_{d}.{ext}')
        for d, ext in (('disparity', 'png'), ('camera', 'json')))
    inst = np.array(Image.open(gt_path))
    p = np.array(Image.open(disp_path)).astype(np.float64)
    with open(cam_path) as f:
        cam = json.load(f)
    with np.errstate(divide='ignore'):
        depth = (cam['extrinsic']['baseline'] * cam['intrinsic']['fx'] /
                 ((p - 1) / 256.))
    out = {}
    for i in np.unique(inst):
        pixels = inst == i
        valid = pixels & (p > 0)
        out[int(i)] = ((float(np.median(depth[valid])),
                        float(valid.sum() / pixels.sum()))
                       if valid.any() else (-1.0, 0.0))
    return out


def filled_gt_instances(gt_files):
    """The official evaluator's own ground-truth cache (instances2dict)
    with medDist / distConf filled in."""
    gt = instances2dict(list(gt_files))
    for path, labels in gt.items():
        dist = reference_distances(path)
        for items in labels.values():
            for it in items:
                it['medDist'], it['distConf'] = dist[it['instID']]
    return gt
