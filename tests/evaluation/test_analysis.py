"""Error analysis: a hand-made frame (every outcome known), counts equal to
the official matching's at IoU 0.5, the metric option."""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from citymask.evaluation.analysis import (CONFUSION_PNG, ERRORS_PNG,
                                          analyze_matches, format_analysis,
                                          write_analysis)
from citymask.evaluation.cityscapes_instance import match_image
from citymask.evaluation.crops import crop_masks
from citymask.testing.official import run_official
from citymask.testing.predictions import make_predictions
from ..tools.conftest import error
from .conftest import box, run_metric, write_gt, write_results

ROAD, EGO, CAR, PERSON, TRUCK, BICYCLE = 7, 1, 26, 24, 27, 33


def _frame():
    """A 200x400 frame: cars of every size, a car group, a person, a truck
    and the ego vehicle (void), with predictions of known outcome."""
    shape = (200, 400)
    gt = np.full(shape, ROAD, np.uint16)
    regions = {  # name: (id, box)
        'A': (26000, (10, 110, 10, 110)),  # 10000 px: large
        'B': (26001, (10, 50, 150, 190)),  # 1600: medium
        'C': (26002, (60, 80, 150, 170)),  # 400: small
        'D': (26003, (90, 98, 150, 158)),  # 64: below 100 px, not evaluated
        'G': (CAR, (10, 50, 220, 300)),  # cargroup
        'P': (24000, (60, 110, 220, 240)),  # 1000: small
        'T': (27000, (120, 160, 300, 380)),  # 3200: medium, never predicted
    }
    for inst, (y0, y1, x0, x1) in regions.values():
        gt[y0:y1, x0:x1] = inst
    gt[170:, :] = EGO
    at = {k: box(shape, *b) for k, (_, b) in regions.items()}
    preds = [  # (label, score, mask)
        (CAR, 0.9, at['A']),  # TP
        (CAR, 0.8, np.roll(at['A'], 2, axis=1)),  # duplicate: FP
        (CAR, 0.7, at['G']),  # on the group: forgiven
        (CAR, 0.6, box(shape, 175, 195, 10, 60)),  # on void: forgiven
        (CAR, 0.6, at['D']),  # on a tiny car: forgiven
        (CAR, 0.5, box(shape, 120, 160, 120, 200)),  # on road: FP
        (PERSON, 0.9, at['B']),  # a car called person: FP, B missed
        (CAR, 0.1, at['C']),  # right, but under the score threshold
        (PERSON, 0.95, at['P']),  # TP
        (BICYCLE, 0.4, box(shape, 165, 185, 300, 340)),  # 3/4 void
    ]
    labels, scores, masks = zip(*preds)
    return gt, list(labels), list(scores), np.stack(masks)


def test_counts_of_a_known_frame(tmp_path):
    gt, labels, scores, masks = _frame()
    crops = crop_masks(masks)
    m = match_image(gt, labels, scores, crops, cross_labels=True)
    a = analyze_matches([m], ['frame'], score_thr=0.3)
    car, person = a['classes']['car'], a['classes']['person']
    assert (car['gt'], car['tp'], car['fp']) == (3, 1, 2)
    assert car['fp_duplicate'] == 1
    assert car['forgiven'] == dict(void=1, group=1, small=1)
    assert car['missed'] == dict(small=1, medium=1, large=0)
    assert car['gt_by_size'] == dict(small=1, medium=1, large=1)
    assert (person['gt'], person['tp'], person['fp']) == (1, 1, 1)
    assert person['missed'] == dict(small=0, medium=0, large=0)
    assert a['classes']['truck']['missed'] == dict(small=0, medium=1, large=0)
    assert a['classes']['bicycle']['forgiven']['void'] == 1
    assert a['classes']['bicycle']['fp'] == 0
    conf = a['confusion']
    cell = {(r, c): conf['counts'][i][j]
            for i, r in enumerate(conf['rows'])
            for j, c in enumerate(conf['cols'])}
    expected = {('car', 'car'): 2, ('background', 'car'): 1,
                ('car', 'person'): 1, ('person', 'person'): 1,
                ('car', 'missed'): 1, ('truck', 'missed'): 1}
    assert {k: v for k, v in cell.items() if v} == expected
    assert a['worst_images'] == [dict(image='frame', errors=6, fp=3,
                                      missed=3, tp=2, gt=5)]
    # every prediction (score >= 0) appears once; C is found then
    b = analyze_matches([m], score_thr=0)
    car = b['classes']['car']
    assert car['tp'] == 2 and car['missed'] == dict(small=0, medium=1, large=0)
    counted = sum(c['tp'] + c['fp'] + sum(c['forgiven'].values())
                  for c in b['classes'].values())
    assert counted == len(labels)
    table = format_analysis(a)
    assert 'fgv void' in table and 'frame' in table
    assert 'cross_labels' in error(analyze_matches, [match_image(
        gt, labels, scores, crops)])
    assert '0..1' in error(analyze_matches, [m], score_thr=2)
    paths = write_analysis(a, str(tmp_path), plots=False)
    assert [osp.basename(p) for p in paths] == ['cityscapes_analysis.json']
    assert sorted(os.listdir(tmp_path)) == ['cityscapes_analysis.json']


