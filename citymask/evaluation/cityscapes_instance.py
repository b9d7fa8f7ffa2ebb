"""Cityscapes instance-level evaluation, exact and in memory.

Gives the numbers of cityscapesscripts' ``evalInstanceLevelSemanticLabeling``
(same ignore rules, overlaps 0.50:0.95, minimum region size 100, duplicate
and ignore-proportion rules, precision/recall integration, NaN for classes
without ground truth). Rewritten rather than called because the official
script compares a full-size array per prediction and ground-truth instance,
re-reads PNGs and writes caches into site-packages and the working folder.

Here each ground-truth frame is histogrammed once (its instance ids and
sizes) and mapped to codes (one per evaluated instance, one for void, one
for the rest); a prediction's intersections with every instance and with
void are then one histogram of the codes under its pixels, read from its
bounding-box crop (:mod:`.crops`). PNG results are read by :mod:`.mask_png`.

Deliberate differences, where the official script fails:

* A class whose predictions are all ignored (void / group / small regions)
  while it has ground truth: the official script crashes
  (cityscapesScripts #89); here its AP is 0.0 (no true positive found).
* Predictions of labels that are not evaluated (or unknown ids) are skipped
  instead of aborting; empty masks are skipped as the official script does.
* An image without a prediction file counts as an image without
  predictions (the official CLI aborts).
"""
import multiprocessing
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pyspng
from PIL import Image

from ..classes import (CLASSES, INSTANCE_ID_FACTOR, LABEL_IDS, VOID_IDS,
                       label_of_instance_id)
from ..errors import CitymaskError
from .crops import CropMask, crop_masks, decode_crop
from .mask_png import read_mask_crop, read_pred_mask

OVERLAPS = np.arange(0.5, 1., 0.05)
MIN_REGION_SIZE = 100
# the official script's distance settings (distances unavailable: 1st only)
MIN_REGION_SIZES = [100, 1000, 1000]
DISTANCE_THS = [float('inf'), 100, 50]
DISTANCE_CONFS = [-float('inf'), 0.5, 0.5]


def read_gt(path: str) -> np.ndarray:
    """``*_gtFine_instanceIds.png`` as a uint16 array (what it holds).

    Decoded with pyspng (libspng): 3.8 vs 4.4 ms with OpenCV for a
    2048x1024 file here; PIL reads what it can't.
    """
    try:
        with open(path, 'rb') as f:
            img = pyspng.load(f.read())
        if img.ndim == 3 and img.shape[2] == 2:  # grey16 comes with alpha
            img = np.ascontiguousarray(img[..., 0])
    except Exception:
        try:
            with Image.open(path) as im:
                img = np.asarray(im)
        except Exception as e:
            raise CitymaskError(
                f'cannot read ground truth {path}: {e}') from None
    if img.ndim != 2:
        raise CitymaskError(f'{path}: expected a single-channel instance '
                            f'id image, got shape {img.shape}')
    return _as_uint16(img, path)


def _as_uint16(gt: np.ndarray, what: str = 'ground truth') -> np.ndarray:
    if gt.dtype != np.uint16:
        if gt.size and (gt.min() < 0 or gt.max() > 65535):
            raise CitymaskError(f'{what}: instance ids must be 0..65535')
        gt = gt.astype(np.uint16)
    return np.ascontiguousarray(gt)


def match_image(gt: np.ndarray, label_ids: Sequence[int],
                scores: Sequence[float],
                masks: Sequence[Optional[CropMask]]) -> dict:
    """Everything the AP computation needs from one frame.

    Args:
        gt: instanceIds image (ids 0..65535, as the 16-bit PNG holds).
        label_ids: Cityscapes label id per prediction.
        scores: Confidence per prediction.
        masks: :func:`crop_masks` output per prediction (None = empty).

    Returns:
        ``gt``: (inst_id, label_id, pixel_count) of the evaluated labels'
        instances and groups; ``pred``: (label_id, score, pixel_count,
        void_intersection) of the kept predictions, in order;
        ``inter``: (pred_index, gt_index, intersection) for same-label
        pairs that overlap.
    """
    gt = _as_uint16(np.asarray(gt))
    height, width = gt.shape
    # cv2.calcHist counts uint16 exactly (float32 holds counts < 2**24)
    # and is about 2x faster than np.bincount, which first casts to int64
    counts = _hist(gt, 65536)
    ids = np.flatnonzero(counts)
    id_labels = label_of_instance_id(ids)
    keep = np.isin(id_labels, LABEL_IDS)
    gt_ids, gt_labels = ids[keep], id_labels[keep]
    n = len(gt_ids)
    # codes: 0..n-1 instance, n void, n + 1 anything else
    # (8-bit codes when they fit: calcHist is 3x faster on them)
    lut = np.full(65536, n + 1, dtype=np.uint8 if n + 2 <= 256 else np.uint16)
    lut[gt_ids] = np.arange(n)
    lut[list(VOID_IDS)] = n  # never an instance id
    codes = np.take(lut, gt)
    gts = np.stack([gt_ids, gt_labels, counts[gt_ids]], 1).astype(np.int64)

    preds, inter = [], []
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
    return dict(gt=gts, pred=preds, inter=inter)


