"""AP 100m / 50m vs cityscapesscripts' evaluator with medDist / distConf from
an independent reference; the generator's stereo files vs its camera."""
import json
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from citymask.evaluation import evaluate
from citymask.evaluation.cityscapes_instance import (DISTANCE_THS,
                                                     MIN_REGION_SIZES)
from citymask.evaluation.distance import instance_distances, stereo_paths
from citymask.evaluation.results_format import find_gt_files, read_results
from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.testing.predictions import make_predictions, metric_samples
from citymask.testing.stereo import CAMERA_HEIGHT
from ..conftest import ok, run_tool
from ..tools.conftest import error, fails
from .conftest import (filled_gt_instances, run_metric, same_as_official,
                       write_results)


@pytest.fixture(scope='module')
def stereo_set(tmp_path_factory):
    """8 val frames at 1024x512 drawn from the Cityscapes statistics (things
    near and far), with their disparity/ and camera/ files."""
    root = str(tmp_path_factory.mktemp('stereo'))
    make_mini_cityscapes(root, dict(val=8), width=1024, height=512, seed=3,
                         empty_every=0, distribution='cityscapes')
    return root, find_gt_files(osp.join(root, 'gtFine', 'val'))


def test_distances_are_the_median_depth():
    rng, n = np.random.default_rng(0), 7
    codes = rng.integers(0, n + 2, size=(60, 80)).astype(np.uint8)
    codes[:, :4] = 3  # region 3: a larger block, 4 is left without stereo
    disparity = rng.integers(0, 3000, size=codes.shape).astype(np.uint16)
    disparity[5, 10:20] = 1  # d = 0: infinitely far
    disparity[codes == 4] = 0
    sizes = np.bincount(codes.ravel(), minlength=n + 2)[:n]
    got = instance_distances(codes, n, sizes, disparity, 0.2, 1000.)
    for g in range(n):
        sel = (codes == g) & (disparity > 0)
        if g == 4:
            assert tuple(got[g]) == (-1.0, 0.0)  # the official defaults
            continue
        with np.errstate(divide='ignore'):
            depth = 0.2 * 1000. / ((disparity[sel] - 1.) / 256.)
        assert got[g, 0] == np.median(depth)
        assert got[g, 1] == sel.sum() / (codes == g).sum()
    assert len({int(s) % 2 for s in sizes}) == 2  # odd and even counts


def test_same_as_official_with_filled_distances(stereo_set, tmp_path):
    _, gt_files = stereo_set
    filled = filled_gt_instances(gt_files)
    # every setting reached: near and far, some with too little stereo
    big = [it for labels in filled.values() for items in labels.values()
           for it in items
           if it['instID'] >= 1000 and it['pixelCount'] >= 1000]
    sure = [it['medDist'] for it in big if it['distConf'] >= 0.5]
    assert min(sure) <= 50 < max(sure) and any(d > 100 for d in sure)
    assert any(it['distConf'] < 0.5 for it in big)

    rng = np.random.default_rng(7)
    ours = same_as_official(tmp_path, gt_files, lambda gt, k: (
        make_predictions(gt, rng, n_false=12)), nproc=2, gt_instances=filled)
    assert ours['minRegionSizes'] == MIN_REGION_SIZES
    assert ours['distanceThresholds'] == DISTANCE_THS
    # the three settings really differ on this data
    a = np.nan_to_num(np.array(ours['resultApMatrix']), nan=-1)
    assert (a[0] != a[1]).any() and (a[1] != a[2]).any()
    assert 'unofficial' in ours['note']
    # without distance: the one setting, as before
    plain = evaluate(read_results(gt_files, str(tmp_path / 'results'))[0])
    np.testing.assert_array_equal(np.array(plain['resultApMatrix']),
                                  np.array(ours['resultApMatrix'])[:1])
    assert 'allAp100m' not in plain['averages'] and 'note' not in plain


