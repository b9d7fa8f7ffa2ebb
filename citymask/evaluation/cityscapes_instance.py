"""Cityscapes instance-level evaluation, exact and in memory.

The numbers of cityscapesscripts' ``evalInstanceLevelSemanticLabeling``
(all its rules; NaN for classes without ground truth) without its
full-size array per prediction and instance or its site-packages caches:
a frame's ids are mapped once to codes (instance, void, rest); a
prediction's overlaps are one histogram of the codes under its crop.

Where the official script fails: a class whose predictions are all
ignored gets AP 0.0 (it crashes, cityscapesScripts #89); labels not
evaluated are skipped (it aborts); an image without a prediction file has
no predictions (its CLI aborts). ``distance=True``: also AP 100m / 50m,
distances filled by :mod:`.distance` (unofficial).
"""
import functools
import itertools
import multiprocessing
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..classes import (CLASSES, INSTANCE_ID_FACTOR, LABEL_IDS, VOID_IDS,
                       label_of_instance_id)
from ..errors import CitymaskError
from .crops import CropMask, FrameTask, decode_crop
from .distance import (UNOFFICIAL_NOTE, instance_distances, read_camera,
                       read_disparity, stereo_paths)
from .mask_png import as_uint16, read_gt
from .results_format import read_masks

OVERLAPS = np.arange(0.5, 1., 0.05)
MIN_REGION_SIZE = 100
# the official script's distance settings (distances unavailable: 1st only)
MIN_REGION_SIZES = [100, 1000, 1000]
DISTANCE_THS = [float('inf'), 100, 50]
DISTANCE_CONFS = [-float('inf'), 0.5, 0.5]
# (stereo disparity values, baseline, fx) of a frame
Stereo = Tuple[np.ndarray, float, float]


def match_image(gt: np.ndarray, label_ids: Sequence[int],
                scores: Sequence[float], masks: Sequence[Optional[CropMask]],
                cross_labels: bool = False,
                stereo: Optional[Stereo] = None) -> dict:
    """Everything the AP needs from one frame (``gt``: its instanceIds;
    ``masks``: :func:`crop_masks` output, None = empty).

    Returns:
        ``gt``: (inst_id, label_id, pixel_count) of the evaluated labels'
        instances and groups; ``pred``: (label_id, score, pixel_count,
        void_intersection) of the kept predictions; ``inter``: (pred_index,
        gt_index, intersection) of same-label overlaps; with
        ``cross_labels``, ``xinter`` of the others; with ``stereo``
        (disparity, baseline, fx), ``dist``: (medDist, distConf) per gt.
    """
    gt = as_uint16(np.asarray(gt))
    height, width = gt.shape
    # cv2.calcHist: exact for uint16 (counts < 2**24), 2x np.bincount's speed
    counts = _hist(gt, 65536)
    ids = np.flatnonzero(counts)
    id_labels = label_of_instance_id(ids)
    keep = np.isin(id_labels, LABEL_IDS)
    gt_ids, gt_labels = ids[keep], id_labels[keep]
    n = len(gt_ids)
    # codes: 0..n-1 instance, n void, n + 1 else (8-bit if they fit: 3x faster)
    lut = np.full(65536, n + 1, dtype=np.uint8 if n + 2 <= 256 else np.uint16)
    lut[gt_ids] = np.arange(n)
    lut[list(VOID_IDS)] = n  # never an instance id
    codes = np.take(lut, gt)
    gts = np.stack([gt_ids, gt_labels, counts[gt_ids]], 1).astype(np.int64)

    preds, inter, xinter = [], [], []
    for label_id, score, mask in zip(label_ids, scores, masks):
        label_id = int(label_id)
        if label_id not in LABEL_IDS or mask is None:
            continue
        x0, y0, crop = decode_crop(mask)
        h, w = crop.shape
        if y0 + h > height or x0 + w > width:
            raise CitymaskError(
                f'a predicted mask reaches ({x0 + w}, {y0 + h}), outside '
                f'the {width}x{height} ground truth: masks must have the '
                'size of the original image')
        # histogram of the codes under the prediction's pixels
        hist = _hist(codes[y0:y0 + h, x0:x0 + w], n + 2, crop)
        pixels = int(hist.sum())
        if pixels == 0:
            continue
        p = len(preds)
        preds.append((label_id, float(score), pixels, int(hist[n])))
        for g in np.flatnonzero(hist[:n]):
            if gt_labels[g] == label_id:
                inter.append((p, int(g), int(hist[g])))
            elif cross_labels:
                xinter.append((p, int(g), int(hist[g])))
    out = dict(gt=gts, pred=preds, inter=inter)
    if cross_labels:
        out['xinter'] = xinter
    if stereo is not None:
        disparity, baseline, fx = stereo
        if disparity.shape != gt.shape:
            raise CitymaskError(
                f'disparity is {disparity.shape[1]}x{disparity.shape[0]}, '
                f'the ground truth {width}x{height}')
        out['dist'] = instance_distances(codes, n, gts[:, 2], disparity,
                                         baseline, fx)
    return out


