"""Benchmark citymask's Cityscapes instance evaluator against the official
one and mmdet's CityScapesMetric, on a generated val-like set.

Prints, for one set of frames and predictions (results must be identical,
else exit 1):
  1. the metric: mmdet's CityScapesMetric (process: a PNG per instance;
     compute: the official script) vs citymask's CityscapesInstanceMetric,
     in one process;
  2. per results-folder writer (the folder mmdet's metric wrote, with
     mmcv.imwrite / OpenCV; the same masks re-saved with OpenCV's
     cv2.imwrite and with PIL as detectron2 saves them):
     a. whole processes: tools/analysis_tools/eval_cityscapes.py vs the
        official script's own main() (its ground-truth cache kept in the
        work folder), wall time, start-up included;
     b. steady state in one process: citymask's evaluate() per frame
        (second of two runs), 1 and --nproc processes;
     c. where that time goes (1 process): ground truth decoding, mask PNG
        decoding, matching, AP;
  3. reading one mask PNG of each writer with PIL, OpenCV and citymask.

Example (the docs/benchmarks.md settings):
    python tools/analysis_tools/benchmark_eval.py --num-images 50 --nproc 2
    python tools/analysis_tools/benchmark_eval.py --num-images 50 --nproc 2 \
        --distribution cityscapes
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from glob import glob

import numpy as np

from citymask.testing.mini_cityscapes import add_scene_args

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The official script as a whole process: its own main(), with the
# ground-truth cache it keeps next to itself (site-packages) moved to the
# work folder. On numpy 2 it needs what citymask.compat's
# official_instance_evaluator() gives it (np.in1d, removed in numpy 2.4;
# a JSON writer for numpy integers), repeated here because citymask.compat
# imports torch, which would add seconds to the official side's start-up.
OFFICIAL_MAIN = (
    'import json, sys\n'
    'import numpy as np\n'
    'from cityscapesscripts.evaluation import '
    'evalInstanceLevelSemanticLabeling as official\n'
    'if not hasattr(np, "in1d"):\n'
    '    np.in1d = lambda a, b, **k: np.isin(np.ravel(a), b, **k)\n'
    'def write(obj, path):\n'
    '    with open(path, "w") as f:\n'
    '        json.dump(obj, f, sort_keys=True, indent=4, default=lambda o: '
    'o.item() if isinstance(o, np.generic) else o.__dict__)\n'
    'official.writeDict2JSON = write\n'
    'official.args.gtInstancesFile = sys.argv.pop(1)\n'
    'official.main()\n')
# row names of the mask reading table, per writer
WRITERS = {'mmdet': 'OpenCV (mmdet)', 'opencv': 'OpenCV (cv2.imwrite)',
           'pil': 'PIL (detectron2)'}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-images', type=int, default=50)
    parser.add_argument('--preds', type=int, default=60,
                        help='about this many predictions per image')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--writers', nargs='+', default=list(WRITERS),
                        choices=list(WRITERS))
    parser.add_argument('--work-dir', help='keep files here (default: tmp)')
    add_scene_args(parser)
    return parser.parse_args()


def run_metric(metric, gt_files, preds, classes):
    """The results, seconds in ``process`` (all frames) and in
    ``evaluate``, and the number of predictions of ``metric``."""
    from citymask.testing.predictions import metric_samples
    metric.dataset_meta = dict(classes=classes)
    t_process, n_preds = 0.0, 0
    for s in metric_samples(gt_files, np.random.default_rng(0),
                            preds_per_image=preds):
        n_preds += len(s['pred_instances']['labels'])
        t = time.perf_counter()
        metric.process({}, [s])
        t_process += time.perf_counter() - t
    t = time.perf_counter()
    results = metric.evaluate(len(gt_files))
    return results, t_process, time.perf_counter() - t, n_preds


def rewrite_folder(src, dst, writer):
    """The results folder ``src`` with every mask PNG re-saved by
    ``writer`` as 0/255 8-bit grey, with the writer's default settings."""
    import cv2
    from PIL import Image
    os.makedirs(dst, exist_ok=True)
    for f in sorted(os.listdir(src)):
        if f.endswith('.txt'):
            shutil.copy(osp.join(src, f), osp.join(dst, f))
        elif f.endswith('.png'):
            mask = (cv2.imread(osp.join(src, f), cv2.IMREAD_UNCHANGED) != 0)
            mask = mask.astype(np.uint8) * 255
            if writer == 'opencv':
                cv2.imwrite(osp.join(dst, f), mask)
            else:  # detectron2's CityscapesInstanceEvaluator
                Image.fromarray(mask).save(osp.join(dst, f))