def test_generated_stereo_follows_the_camera(stereo_set):
    root, gt_files = stereo_set
    for gt_path in gt_files[:3]:
        disp_path, cam_path = stereo_paths(gt_path)
        assert disp_path.startswith(osp.join(root, 'disparity', 'val'))
        with open(cam_path) as f:
            cam = json.load(f)
        fx, fy = cam['intrinsic']['fx'], cam['intrinsic']['fy']
        horizon = cam['intrinsic']['v0']
        baseline = cam['extrinsic']['baseline']
        p = np.array(Image.open(disp_path)).astype(np.float64)
        labels = np.array(Image.open(gt_path.replace('instanceIds',
                                                     'labelIds')))
        assert p.shape == labels.shape
        assert not p[labels == 23].any()  # sky: no measurement
        # the road: a flat plane CAMERA_HEIGHT below the camera
        rows = np.nonzero((labels == 7) & (p > 0))[0]
        assert len(rows) > 1000
        below = np.maximum(rows - horizon, 0.5)
        expected = 256 * baseline * fx / (CAMERA_HEIGHT * fy / below) + 1
        got = p[(labels == 7) & (p > 0)]
        assert np.abs(got - np.clip(np.round(expected), 2, 65535)).max() <= 1


def test_eval_tool_distance_and_analyze(stereo_set, tmp_path):
    from citymask.evaluation.analysis import CONFUSION_PNG, ERRORS_PNG
    root, gt_files = stereo_set
    rng = np.random.default_rng(3)
    write_results(str(tmp_path / 'results'), gt_files,
                  lambda gt, k: make_predictions(gt, rng, n_false=4))
    out = tmp_path / 'res' / 'r.json'
    tool = 'tools/analysis_tools/eval_cityscapes.py'
    res = ok(run_tool(tool, osp.join(root, 'gtFine', 'val'),
                      str(tmp_path / 'results'), '--distance', '--nproc', '2',
                      '--out', str(out), '--analyze', '--score-thr', '0.2'))
    assert 'AP 100m*' in res.stdout and '* unofficial' in res.stdout
    result = json.loads(out.read_text())
    assert np.array(result['resultApMatrix']).shape == (3, 8, 10)
    assert 'unofficial' in result['note']
    assert 'Errors at mask IoU > 0.5' in res.stdout
    assert 'Confusion by mask IoU' in res.stdout
    saved = json.loads((out.parent / 'cityscapes_analysis.json').read_text())
    assert saved['score_thr'] == 0.2
    assert {f['image'] for f in saved['worst_images']} <= set(gt_files)
    for name in (ERRORS_PNG, CONFUSION_PNG):
        assert (out.parent / name).stat().st_size > 1000
    fails(run_tool(tool, osp.join(root, 'gtFine', 'val'),
                   str(tmp_path / 'results'), '--analyze', '--score-thr',
                   '1.5'), 'score threshold 1.5 ')

    # a tree without disparity/: one line, nothing written
    bare = tmp_path / 'bare'
    shutil.copytree(osp.join(root, 'gtFine'), bare / 'gtFine')
    line = fails(run_tool(tool, str(bare / 'gtFine' / 'val'),
                          str(tmp_path / 'results'), '--distance', '--out',
                          str(tmp_path / 'none.json')), 'disparity')
    assert 'not found' in line
    assert not (tmp_path / 'none.json').exists()


def test_metric_distance_keys(stereo_set):
    import citymask.register  # noqa: F401
    from citymask.classes import CLASSES
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    _, gt_files = stereo_set
    samples = list(metric_samples(gt_files, np.random.default_rng(5),
                                  n_false=4))
    rng = np.random.default_rng(5)  # the same predictions as tasks
    tasks = write_results(None, gt_files, lambda gt, k: make_predictions(
        gt, rng, n_false=4))
    got = run_metric(CityscapesInstanceMetric(distance=True, nproc=1), samples)
    want = evaluate(tasks, distance=True)['averages']
    for key, official in (('mAP_100m', 'allAp100m'), ('mAP_50m', 'allAp50m'),
                          ('AP@50_50m', 'allAp50%50m')):
        assert got[f'cityscapes/{key}_unofficial'] == pytest.approx(
            want[official], abs=1e-12)
    # stereo files missing: refused at the first image, not after all
    bad = CityscapesInstanceMetric(distance=True, stereo_root='/nonexistent')
    bad.dataset_meta = dict(classes=CLASSES)
    assert 'disparity' in error(bad.process, {}, samples[:1])
