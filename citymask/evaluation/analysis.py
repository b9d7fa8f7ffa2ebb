"""Why the AP is what it is: error analysis of the evaluator's matches
(``match_frames(..., cross_labels=True)``) at IoU 0.5, predictions scoring
at least ``score_thr``: per class the official rules' true and false
positives (duplicates too), *forgiven* predictions (mostly on void, a
``*group`` region or an instance under 100 px; counted under the largest
share) and misses by size; a confusion matrix by mask IoU; the frames with
most errors. Size bins are COCO's (< 32^2, < 96^2, larger) on full
resolution: ``small`` is 100..1023 px.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..classes import (CLASSES, IMG_SUFFIX, INSTANCE_ID_FACTOR,
                       INSTANCE_IDS_SUFFIX, LABEL_IDS)
from ..errors import CitymaskError
from ..fileio import dump_json_atomic
from .cityscapes_instance import MIN_REGION_SIZE

SIZE_BINS = (('small', MIN_REGION_SIZE, 32 ** 2), ('medium', 32 ** 2, 96 ** 2),
             ('large', 96 ** 2, None))
FORGIVEN = ('void', 'group', 'small')
# what write_analysis writes into a folder
ANALYSIS_JSON = 'cityscapes_analysis.json'
ERRORS_PNG = 'cityscapes_errors.png'
CONFUSION_PNG = 'cityscapes_confusion.png'


def size_bin(pixels: int) -> str:
    """The size bin of an instance of ``pixels`` pixels."""
    return next(name for name, _, high in SIZE_BINS
                if high is None or pixels < high)


def analyze_matches(matches: Sequence[dict],
                    frames: Optional[Sequence[str]] = None,
                    score_thr: float = 0.3, iou_thr: float = 0.5,
                    worst: int = 10) -> dict:
    """JSON-ready error analysis of a set's matches (``cross_labels``):
    per class counts, ``confusion``, the ``worst`` frames (named by
    ``frames``, default: index), the settings. ``score_thr``: predictions
    scoring less are left out (0 keeps all, as the AP; 0.3 is mmdet's
    confusion-matrix default); a match needs an IoU above ``iou_thr``.
    """
    if not 0 <= score_thr <= 1 or not 0 <= iou_thr < 1:
        raise CitymaskError(
            f'score threshold {score_thr} / IoU threshold {iou_thr}: '
            'both must lie in 0..1')
    if frames is None:
        frames = [str(i) for i in range(len(matches))]
    index = {lab: i for i, lab in enumerate(LABEL_IDS)}
    bins = [name for name, _, _ in SIZE_BINS]
    counts = {lab: dict(gt=0, tp=0, fp=0, fp_duplicate=0,
                        forgiven=dict.fromkeys(FORGIVEN, 0),
                        missed=dict.fromkeys(bins, 0),
                        gt_by_size=dict.fromkeys(bins, 0))
              for lab in LABEL_IDS}
    n_cls = len(LABEL_IDS)
    confusion = np.zeros((n_cls + 1, n_cls + 1), np.int64)  # + bg / missed
    per_frame = []
    for frame, m in zip(frames, matches):
        if 'xinter' not in m:
            raise CitymaskError('analyze_matches needs matches made with '
                                'cross_labels=True')
        rows, preds = m['gt'].tolist(), m['pred']
        kept = {p for p, r in enumerate(preds) if r[1] >= score_thr}
        # every overlap of a kept prediction with a GT region, any label
        touching: Dict[int, List[tuple]] = {p: [] for p in kept}
        for p, g, inter in list(m['inter']) + list(m['xinter']):
            if p in kept:
                inst, label, size = rows[g]
                iou = float(inter) / (size + preds[p][2] - inter)
                touching[p].append((g, inter, iou, label == preds[p][0]))
        eligible = [inst >= INSTANCE_ID_FACTOR and size >= MIN_REGION_SIZE
                    for inst, _, size in rows]
        found: Dict[int, int] = {}  # GT -> same-class predictions on it
        reached = set()  # GTs some prediction (any class) overlaps > thr
        frame_fp = 0
        for p in sorted(kept):
            label, _, pixels, void = preds[p]
            c = counts[label]
            same = [t for t in touching[p] if t[3]]
            best = max(same, key=lambda t: t[2], default=None)
            if best is not None and best[2] > iou_thr:
                g = best[0]
                if eligible[g]:
                    found[g] = found.get(g, 0) + 1
                    if found[g] > 1:
                        c['fp'] += 1
                        c['fp_duplicate'] += 1
                        frame_fp += 1
                else:  # on a group region or a tiny instance
                    c['forgiven'][
                        'group' if rows[g][0] < INSTANCE_ID_FACTOR
                        else 'small'] += 1
            else:
                # the official ignore rule: void, same-label groups and
                # tiny instances (a tiny group counts twice)
                shares = dict(void=void, group=0, small=0)
                for g, inter, _, _ in same:
                    if rows[g][0] < INSTANCE_ID_FACTOR:
                        shares['group'] += inter
                    if rows[g][2] < MIN_REGION_SIZE:
                        shares['small'] += inter
                if sum(shares.values()) / float(pixels) > iou_thr:
                    c['forgiven'][max(FORGIVEN, key=shares.get)] += 1
                else:
                    c['fp'] += 1
                    frame_fp += 1
            # confusion: the region of any class it overlaps most
            top = max(touching[p], key=lambda t: t[2], default=None)
            col = index[label]
            if top is not None and top[2] > iou_thr:
                if eligible[top[0]]:
                    reached.add(top[0])
                    confusion[index[rows[top[0]][1]], col] += 1
            elif void / float(pixels) <= iou_thr:
                confusion[n_cls, col] += 1
        frame_tp = frame_missed = 0
        for g, (inst, label, size) in enumerate(rows):
            if not eligible[g]:
                continue
            c = counts[label]
            c['gt'] += 1
            c['gt_by_size'][size_bin(size)] += 1
            if found.get(g):
                c['tp'] += 1
                frame_tp += 1
            else:
                c['missed'][size_bin(size)] += 1
                frame_missed += 1
            if g not in reached:
                confusion[index[label], n_cls] += 1
        per_frame.append(dict(image=frame, errors=frame_fp + frame_missed,
                              fp=frame_fp, missed=frame_missed, tp=frame_tp,
                              gt=sum(eligible)))
    per_frame.sort(key=lambda f: (-f['errors'], -f['gt'], f['image']))
    return dict(
        iou_thr=iou_thr,
        score_thr=score_thr,
        size_bins={name: [low, high] for name, low, high in SIZE_BINS},
        classes={name: counts[lab] for name, lab in zip(CLASSES, LABEL_IDS)},
        confusion=dict(rows=list(CLASSES) + ['background'],
                       cols=list(CLASSES) + ['missed'],
                       counts=confusion.tolist()),
        worst_images=[f for f in per_frame if f['errors']][:worst])


def format_analysis(analysis: dict) -> str:
    """The analysis as tables for the log."""
    from terminaltables import AsciiTable
    bins = analysis['size_bins']
    rows = [['class', 'GT', 'TP', 'FP', 'dup', 'fgv void', 'fgv group',
             'fgv small'] + [f'missed {b[0].upper()}' for b in bins]]
    for name, c in analysis['classes'].items():
        rows.append([name, c['gt'], c['tp'], c['fp'], c['fp_duplicate']] +
                    [c['forgiven'][k] for k in FORGIVEN] +
                    [f'{c["missed"][b]}/{c["gt_by_size"][b]}' for b in bins])
    sizes = ', '.join(
        f'{b[0].upper()} {lo}..{hi - 1}' if hi else f'{b[0].upper()} >= {lo}'
        for b, (lo, hi) in bins.items())
    out = [f'Errors at mask IoU > {analysis["iou_thr"]}, predictions scoring '
           f'>= {analysis["score_thr"]}. FP: false positives (dup: '
           'duplicates of a found instance); fgv: forgiven by the official '
           'rules, mostly on void / a *group region / an instance < '
           f'{MIN_REGION_SIZE} px; missed: misses / GT by size ({sizes} '
           'px):', AsciiTable(rows).table]
    conf = analysis['confusion']
    rows = [['true \\ predicted'] + conf['cols']]
    rows += [[r] + [str(v) for v in vals]
             for r, vals in zip(conf['rows'], conf['counts'])]
    out += ['Confusion by mask IoU (rows: ground truth; background: the '
            'prediction overlaps no instance):', AsciiTable(rows).table]
    if analysis['worst_images']:
        rows = [['image', 'errors', 'FP', 'missed', 'TP', 'GT']]
        rows += [[osp.basename(f['image']).replace(INSTANCE_IDS_SUFFIX, '')
                  .replace(IMG_SUFFIX, ''), f['errors'], f['fp'], f['missed'],
                  f['tp'], f['gt']] for f in analysis['worst_images']]
        out += ['Frames with the most errors:', AsciiTable(rows).table]
    return '\n'.join(out)


def write_analysis(analysis: dict, folder: str,
                   plots: bool = True) -> List[str]:
    """Write ``cityscapes_analysis.json`` (and, with ``plots``, the error
    bars and confusion matrix PNGs) into ``folder``; the paths written."""
    paths = [osp.join(folder, ANALYSIS_JSON)]
    dump_json_atomic(analysis, paths[0])
    if plots:
        from ..visualization import plot_confusion, plot_errors
        paths.append(plot_errors(analysis, osp.join(folder, ERRORS_PNG)))
        paths.append(plot_confusion(analysis, osp.join(folder, CONFUSION_PNG)))
    return paths