def whole_processes(root, res_dir, work, nproc):
    """Wall seconds of the two CLIs as processes, and their results."""
    gt_dir = osp.join(root, 'gtFine', 'val')
    out = osp.join(work, 'citymask.json')
    env = dict(os.environ, PYTHONPATH=REPO + (
        os.pathsep + os.environ['PYTHONPATH']
        if os.environ.get('PYTHONPATH') else ''))
    t = time.perf_counter()
    subprocess.run([sys.executable, osp.join(
        REPO, 'tools', 'analysis_tools', 'eval_cityscapes.py'), gt_dir,
        res_dir, '--out', out, '--nproc', str(nproc)], env=env, check=True,
        capture_output=True)
    t_ours = time.perf_counter() - t
    official_dir = osp.join(work, 'official')
    os.makedirs(official_dir, exist_ok=True)
    export = osp.join(root, 'evaluationResults',
                      'resultInstanceLevelSemanticLabeling.json')
    if osp.exists(export):
        os.remove(export)
    env.update(CITYSCAPES_DATASET=root, CITYSCAPES_RESULTS=res_dir)
    t = time.perf_counter()
    subprocess.run([sys.executable, '-c', OFFICIAL_MAIN,
                    osp.join(official_dir, 'gtInstances.json')],
                   cwd=official_dir, env=env, check=True, capture_output=True)
    t_official = time.perf_counter() - t
    results = []
    for path in (out, export):
        with open(path) as f:
            results.append(json.load(f))
    return t_ours, t_official, results[0], results[1]


def same_ap(a, b):
    a = np.array(a['resultApMatrix'], float)
    b = np.array(b['resultApMatrix'], float)
    return bool(np.array_equal(np.isnan(a), np.isnan(b)) and
                np.nanmax(np.abs(a - b)) <= 1e-12)


def steady_state(tasks, nproc):
    """ms per frame of the second of two evaluate() runs."""
    from citymask.evaluation import evaluate
    evaluate(tasks, nproc)
    t = time.perf_counter()
    result = evaluate(tasks, nproc)
    return 1000 * (time.perf_counter() - t) / len(tasks), result


def profile(tasks):
    """ms per frame in each stage of one process's evaluation."""
    from citymask.evaluation.cityscapes_instance import (evaluate_matches,
                                                         match_image, read_gt,
                                                         summarize)
    from citymask.evaluation.results_format import read_masks
    times = dict(gt=0.0, masks=0.0, match=0.0, ap=0.0)
    matches = []
    for task in tasks:
        t0 = time.perf_counter()
        gt = read_gt(task.gt_path)
        t1 = time.perf_counter()
        masks = read_masks(task.mask_paths, task.label_ids, gt.shape)
        t2 = time.perf_counter()
        matches.append(match_image(gt, task.label_ids, task.scores, masks))
        t3 = time.perf_counter()
        times['gt'] += t1 - t0
        times['masks'] += t2 - t1
        times['match'] += t3 - t2
    t = time.perf_counter()
    summarize(evaluate_matches(matches))
    times['ap'] = time.perf_counter() - t
    return {k: 1000 * v / len(tasks) for k, v in times.items()}


def mask_read_times(folder, n=300):
    """ms per mask PNG: PIL as the official script, OpenCV, citymask."""
    import cv2

    from citymask.evaluation.mask_png import read_mask_crop, read_pred_mask
    files = sorted(glob(osp.join(folder, '*.png')))[:n]
    readers = [read_pred_mask,
               lambda f: cv2.imread(f, cv2.IMREAD_UNCHANGED),
               read_mask_crop]
    times = []
    for read in readers:
        t = time.perf_counter()
        for f in files:
            read(f)
        times.append(1000 * (time.perf_counter() - t) / len(files))
    return times