def _hist(values: np.ndarray, bins: int,
          mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Exact counts of the integers ``0..bins-1`` in a uint8 / uint16 array
    (under a uint8 mask): int64 of length ``bins``."""
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
    _, unique_idx = np.unique(scores, return_index=True)
    n_examples, n_true = len(scores), cumsum[-1]
    cumsum = np.append(cumsum, 0)  # index -1 reads this 0
    precision = np.zeros(len(unique_idx) + 1)
    recall = np.zeros(len(unique_idx) + 1)
    for i, idx in enumerate(unique_idx):
        before = cumsum[idx - 1]
        tp = n_true - before
        fp = n_examples - idx - tp
        fn = before + hard_fns
        precision[i] = float(tp) / (tp + fp)
        recall[i] = float(tp) / (tp + fn)
    precision[-1], recall[-1] = 1., 0.
    steps = np.convolve(np.concatenate([recall[:1], recall, [0.]]),
                        [-0.5, 0, 0.5], 'valid')
    return float(np.dot(precision, steps))


def evaluate_matches(matches: Sequence[dict]) -> np.ndarray:
    """AP matrix of shape (1, 8 classes, 10 overlaps), as the official
    ``evaluateMatches`` computes it without distance information.

    The overlaps of every frame are computed once; each threshold then
    only compares them.
    """
    # per label: every evaluated GT instance as the (IoU, score) of the
    # predictions touching it, in prediction order; every prediction as
    # (score, best IoU with a GT of its label, ignored fraction)
    gt_lists: Dict[int, List[list]] = {lab: [] for lab in LABEL_IDS}
    pred_lists: Dict[int, List[tuple]] = {lab: [] for lab in LABEL_IDS}
    for m in matches:
        gts, preds = m['gt'], m['pred']
        gt_preds: Dict[int, list] = {}
        pred_gts: Dict[int, list] = {}
        for p, g, inter in m['inter']:
            gt_preds.setdefault(g, []).append((p, inter))
            pred_gts.setdefault(p, []).append((g, inter))
        for g, (inst, label, size) in enumerate(gts.tolist()):
            if inst < INSTANCE_ID_FACTOR or size < MIN_REGION_SIZE:
                continue  # group regions and tiny instances are ignored
            gt_lists[label].append(
                [(float(inter) / (size + preds[p][2] - inter), preds[p][1])
                 for p, inter in sorted(gt_preds.get(g, ()))])
        sizes = gts[:, 2].tolist()
        ignorable = [inst < INSTANCE_ID_FACTOR for inst in gts[:, 0].tolist()]
        for p, (label, conf, pixels, void) in enumerate(preds):
            touched = pred_gts.get(p, ())
            best = max((float(inter) / (sizes[g] + pixels - inter)
                        for g, inter in touched), default=-1.0)
            ignored = void
            for g, inter in touched:  # a tiny group region counts twice
                ignored += inter * (ignorable[g] +
                                    (sizes[g] < MIN_REGION_SIZE))
            pred_lists[label].append((conf, best, float(ignored) / pixels))

    ap = np.zeros((1, len(CLASSES), len(OVERLAPS)))
    for li, label_id in enumerate(LABEL_IDS):
        gt_list, pred_list = gt_lists[label_id], pred_lists[label_id]
        if not gt_list:
            ap[0, li] = float('nan')
            continue
        if not pred_list:
            continue  # 0.0
        for oi, th in enumerate(OVERLAPS):
            y_true: List[float] = []
            y_score: List[float] = []
            hard_fns = 0
            for candidates in gt_list:
                best = None  # highest matching score; others are FPs
                for iou, conf in candidates:
                    if iou > th:
                        if best is None:
                            best = conf
                        else:
                            y_true.append(0)
                            y_score.append(min(best, conf))
                            best = max(best, conf)
                if best is None:
                    hard_fns += 1
                else:
                    y_true.append(1)
                    y_score.append(best)
            for conf, best_iou, ignored in pred_list:
                # unmatched and not mostly in ignored regions: a FP
                if best_iou <= th and ignored <= th:
                    y_true.append(0)
                    y_score.append(conf)
            ap[0, li, oi] = _average_precision(
                np.asarray(y_true, float), np.asarray(y_score, float),
                hard_fns)
    return ap


def summarize(ap: np.ndarray) -> dict:
    """The official result JSON (``resultInstanceLevelSemanticLabeling``)."""
    o50 = np.where(np.isclose(OVERLAPS, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN means
        averages = {
            'allAp': float(np.nanmean(ap[0])),
            'allAp50%': float(np.nanmean(ap[0][:, o50])),
            'classes': {
                name: {'ap': float(np.average(ap[0, i])),
                       'ap50%': float(np.average(ap[0, i, o50]))}
                for i, name in enumerate(CLASSES)
            }
        }
    return {
        'averages': averages,
        'overlaps': OVERLAPS.tolist(),
        'minRegionSizes': MIN_REGION_SIZES,
        'distanceThresholds': DISTANCE_THS,
        'minStereoDensities': DISTANCE_CONFS,
        'instLabels': CLASSES,
        'resultApMatrix': ap.tolist(),
    }


def format_table(result: dict) -> str:
    """Per-class AP / AP50 table (percent), as users read it in logs."""
    from terminaltables import AsciiTable
    avg = result['averages']
    rows = [['class', 'AP', 'AP50']]
    for name in CLASSES:
        c = avg['classes'][name]
        rows.append([name, f'{100 * c["ap"]:.1f}', f'{100 * c["ap50%"]:.1f}'])
    rows.append(['average', f'{100 * avg["allAp"]:.1f}',
                 f'{100 * avg["allAp50%"]:.1f}'])
    table = AsciiTable(rows)
    table.inner_footing_row_border = True
    return table.table


def _match_task(task) -> dict:
    gt_path, label_ids, scores, masks = task
    gt = read_gt(gt_path)
    if masks and isinstance(masks[0], str):
        # official results format: PNG paths; like the official script,
        # only masks of evaluated labels are decoded
        masks = [_read_mask(p, gt.shape) if int(lab) in LABEL_IDS
                 else None for lab, p in zip(label_ids, masks)]
    return match_image(gt, label_ids, scores, masks)


def _read_mask(path: str, shape: Tuple[int, int]) -> Optional[CropMask]:
    size, crop = read_mask_crop(path)
    if size != shape:
        raise CitymaskError(
            f'{path} is {size[1]}x{size[0]}, its ground truth '
            f'{shape[1]}x{shape[0]}: masks must have the image\'s size')
    return crop


def match_frames(tasks: Sequence[tuple], nproc: int = 1) -> List[dict]:
    """:func:`match_image` of every frame, in ``nproc`` processes.

    Each task is ``(gt_path, label_ids, scores, masks)`` where ``masks`` are
    :func:`crop_masks` outputs or paths of predicted mask PNGs.
    """
    tasks = list(tasks)
    if nproc > 1 and len(tasks) > 1:
        # fork: workers only run numpy / cv2 / pycocotools code
        ctx = multiprocessing.get_context(
            'fork' if hasattr(os, 'fork') else 'spawn')
        with ctx.Pool(min(nproc, len(tasks))) as pool:
            return pool.map(_match_task, tasks,
                            chunksize=max(1, len(tasks) // (4 * nproc)))
    return [_match_task(t) for t in tasks]


def evaluate(tasks: Sequence[tuple], nproc: int = 1) -> dict:
    """The official result (:func:`summarize`) of :func:`match_frames`."""
    return summarize(evaluate_matches(match_frames(tasks, nproc)))
