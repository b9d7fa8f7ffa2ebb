"""Pictures of results: the per-class AP chart, error analysis plots,
and training curves."""
import json
import os
import os.path as osp
from typing import List, Sequence

from .fileio import atomic_path


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def plot_class_ap(result: dict, path: str) -> str:
    """Bar chart of mask AP and AP50 per class (official result dict)."""
    plt, avg = _pyplot(), result['averages']
    names = list(avg['classes'])
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for shift, key, label in ((-0.2, 'ap', 'AP'), (0.2, 'ap50%', 'AP50')):
        ax.bar([i + shift for i in range(len(names))],
               [100 * avg['classes'][n][key] for n in names], 0.4, label=label)
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set(ylabel='%', ylim=(0, 100), title=f'Cityscapes mask AP '
           f'{100 * avg["allAp"]:.1f}, AP50 {100 * avg["allAp50%"]:.1f}')
    ax.legend()
    return _save(fig, plt, path)


def read_scalars(work_dir: str) -> List[dict]:
    """mmengine's ``vis_data/scalars.json`` (one JSON per line) of a run;
    the newest run in ``work_dir`` if several."""
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isfile(osp.join(work_dir, d, 'vis_data',
                                         'scalars.json')))
    if not runs:
        from .errors import CitymaskError
        raise CitymaskError(
            f'no */vis_data/scalars.json under {work_dir}: not a training '
            'work dir (or the run logged nothing yet)')
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(records: Sequence[dict], keys: Sequence[str],
                path: str) -> str:
    """One panel per key (loss, lr, cityscapes/mAP, ...) against iteration.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.6 * len(keys)),
                             dpi=100, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        points = {r['step']: r[key] for r in records if key in r}
        ax.plot(list(points), list(points.values()),
                marker='o' if len(points) < 20 else None)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel('iteration')
    return _save(fig, plt, path)


def plot_errors(analysis: dict, path: str) -> str:
    """Per class: true positives, false positives, forgiven predictions
    and misses by size, as stacked bars (:mod:`citymask.evaluation.analysis`
    output)."""
    plt, classes = _pyplot(), list(analysis['classes'].values())
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), dpi=100)
    # predictions: what each became; ground truth: found, or missed by size
    predictions = [('TP', [c['tp'] for c in classes]),
                   ('FP duplicate', [c['fp_duplicate'] for c in classes]),
                   ('FP other', [c['fp'] - c['fp_duplicate'] for c in classes])
                   ] + [(f'forgiven: {k}', [c['forgiven'][k] for c in classes])
                        for k in classes[0]['forgiven']]
    truth = [('found', [c['tp'] for c in classes])] + [
        (f'missed {b}', [c['missed'][b] for c in classes])
        for b in analysis['size_bins']]
    titles = (f'predictions (score >= {analysis["score_thr"]}, '
              f'IoU > {analysis["iou_thr"]})', 'ground-truth instances')
    x = range(len(classes))
    for ax, parts, title in zip(axes, (predictions, truth), titles):
        bottom = [0] * len(classes)
        for label, values in parts:
            ax.bar(x, values, 0.7, bottom=bottom, label=label)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_title(title)
        ax.set_xticks(x, list(analysis['classes']), rotation=30)
        ax.legend(fontsize=8)
    return _save(fig, plt, path)


def plot_confusion(analysis: dict, path: str) -> str:
    """The mask-IoU confusion matrix, rows normalised, counts written in
    the cells."""
    import numpy as np
    plt, conf = _pyplot(), analysis['confusion']
    counts = np.asarray(conf['counts'], float)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=100)
    im = ax.imshow(share, cmap='Blues', vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, int(n), ha='center', va='center', fontsize=8,
                    color='white' if share[i, j] > 0.5 else 'black')
    ax.set_xticks(range(len(conf['cols'])), conf['cols'], rotation=45,
                  ha='right')
    ax.set_yticks(range(len(conf['rows'])), conf['rows'])
    ax.set(xlabel='predicted', ylabel='ground truth', title=(
        f'confusion at mask IoU > {analysis["iou_thr"]} '
        f'(score >= {analysis["score_thr"]}; row share)'))
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, plt, path)


def _save(fig, plt, path: str) -> str:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png')
    plt.close(fig)
    return path