def _official_counts(matches_json):
    """TP / FP / missed per class at IoU 0.5 from the official evaluator's
    matches, by its evaluateMatches rules."""
    def iou(gt, pred, inter):
        return inter / (gt['pixelCount'] + pred['pixelCount'] - inter)

    counts = {}
    for frame in matches_json.values():
        for name, gts in frame['groundTruth'].items():
            c = counts.setdefault(name, dict(tp=0, fp=0, missed=0, preds=0))
            for g in gts:
                if g['instID'] < 1000 or g['pixelCount'] < 100:
                    continue
                hits = sum(iou(g, p, p['intersection']) > 0.5
                           for p in g['matchedPred'])
                c['tp'] += hits > 0
                c['fp'] += max(hits - 1, 0)
                c['missed'] += hits == 0
        for name, preds in frame['prediction'].items():
            c = counts.setdefault(name, dict(tp=0, fp=0, missed=0, preds=0))
            c['preds'] += len(preds)
            for p in preds:
                if any(iou(g, p, g['intersection']) > 0.5
                       for g in p['matchedGt']):
                    continue
                ignored = p['voidIntersection'] + sum(
                    g['intersection'] * ((g['instID'] < 1000) +
                                         (g['pixelCount'] < 100))
                    for g in p['matchedGt'])
                c['fp'] += ignored / p['pixelCount'] <= 0.5
    return counts


def test_counts_equal_the_official_matching(eval_set, tmp_path):
    _, gt_files = eval_set
    rng = np.random.default_rng(4)
    tasks = write_results(str(tmp_path / 'results'), gt_files,
                          lambda gt, k: make_predictions(gt, rng, n_false=8))
    run_official(gt_files, str(tmp_path / 'results'),
                 str(tmp_path / 'official'))
    with open(tmp_path / 'official' / 'matches.json') as f:
        theirs = _official_counts(json.load(f))
    from citymask.evaluation.cityscapes_instance import match_frames
    ours = analyze_matches(match_frames(tasks, 2, cross_labels=True),
                           gt_files, score_thr=0)['classes']
    assert sum(c['tp'] for c in ours.values()) > 10
    for name, c in ours.items():
        t = theirs[name]
        assert (c['tp'], c['fp'], sum(c['missed'].values())) == (
            t['tp'], t['fp'], t['missed']), name
        assert (c['tp'] + c['fp'] + sum(c['forgiven'].values()) ==
                t['preds']), name


def test_metric_option_writes_tables_and_plots(eval_set, tmp_path):
    import torch
    from mmengine.logging import MMLogger

    import citymask.register  # noqa: F401
    from citymask.classes import LABEL_IDS
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    gt, labels, scores, masks = _frame()
    (gt_path,) = write_gt(tmp_path / 'cs', [gt])
    out = tmp_path / 'out'
    logger = MMLogger.get_instance('test_analysis', log_file=str(
        tmp_path / 'log.txt'))
    assert logger is MMLogger.get_current_instance()
    got = run_metric(CityscapesInstanceMetric(
        outfile_prefix=str(out), analyze=True, nproc=1), [dict(
            img_path=gt_path.replace('/gtFine/', '/leftImg8bit/').replace(
                'gtFine_instanceIds', 'leftImg8bit'),
            ori_shape=gt.shape, pred_instances=dict(
                labels=torch.tensor([LABEL_IDS.index(x) for x in labels]),
                scores=torch.tensor(scores), masks=torch.from_numpy(masks)))])
    assert got['cityscapes/person_AP50'] == 1.0  # found, one FP below it
    assert np.isnan(got['cityscapes/bus_AP'])  # no bus in the frame
    saved = json.loads((out / 'cityscapes_analysis.json').read_text())
    assert saved['classes']['car']['forgiven'] == dict(void=1, group=1,
                                                       small=1)
    for name in (ERRORS_PNG, CONFUSION_PNG):
        with Image.open(out / name) as im:
            assert im.size[0] > 500
    assert 'fgv group' in (tmp_path / 'log.txt').read_text()
    assert '0..1' in error(CityscapesInstanceMetric, analyze=True,
                           analysis_score_thr=-0.1)
