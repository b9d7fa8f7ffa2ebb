"""Pictures of results: the per-class AP chart and training curves."""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

from .fileio import atomic_path


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def plot_class_ap(result: dict, path: str) -> str:
    """Bar chart of mask AP and AP50 per class (official result dict)."""
    plt = _pyplot()
    classes = result['averages']['classes']
    names = list(classes)
    ap = [100 * classes[n]['ap'] for n in names]
    ap50 = [100 * classes[n]['ap50%'] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], ap, 0.4, label='AP')
    ax.bar([i + 0.2 for i in x], ap50, 0.4, label='AP50')
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30)
    ax.set_ylabel('%')
    avg = result['averages']
    ax.set_title(f'Cityscapes mask AP {100 * avg["allAp"]:.1f}, '
                 f'AP50 {100 * avg["allAp50%"]:.1f}')
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png')
    plt.close(fig)
    return path


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
        points: Dict[int, float] = {
            r['step']: r[key] for r in records if key in r}
        ax.plot(list(points), list(points.values()),
                marker='o' if len(points) < 20 else None)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel('iteration')
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png')
    plt.close(fig)
    return path
