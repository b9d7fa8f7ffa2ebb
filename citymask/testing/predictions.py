"""Predictions made from ground truth, to test and benchmark the evaluator
against the official one on every rule it has."""
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..classes import (INSTANCE_ID_FACTOR, LABEL_IDS, VOID_IDS,
                       label_of_instance_id)

# scores from a short list, so ties are common
SCORES = np.round(np.linspace(0.05, 0.95, 10), 2)


def _shifted(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return cv2.warpAffine(mask.astype(np.uint8), np.float32(
        [[1, 0, dx], [0, 1, dy]]), mask.shape[::-1],
        flags=cv2.INTER_NEAREST).astype(bool)


def _morph(mask: np.ndarray, k: int) -> np.ndarray:
    if k == 0:
        return mask
    op = cv2.dilate if k > 0 else cv2.erode
    return op(mask.astype(np.uint8), np.ones((2 * abs(k) + 1,) * 2,
                                             np.uint8)).astype(bool)


def make_predictions(gt: np.ndarray, rng: np.random.Generator,
                     n_false: int = 10
                     ) -> Tuple[List[int], List[float], List[np.ndarray]]:
    """Label ids, scores and full-size boolean masks for one frame:
    near-perfect, shifted, eroded and dilated masks (IoU across all
    thresholds), duplicates, wrong labels, masks on group regions and void,
    non-evaluated labels, empty masks, tied scores."""
    labels, scores, masks = [], [], []

    def add(label, mask):
        labels.append(int(label))
        scores.append(float(rng.choice(SCORES)))
        masks.append(mask)

    for inst in np.unique(gt):
        lab = label_of_instance_id(inst)
        if lab not in LABEL_IDS:
            continue
        region = gt == inst
        if inst < INSTANCE_ID_FACTOR:  # a group region: sometimes a thing
            if rng.random() < 0.5:
                add(lab, _morph(region, int(rng.integers(-1, 2))))
            continue
        if rng.random() < 0.15:
            continue  # missed
        pred = _shifted(_morph(region, int(rng.integers(-3, 4))),
                        int(rng.integers(-4, 5)), int(rng.integers(-3, 4)))
        wrong = rng.random() < 0.1
        add(rng.choice(LABEL_IDS) if wrong else lab, pred)
        if rng.random() < 0.2:  # duplicate
            add(lab, _shifted(region, int(rng.integers(-6, 7)), 0))
    h, w = gt.shape
    void = np.isin(gt, VOID_IDS)
    for _ in range(n_false):
        kind = rng.random()
        mask = np.zeros((h, w), bool)
        if kind < 0.3 and void.any():  # on void (e.g. ego vehicle)
            ys, xs = np.nonzero(void)
            i = rng.integers(len(ys))
            mask[max(0, ys[i] - 20):ys[i] + 20,
                 max(0, xs[i] - 30):xs[i] + 30] = True
        elif kind < 0.9:  # background false positive
            y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
            mask[y:y + int(rng.integers(5, 120)),
                 x:x + int(rng.integers(5, 160))] = True
        # else: an empty mask
        lab = 29 if rng.random() < 0.05 else rng.choice(LABEL_IDS)
        add(lab, mask)
    return labels, scores, masks


def metric_samples(gt_files: Sequence[str], rng: np.random.Generator,
                   n_false: int = 6, preds_per_image: Optional[int] = None,
                   device: str = 'cpu') -> Iterator[dict]:
    """:func:`make_predictions` of each ``*_gtFine_instanceIds.png`` as
    the samples a metric's ``process`` gets: ``img_path``, ``ori_shape``,
    ``pred_instances`` (labels as indices into ``CLASSES``, scores, masks
    on ``device``). ``preds_per_image``: about that many (``n_false`` set
    per frame)."""
    import torch

    from ..evaluation.mask_png import read_gt
    for g in gt_files:
        gt = read_gt(g)
        if preds_per_image is not None:
            n_things = int((np.unique(gt) >= INSTANCE_ID_FACTOR).sum())
            n_false = max(0, preds_per_image - int(1.1 * n_things))
        labels, scores, masks = make_predictions(gt, rng, n_false=n_false)
        keep = [i for i, lab in enumerate(labels) if lab in LABEL_IDS]
        masks = (np.stack([masks[i] for i in keep]) if keep else
                 np.zeros((0, *gt.shape), bool))
        pred = dict(labels=torch.tensor([LABEL_IDS.index(labels[i])
                                         for i in keep], dtype=torch.long),
                    scores=torch.tensor([scores[i] for i in keep]),
                    masks=torch.from_numpy(masks))
        yield dict(img_path=g.replace('gtFine_instanceIds', 'leftImg8bit')
                   .replace('/gtFine/', '/leftImg8bit/'), ori_shape=gt.shape,
                   pred_instances={k: v.to(device) for k, v in pred.items()})