def _hist(values: np.ndarray, bins: int,
          mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Exact int64 counts of 0..bins-1 in uint8/16 ``values`` (``mask``)."""
    h = cv2.calcHist([values], [0], mask, [bins], [0, bins])
    return h.ravel().astype(np.int64)


def _average_precision(y_true: np.ndarray, y_score: np.ndarray,
                       hard_fns: int) -> float:
    """Step-wise integrated precision/recall, as the official script."""
    if len(y_score) == 0:
        return 0.0  # official crashes here (#89); no true positive exists
    order = np.argsort(y_score)
    scores, true = y_score[order], y_true[order]
    cumsum = np.cumsum(true)
    # a threshold at each distinct score; before: true examples below it
    _, unique_idx = np.unique(scores, return_index=True)
    before = np.append(cumsum, 0)[unique_idx - 1]  # index -1 reads the 0
    tp = cumsum[-1] - before
    fp = len(scores) - unique_idx - tp
    fn = before + hard_fns
    precision = np.append(tp / (tp + fp), 1.)
    recall = np.append(tp / (tp + fn), 0.)
    steps = np.convolve(np.concatenate([recall[:1], recall, [0.]]),
                        [-0.5, 0, 0.5], 'valid')
    return float(np.dot(precision, steps))


def evaluate_matches(matches: Sequence[dict],
                     distance: bool = False) -> np.ndarray:
    """AP of shape (settings, 8 classes, 10 overlaps), as the official
    ``evaluateMatches``: one setting, or with ``distance`` (matches made
    with ``stereo``) the official three (any distance, 100 m, 50 m).
    """
    # (min region size, max distance, min distConf) per setting
    settings = list(zip(MIN_REGION_SIZES, DISTANCE_THS,
                        DISTANCE_CONFS))[:3 if distance else 1]
    # per label: each GT evaluated in some setting as ((IoU, score) of the
    # predictions on it, in order; left out per setting); each prediction
    # as (score, best IoU with a GT of its label, ignored share per setting)
    gt_lists: Dict[int, List[tuple]] = {lab: [] for lab in LABEL_IDS}
    pred_lists: Dict[int, List[tuple]] = {lab: [] for lab in LABEL_IDS}
    for m in matches:
        gts, preds = m['gt'], m['pred']
        rows = gts.tolist()
        if distance:
            if 'dist' not in m:
                raise CitymaskError(
                    'distance-aware AP needs matches made with stereo '
                    '(match_frames(..., distance=True))')
            # too small, too far or too little stereo for a setting
            outside = [tuple(size < least or far > most or conf < sure
                             for least, most, sure in settings)
                       for (_, _, size), (far, conf) in
                       zip(rows, m['dist'].tolist())]
        else:
            outside = [(size < MIN_REGION_SIZE,) for _, _, size in rows]
        gt_preds: Dict[int, list] = {}
        pred_gts: Dict[int, list] = {}
        for p, g, inter in m['inter']:
            gt_preds.setdefault(g, []).append((p, inter))
            pred_gts.setdefault(p, []).append((g, inter))
        for g, (inst, label, size) in enumerate(rows):
            if inst < INSTANCE_ID_FACTOR or all(outside[g]):
                continue  # group regions and tiny instances are ignored
            gt_lists[label].append((
                [(float(inter) / (size + preds[p][2] - inter), preds[p][1])
                 for p, inter in sorted(gt_preds.get(g, ()))],
                outside[g]))
        sizes = gts[:, 2].tolist()
        ignorable = [inst < INSTANCE_ID_FACTOR for inst in gts[:, 0].tolist()]
        for p, (label, conf, pixels, void) in enumerate(preds):
            touched = pred_gts.get(p, ())
            best = max((float(inter) / (sizes[g] + pixels - inter)
                        for g, inter in touched), default=-1.0)
            ignored = [void] * len(settings)
            for g, inter in touched:  # a tiny group region counts twice
                for s, out in enumerate(outside[g]):
                    ignored[s] += inter * (ignorable[g] + out)
            pred_lists[label].append(
                (conf, best, [float(i) / pixels for i in ignored]))

    ap = np.zeros((len(settings), len(CLASSES), len(OVERLAPS)))
    for si in range(len(settings)):
        for li, label_id in enumerate(LABEL_IDS):
            gt_list = [c for c, out in gt_lists[label_id] if not out[si]]
            pred_list = pred_lists[label_id]
            if not gt_list:
                ap[si, li] = float('nan')
                continue
            if not pred_list:
                continue  # 0.0
            for oi, th in enumerate(OVERLAPS):
                y_true, y_score, hard_fns = [], [], 0
                for candidates in gt_list:
                    hits = [conf for iou, conf in candidates if iou > th]
                    if not hits:
                        hard_fns += 1
                        continue
                    # the best-scoring match is a TP; each other one a FP
                    # at the lower of its score and the best before it
                    best = list(itertools.accumulate(hits, max))
                    y_true += [0] * (len(hits) - 1) + [1]
                    y_score += [min(b, c) for b, c in zip(best, hits[1:])]
                    y_score.append(best[-1])
                # unmatched and not mostly in ignored regions: FPs
                fps = [conf for conf, best_iou, ignored in pred_list
                       if best_iou <= th and ignored[si] <= th]
                y_true += [0] * len(fps)
                y_score += fps
                ap[si, li, oi] = _average_precision(
                    np.asarray(y_true, float), np.asarray(y_score, float),
                    hard_fns)
    return ap


def summarize(ap: np.ndarray) -> dict:
    """The official result JSON (``resultInstanceLevelSemanticLabeling``);
    of three settings also its distance keys and a ``note`` that they are
    unofficial."""
    o50 = np.where(np.isclose(OVERLAPS, 0.5))[0]
    distance = ap.shape[0] > 1
    # (average key, class key, setting, AP50 only)
    keys = [('allAp', 'ap', 0, False), ('allAp50%', 'ap50%', 0, True)]
    if distance:
        d100, d50 = DISTANCE_THS.index(100), DISTANCE_THS.index(50)
        keys += [('allAp50m', 'ap50m', d50, False),
                 ('allAp100m', 'ap100m', d100, False),
                 ('allAp50%50m', 'ap50%50m', d50, True)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN means
        averages = {k: float(np.nanmean(ap[s][:, o50] if at50 else ap[s]))
                    for k, _, s, at50 in keys}
        averages['classes'] = {name: {
            k: float(np.average(ap[s, i, o50] if at50 else ap[s, i]))
            for _, k, s, at50 in keys} for i, name in enumerate(CLASSES)}
    result = dict(averages=averages, overlaps=OVERLAPS.tolist(),
                  minRegionSizes=MIN_REGION_SIZES,
                  distanceThresholds=DISTANCE_THS,
                  minStereoDensities=DISTANCE_CONFS, instLabels=list(CLASSES),
                  resultApMatrix=ap.tolist())
    if distance:
        result['note'] = UNOFFICIAL_NOTE
    return result


def format_table(result: dict) -> str:
    """Per-class AP / AP50 (and AP 100m / 50m, unofficial) in percent."""
    from terminaltables import AsciiTable
    avg = result['averages']
    distance = 'allAp100m' in avg
    # (column, per-class key, average key); * = unofficial
    columns = [('AP', 'ap', 'allAp'), ('AP50', 'ap50%', 'allAp50%')] + [
        ('AP 100m*', 'ap100m', 'allAp100m'), ('AP 50m*', 'ap50m', 'allAp50m'),
        ('AP50 50m*', 'ap50%50m', 'allAp50%50m')] * distance
    rows = [['class'] + [c[0] for c in columns]]
    for name in CLASSES:
        c = avg['classes'][name]
        rows.append([name] + [f'{100 * c[key]:.1f}' for _, key, _ in columns])
    rows.append(['average'] +
                [f'{100 * avg[key]:.1f}' for _, _, key in columns])
    table = AsciiTable(rows)
    table.inner_footing_row_border = True
    return table.table + ('\n* unofficial: distances from disparity/ and '
                          'camera/ as citymask fills them (the public '
                          'evaluator never does)' if distance else '')


def _match_task(task: FrameTask, distance: bool = False,
                stereo_root: Optional[str] = None,
                cross_labels: bool = False) -> dict:
    task = FrameTask(*task)
    gt = read_gt(task.gt_path)
    masks = task.masks
    if task.mask_paths:
        masks = read_masks(task.mask_paths, task.label_ids, gt.shape)
    stereo = None
    if distance:
        disparity_path, camera_path = stereo_paths(task.gt_path, stereo_root)
        stereo = (read_disparity(disparity_path, gt.shape),
                  *read_camera(camera_path))
    return match_image(gt, task.label_ids, task.scores, masks,
                       cross_labels=cross_labels, stereo=stereo)


def match_frames(tasks: Sequence[FrameTask], nproc: int = 1,
                 distance: bool = False, stereo_root: Optional[str] = None,
                 cross_labels: bool = False) -> List[dict]:
    """:func:`match_image` of every frame (:class:`FrameTask` or plain
    tuple), in ``nproc`` processes; with ``distance`` the stereo files are
    read from ``stereo_root`` (default: the Cityscapes root above each
    ground-truth file)."""
    tasks = list(tasks)
    work = functools.partial(_match_task, distance=distance,
                             stereo_root=stereo_root,
                             cross_labels=cross_labels)
    if nproc > 1 and len(tasks) > 1:
        # fork: workers only run numpy / cv2 / pycocotools code
        ctx = multiprocessing.get_context(
            'fork' if hasattr(os, 'fork') else 'spawn')
        with ctx.Pool(min(nproc, len(tasks))) as pool:
            return pool.map(work, tasks,
                            chunksize=max(1, len(tasks) // (4 * nproc)))
    return [work(t) for t in tasks]


def evaluate(tasks: Sequence[FrameTask], nproc: int = 1,
             distance: bool = False, stereo_root: Optional[str] = None
             ) -> dict:
    """The official result (:func:`summarize`) of :func:`match_frames`;
    with ``distance`` also the (unofficial) AP 100m / 50m."""
    return summarize(evaluate_matches(
        match_frames(tasks, nproc, distance, stereo_root), distance))
