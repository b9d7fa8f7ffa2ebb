"""CityscapesInstanceMetric as a drop-in for mmdet's CityScapesMetric."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
from mmdet.datasets import CityscapesDataset
from mmdet.evaluation import CityScapesMetric

import citymask.register  # noqa: F401
from citymask.compat import official_instance_evaluator
from citymask.evaluation.mask_png import read_gt
from citymask.evaluation.metrics import CityscapesInstanceMetric
from citymask.testing.predictions import metric_samples
from ...conftest import ok, run_tool
from ...tools.conftest import error, fails
from ..conftest import assert_same, official, run_metric

CLASSES = CityscapesDataset.METAINFO['classes']
LABEL_IDS = [24, 25, 26, 27, 28, 31, 32, 33]


def _samples(gt_files, seed=0):
    return list(metric_samples(gt_files, np.random.default_rng(seed)))


def test_same_numbers_as_mmdet_metric(eval_set, tmp_path, monkeypatch):
    root, gt_files = eval_set
    samples = _samples(gt_files)
    ours = run_metric(CityscapesInstanceMetric(
        outfile_prefix=str(tmp_path / 'ours'), plot_ap=True,
        seg_prefix=osp.join(root, 'gtFine', 'val')), samples)
    monkeypatch.chdir(tmp_path)  # the official script writes matches.json
    with official_instance_evaluator():  # numpy >= 2.4
        theirs = run_metric(CityScapesMetric(
            outfile_prefix=str(tmp_path / 'mmdet'),
            seg_prefix=osp.join(root, 'gtFine', 'val')), samples)
    assert set(theirs) == {'cityscapes/mAP', 'cityscapes/AP@50'}
    # and each class's AP / AP50, for every logger
    assert set(ours) == set(theirs) | {
        f'cityscapes/{c}_{k}' for c in CLASSES for k in ('AP', 'AP50')}
    for k in theirs:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-12)
    # result JSON in the official structure and the AP chart
    with open(tmp_path / 'ours' /
              'resultInstanceLevelSemanticLabeling.json') as f:
        result = json.load(f)
    assert result['averages']['allAp'] == pytest.approx(ours['cityscapes/mAP'])
    for c in CLASSES:
        per_class = result['averages']['classes'][c]
        assert ours[f'cityscapes/{c}_AP'] == pytest.approx(
            per_class['ap'], nan_ok=True)
        assert ours[f'cityscapes/{c}_AP50'] == pytest.approx(
            per_class['ap50%'], nan_ok=True)
    assert osp.getsize(tmp_path / 'ours' / 'cityscapes_class_ap.png') > 1000


def test_format_only_results_read_by_official_and_cli(eval_set, tmp_path):
    root, gt_files = eval_set
    samples, out = _samples(gt_files, seed=1), tmp_path / 'submission'
    assert run_metric(CityscapesInstanceMetric(
        outfile_prefix=str(out), format_only=True), samples) == {}
    txts = sorted(glob.glob(str(out / '*_pred.txt')))
    assert len(txts) == len(gt_files)
    # the official evaluator reads what we wrote and agrees with us
    ours = run_metric(CityscapesInstanceMetric(), samples)
    theirs = official(gt_files, str(out), str(tmp_path / 'official'))
    assert ours['cityscapes/mAP'] == pytest.approx(
        theirs['averages']['allAp'], abs=1e-12)
    assert 'outfile_prefix' in error(CityscapesInstanceMetric,
                                     format_only=True)
    # and so does the CLI, every number
    res = ok(run_tool('tools/analysis_tools/eval_cityscapes.py',
                      osp.join(root, 'gtFine'), str(out), '--out',
                      str(tmp_path / 'r.json'), '--nproc', '2'))
    assert 'average' in res.stdout and 'person' in res.stdout
    cli = json.loads((tmp_path / 'r.json').read_text())
    assert_same(cli, theirs)
    assert set(cli) == set(theirs)
    fails(run_tool('tools/analysis_tools/eval_cityscapes.py',
                   str(tmp_path / 'nope'), str(out)), 'nope')


def test_missing_ground_truth_points_to_format_only(eval_set, tmp_path):
    _, gt_files = eval_set
    sample = _samples(gt_files[:1])[0]
    sample['img_path'] = str(tmp_path / 'leftImg8bit' / 'test' / 'berlin' /
                             'berlin_000000_000019_leftImg8bit.png')
    assert 'use --format-only' in error(run_metric, CityscapesInstanceMetric(),
                                        [sample])


def test_dump_matches_holds_what_the_ap_is_computed_from(eval_set, tmp_path):
    from citymask.evaluation.cityscapes_instance import (LABEL_IDS,
                                                         evaluate_matches,
                                                         summarize)
    _, gt_files = eval_set
    samples, out = _samples(gt_files, seed=4), tmp_path / 'out'
    res = run_metric(CityscapesInstanceMetric(
        outfile_prefix=str(out), dump_matches=True), samples)
    matches = json.loads((out / 'matches.json').read_text())
    assert list(matches) == [s['img_path'] for s in samples]
    for s, g in zip(samples, gt_files):
        m = matches[s['img_path']]
        # GT rows: every evaluated instance / group id with its pixel count
        ids, counts = np.unique(read_gt(g), return_counts=True)
        want = [[int(i), int(i // 1000 if i >= 1000 else i), int(c)]
                for i, c in zip(ids, counts)
                if (i // 1000 if i >= 1000 else i) in LABEL_IDS]
        assert m['gt'] == want
        # prediction rows: the non-empty masks, with their pixel counts
        masks = s['pred_instances']['masks'].numpy()
        assert [p[2] for p in m['pred']] == [
            int(k.sum()) for k in masks if k.any()]
    # the AP follows from the file alone
    again = summarize(evaluate_matches([dict(
        m, gt=np.array(m['gt']).reshape(-1, 3)) for m in matches.values()]))
    assert again['averages']['allAp'] == pytest.approx(
        res['cityscapes/mAP'], abs=1e-12)
    assert 'outfile_prefix' in error(CityscapesInstanceMetric,
                                     dump_matches=True)


def _box_masks(masks):
    """Full masks as BoxMaskHead gives them: crops of their boxes with a
    margin of False pixels (2, clipped), empty masks a 2x2 crop."""
    import cv2

    from citymask.models.box_masks import BoxMasks
    masks = masks.numpy()
    h, w = masks.shape[1:]
    boxes = [cv2.boundingRect(m.view(np.uint8)) for m in masks]
    boxes = [(max(x - 2, 0), max(y - 2, 0), min(x + bw + 2, w),
              min(y + bh + 2, h)) for x, y, bw, bh in boxes]
    return BoxMasks([m[y0:y1, x0:x1] for m, (x0, y0, x1, y1) in zip(
        masks, boxes)], [b[:2] for b in boxes], (h, w))


@pytest.mark.parametrize('form', ['rle', 'box'])
def test_other_mask_forms_give_the_same_results(eval_set, tmp_path, form):
    """Masks as --out saves them (RLE) and as BoxMaskHead gives them: the
    numbers of the full masks they stand for; box masks the same results
    folder too, which the official evaluator reads."""
    from mmdet.structures.mask import encode_mask_results
    _, gt_files = eval_set
    samples = _samples(gt_files, seed=5 if form == 'rle' else 6)
    masks = (lambda m: encode_mask_results(m.numpy())) if form == 'rle' \
        else _box_masks
    given = [dict(s, pred_instances=dict(s['pred_instances'], masks=masks(
        s['pred_instances']['masks']))) for s in samples]
    ours = run_metric(CityscapesInstanceMetric(), given)
    assert ours == run_metric(CityscapesInstanceMetric(), samples)
    if form == 'rle':
        return
    for name, preds in (('full', samples), ('box', given)):
        run_metric(CityscapesInstanceMetric(
            outfile_prefix=str(tmp_path / name), format_only=True), preds)
    full, box = (sorted(glob.glob(str(tmp_path / n / '*')))
                 for n in ('full', 'box'))
    assert [osp.basename(p) for p in full] == [osp.basename(p) for p in box]
    for a, b in zip(full, box):
        with open(a, 'rb') as f, open(b, 'rb') as g:
            assert f.read() == g.read(), a
    theirs = official(gt_files, str(tmp_path / 'box'),
                      str(tmp_path / 'official'))
    assert ours['cityscapes/mAP'] == pytest.approx(
        theirs['averages']['allAp'], abs=1e-12)


def test_predictions_that_cannot_be_ranked_are_refused(eval_set):
    import torch
    _, gt_files = eval_set
    sample = _samples(gt_files[:1])[0]
    pred = sample['pred_instances']
    n = len(pred['scores'])
    h, w = sample['ori_shape'][:2]
    for change, why in [
            (dict(scores=torch.full((n, ), 1.5)), 'scores outside [0, 1]'),
            (dict(scores=torch.full((n, ), -0.1)), 'scores outside [0, 1]'),
            (dict(labels=torch.full((n, ), 8)), 'labels below 8'),
            (dict(labels=torch.full((n, ), -1)), 'labels below 8'),
            (dict(scores=pred['scores'][:-1]), 'expected one of each'),
            (dict(masks=torch.zeros(n, h // 2, w, dtype=torch.bool)),
             f'are ({n}, {h // 2}, {w}), the image ({h}, {w})'),
            (dict(scores=torch.full((n, ), float('nan'))),
             'non-finite scores'),
            (dict(masks=[dict(size=[h, w], counts=b'0')] * n),
             'its runs cover 0 pixels')]:
        bad = dict(sample, pred_instances=dict(pred, **change))
        msg = error(run_metric, CityscapesInstanceMetric(), [bad])
        assert why in msg and sample['img_path'] in msg