def main():
    args = parse_args()
    # heavy imports here: --help stays fast
    from mmdet.datasets import CityscapesDataset
    from mmdet.evaluation import CityScapesMetric

    import citymask.register  # noqa: F401
    from citymask.compat import official_instance_evaluator
    from citymask.evaluation.cityscapes_instance import read_gt
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    from citymask.evaluation.results_format import find_gt_files, read_results
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    from citymask.testing.official import run_official
    classes = CityscapesDataset.METAINFO['classes']
    work = args.work_dir or tempfile.mkdtemp(prefix='benchmark_eval_')
    root = osp.join(work, 'cityscapes')
    t = time.perf_counter()
    if not osp.isdir(osp.join(root, 'gtFine')):
        make_mini_cityscapes(root, dict(val=args.num_images), args.width,
                             args.height, seed=0, empty_every=0,
                             things_range=(15, 26),
                             distribution=args.distribution)
    gt_files = find_gt_files(osp.join(root, 'gtFine', 'val'))
    n = len(gt_files)
    n_gt = sum(len([i for i in np.unique(read_gt(g)) if i >= 1000])
               for g in gt_files) / n
    print(f'{n} images {args.width}x{args.height} ({args.distribution} '
          f'distribution), {n_gt:.1f} GT instances each (generated in '
          f'{time.perf_counter() - t:.0f}s)')

    # mmdet writes its results folder to OUTFILE_PREFIX/results, masks as
    # 0/1 PNGs with mmcv.imwrite (OpenCV)
    folders = {'mmdet': osp.join(work, 'results_mmdet', 'results')}
    cwd = os.getcwd()
    os.chdir(work)  # the official script writes matches.json here
    try:
        with official_instance_evaluator():  # numpy >= 2.4
            theirs, tp_a, tc_a, n_preds = run_metric(
                CityScapesMetric(outfile_prefix=osp.dirname(folders['mmdet']),
                                 seg_prefix=osp.join(root, 'gtFine', 'val')),
                gt_files, args.preds, classes)
    finally:
        os.chdir(cwd)
    ours, tp_b, tc_b, _ = run_metric(
        CityscapesInstanceMetric(nproc=args.nproc), gt_files, args.preds,
        classes)
    shared = set(ours) & set(theirs)  # mAP, AP@50 (+ per class)
    same_metric = bool(shared) and all(
        abs(ours[k] - theirs[k]) <= 1e-12 for k in shared)
    print(f'{n_preds / n:.0f} predictions per image, nproc={args.nproc}\n')
    print(f'{"metric":36s} {"process s":>10s} {"compute s":>10s} '
          f'{"total s":>9s} {"ms/img":>8s} {"mask AP":>9s}')
    for name, tp, tc, ap in (
            ('mmdet CityScapesMetric', tp_a, tc_a, theirs['cityscapes/mAP']),
            ('citymask CityscapesInstanceMetric', tp_b, tc_b,
             ours['cityscapes/mAP'])):
        print(f'{name:36s} {tp:10.2f} {tc:10.2f} {tp + tc:9.2f} '
              f'{1000 * (tp + tc) / n:8.1f} {ap:9.4f}')
    print(f'metric speed-up: {(tp_a + tc_a) / (tp_b + tc_b):.1f}x, '
          f'identical: {same_metric}\n')

    for writer in args.writers:
        if writer != 'mmdet':
            folders[writer] = osp.join(work, f'results_{writer}')
            rewrite_folder(folders['mmdet'], folders[writer], writer)
    # the in-process reference for every writer's folder
    official = run_official(gt_files, folders['mmdet'],
                            osp.join(work, 'official_in_process'))
    print(f'{"writer":22s} {"CLI s":>7s} {"official s":>11s} '
          f'{"speed-up":>9s} {"ms/img 1 proc":>14s} '
          f'{f"ms/img {args.nproc} proc":>14s} {"mask AP":>8s}')
    same_cli, profiles = True, {}
    for writer in args.writers:
        t_cli, t_off, cli, off = whole_processes(
            root, folders[writer], osp.join(work, f'process_{writer}'),
            args.nproc)
        tasks, _ = read_results(gt_files, folders[writer])
        ms1, res1 = steady_state(tasks, 1)
        msn, resn = steady_state(tasks, args.nproc)
        same_cli &= all(same_ap(r, official) for r in (cli, off, res1, resn))
        profiles[writer] = profile(tasks)
        print(f'{WRITERS[writer]:22s} {t_cli:7.2f} {t_off:11.2f} '
              f'{t_off / t_cli:8.1f}x {ms1:14.1f} {msn:14.1f} '
              f'{cli["averages"]["allAp"]:8.4f}')
    print(f'CLI results identical to the official script: {same_cli}')

    print('\nwhere one process spends its time, ms per image')
    print(f'{"writer":22s} {"read GT":>8s} {"read masks":>11s} '
          f'{"match":>7s} {"AP":>6s} {"total":>7s}')
    for writer, p in profiles.items():
        print(f'{WRITERS[writer]:22s} {p["gt"]:8.1f} {p["masks"]:11.1f} '
              f'{p["match"]:7.1f} {p["ap"]:6.1f} {sum(p.values()):7.1f}')

    print(f'\nreading one {args.width}x{args.height} mask PNG, ms '
          '(first 300 masks of each folder)')
    print(f'{"written by":22s} {"PIL":>8s} {"OpenCV":>8s} {"citymask":>9s}')
    for writer in args.writers:
        t_pil, t_cv2, t_ours = mask_read_times(folders[writer])
        print(f'{WRITERS[writer]:22s} {t_pil:8.2f} {t_cv2:8.2f} '
              f'{t_ours:9.2f}')
    if not (same_metric and same_cli):
        sys.exit(1)


if __name__ == '__main__':
    main()
