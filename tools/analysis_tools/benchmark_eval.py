"""Benchmark citymask's Cityscapes instance evaluator against the official
one and mmdet's CityScapesMetric, on a generated val-like set.

Prints one table: results (every AP must be equal) and times of
  1. mmdet's CityScapesMetric (process + compute: PNG per instance, then the
     official script) vs citymask's CityscapesInstanceMetric,
  2. the official script vs tools/analysis_tools/eval_cityscapes.py on the
     same results folder (both decode the PNGs),
and the time to read one mask PNG (as mmdet writes it with OpenCV, and
re-saved with PIL as detectron2 writes it) by PIL, OpenCV and citymask.

Example (the docs/benchmarks.md setting):
    python tools/analysis_tools/benchmark_eval.py --num-images 200
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time
from glob import glob

import numpy as np
import torch

import citymask.register  # noqa: F401
from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.evaluation import evaluate
from citymask.classes import LABEL_IDS
from citymask.evaluation.cityscapes_instance import read_gt
from citymask.evaluation.metrics import CityscapesInstanceMetric
from citymask.testing.official import run_official
from citymask.evaluation.results_format import find_gt_files, read_results
from citymask.testing.predictions import make_predictions


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-images', type=int, default=200)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--preds', type=int, default=60,
                        help='about this many predictions per image')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--work-dir', help='keep files here (default: tmp)')
    return parser.parse_args()


def samples(gt_files, preds_per_image, classes):
    """Yield mmdet-style data samples (full-size masks) one at a time."""
    rng = np.random.default_rng(0)
    for g in gt_files:
        gt = read_gt(g)
        n_things = len([i for i in np.unique(gt) if i >= 1000])
        labels, scores, masks = make_predictions(
            gt, rng, n_false=max(0, preds_per_image - int(1.1 * n_things)))
        keep = [i for i, lab in enumerate(labels) if lab in LABEL_IDS]
        img = g.replace('/gtFine/', '/leftImg8bit/').replace(
            'gtFine_instanceIds', 'leftImg8bit')
        yield dict(
            img_path=img, ori_shape=gt.shape,
            pred_instances=dict(
                labels=torch.tensor([LABEL_IDS.index(labels[i])
                                     for i in keep]),
                scores=torch.tensor([scores[i] for i in keep]),
                masks=torch.from_numpy(np.stack([masks[i] for i in keep]))))


def run_metric(metric, gt_files, preds, classes):
    metric.dataset_meta = dict(classes=classes)
    t_process = 0.0
    n_preds = 0
    for s in samples(gt_files, preds, classes):
        n_preds += len(s['pred_instances']['labels'])
        t = time.perf_counter()
        metric.process({}, [s])
        t_process += time.perf_counter() - t
    t = time.perf_counter()
    res = metric.evaluate(len(gt_files))
    return res, t_process, time.perf_counter() - t, n_preds


def mask_read_times(res_dir, work, n=300):
    """ms per mask PNG: (writer, PIL as the official script, cv2, ours)."""
    import cv2
    from PIL import Image

    from citymask.evaluation.mask_png import read_mask_crop, read_pred_mask
    files = sorted(glob(osp.join(res_dir, '**', '*.png'),
                        recursive=True))[:n]
    pil_dir = osp.join(work, 'pil_masks')
    os.makedirs(pil_dir, exist_ok=True)
    pil_files = []
    for f in files:
        pil_files.append(osp.join(pil_dir, osp.basename(f)))
        Image.fromarray(cv2.imread(f, cv2.IMREAD_UNCHANGED)).save(
            pil_files[-1])
    readers = [read_pred_mask,
               lambda f: cv2.imread(f, cv2.IMREAD_UNCHANGED),
               read_mask_crop]
    rows = []
    for writer, group in (('OpenCV (mmdet)', files),
                          ('PIL (detectron2)', pil_files)):
        times = []
        for read in readers:
            t = time.perf_counter()
            for f in group:
                read(f)
            times.append(1000 * (time.perf_counter() - t) / len(group))
        rows.append((writer, *times))
    return rows


def main():
    args = parse_args()
    from mmdet.datasets import CityscapesDataset
    from mmdet.evaluation import CityScapesMetric
    classes = CityscapesDataset.METAINFO['classes']
    work = args.work_dir or tempfile.mkdtemp(prefix='benchmark_eval_')
    root = osp.join(work, 'cityscapes')
    t = time.perf_counter()
    if not osp.isdir(osp.join(root, 'gtFine')):
        make_mini_cityscapes(root, dict(val=args.num_images), args.width,
                             args.height, seed=0, empty_every=0,
                             things_range=(15, 26))
    gt_files = find_gt_files(osp.join(root, 'gtFine', 'val'))
    n_gt = sum(len([i for i in np.unique(read_gt(g)) if i >= 1000])
               for g in gt_files[:20]) / min(20, len(gt_files))
    print(f'{len(gt_files)} images {args.width}x{args.height}, ~{n_gt:.0f} '
          f'GT instances each (generated in {time.perf_counter() - t:.0f}s)')

    res_dir = osp.join(work, 'mmdet_results')
    os.makedirs(res_dir, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(work)  # the official script writes matches.json here
    try:
        theirs, tp_a, tc_a, n_preds = run_metric(
            CityScapesMetric(outfile_prefix=res_dir,
                             seg_prefix=osp.join(root, 'gtFine', 'val')),
            gt_files, args.preds, classes)
    finally:
        os.chdir(cwd)
    ours, tp_b, tc_b, _ = run_metric(
        CityscapesInstanceMetric(nproc=args.nproc), gt_files, args.preds,
        classes)

    t = time.perf_counter()
    official = run_official(gt_files, res_dir, work)
    t_off = time.perf_counter() - t
    t = time.perf_counter()
    tasks, _ = read_results(gt_files, res_dir)
    cli = evaluate(tasks, args.nproc)
    t_cli = time.perf_counter() - t

    a = np.array(official['resultApMatrix'])
    b = np.array(cli['resultApMatrix'])
    same_cli = bool(np.array_equal(np.isnan(a), np.isnan(b)) and
                    np.nanmax(np.abs(a - b)) <= 1e-12)
    same_metric = all(abs(ours[k] - theirs[k]) <= 1e-12 for k in ours)
    n = len(gt_files)
    rows = [
        ('mmdet CityScapesMetric', tp_a, tc_a, theirs['cityscapes/mAP']),
        ('citymask CityscapesInstanceMetric', tp_b, tc_b,
         ours['cityscapes/mAP']),
    ]
    print(f'\n{n} images, {n_preds / n:.0f} predictions per image, '
          f'nproc={args.nproc}\n')
    print(f'{"evaluator":36s} {"process s":>10s} {"compute s":>10s} '
          f'{"total s":>9s} {"ms/img":>8s} {"mask AP":>9s}')
    for name, tp, tc, ap in rows:
        print(f'{name:36s} {tp:10.2f} {tc:10.2f} {tp + tc:9.2f} '
              f'{1000 * (tp + tc) / n:8.1f} {ap:9.4f}')
    print(f'{"official script (results folder)":36s} {"":>10s} '
          f'{t_off:10.2f} {t_off:9.2f} {1000 * t_off / n:8.1f} '
          f'{official["averages"]["allAp"]:9.4f}')
    print(f'{"eval_cityscapes.py (same folder)":36s} {"":>10s} '
          f'{t_cli:10.2f} {t_cli:9.2f} {1000 * t_cli / n:8.1f} '
          f'{cli["averages"]["allAp"]:9.4f}')
    print(f'\nmetric speed-up: {(tp_a + tc_a) / (tp_b + tc_b):.1f}x, '
          f'identical: {same_metric}')
    print(f'CLI speed-up: {t_off / t_cli:.1f}x, identical: {same_cli}')
    print(f'\nreading one {args.width}x{args.height} mask PNG, ms '
          '(first 300 masks of the results folder)')
    print(f'{"written by":18s} {"PIL":>8s} {"OpenCV":>8s} {"citymask":>9s}')
    for writer, t_pil, t_cv2, t_ours in mask_read_times(res_dir, work):
        print(f'{writer:18s} {t_pil:8.2f} {t_cv2:8.2f} {t_ours:9.2f}')
    if not (same_metric and same_cli):
        sys.exit(1)


if __name__ == '__main__':
    main()
