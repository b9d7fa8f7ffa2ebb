"""Benchmark citymask's Cityscapes instance evaluator against the official
script and mmdet's CityScapesMetric on generated frames and predictions
(the tables: docs/benchmarks.md). Exit 1 unless every AP is the official
one to 1e-12.

Example:
    python tools/analysis_tools/benchmark_eval.py --num-images 50 --nproc 2 \\
        --distribution cityscapes
"""
import json
import os
import os.path as osp
import sys
import tempfile
import time
from glob import glob

import numpy as np
from bench_utils import REPO, make_parser, run_tool, table

# The official main(), its ground-truth cache in the work folder, made to
# run on numpy 2 as citymask.compat's official_instance_evaluator() does
# (not imported: citymask.compat imports torch, seconds of start-up)
OFFICIAL_MAIN = '''import json, sys
import numpy as np
import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as ev
np.in1d = getattr(np, 'in1d', lambda a, b, **k: np.isin(np.ravel(a), b, **k))
ev.writeDict2JSON = lambda obj, path: json.dump(obj, open(path, 'w'),
    default=lambda o: o.item() if isinstance(o, np.generic) else o.__dict__)
ev.args.gtInstancesFile = sys.argv.pop(1)
ev.main()
'''
WRITERS = {'mmdet': 'OpenCV (mmdet)', 'opencv': 'OpenCV (cv2.imwrite)',
           'pil': 'PIL (detectron2)'}


def run_metric(metric, gt_files, args):
    """Results, seconds in ``process`` and ``evaluate``, predictions."""
    from mmdet.datasets import CityscapesDataset

    from citymask.testing.predictions import metric_samples
    metric.dataset_meta = CityscapesDataset.METAINFO
    seconds, n_preds = np.zeros(2), 0
    for s in metric_samples(gt_files, np.random.default_rng(0),
                            preds_per_image=args.preds):
        n_preds += len(s['pred_instances']['labels'])
        t = time.perf_counter()
        metric.process({}, [s])
        seconds[0] += time.perf_counter() - t
    t = time.perf_counter()
    results = metric.evaluate(len(gt_files))
    seconds[1] = time.perf_counter() - t
    return results, seconds, n_preds


def rewrite_folder(src, dst, writer):
    """``src`` with its mask PNGs re-saved as 0/255 by ``writer``."""
    import cv2
    from PIL import Image
    os.makedirs(dst, exist_ok=True)
    for f in sorted(os.listdir(src)):
        if f.endswith('.txt'):
            os.link(osp.join(src, f), osp.join(dst, f))
        elif f.endswith('.png'):
            mask = (cv2.imread(osp.join(src, f), -1) != 0).astype('u1') * 255
            if writer == 'opencv':
                cv2.imwrite(osp.join(dst, f), mask)
            else:  # detectron2's CityscapesInstanceEvaluator
                Image.fromarray(mask).save(osp.join(dst, f))


def whole_processes(root, res_dir, work, nproc):
    """Wall seconds of the two CLIs as processes, and their results."""
    os.makedirs(work, exist_ok=True)
    out = osp.join(work, 'citymask.json')
    t_ours = run_tool(f'{REPO}/tools/analysis_tools/eval_cityscapes.py',
                      osp.join(root, 'gtFine', 'val'), res_dir, '--out', out,
                      '--nproc', str(nproc))
    export = osp.join(root, 'evaluationResults',
                      'resultInstanceLevelSemanticLabeling.json')
    if osp.exists(export):
        os.remove(export)
    t_official = run_tool('-c', OFFICIAL_MAIN, 'gtInstances.json', cwd=work,
                          env=dict(CITYSCAPES_DATASET=root,
                                   CITYSCAPES_RESULTS=res_dir))
    results = []
    for path in (out, export):
        with open(path) as f:
            results.append(json.load(f))
    return t_ours, t_official, results


def profile(tasks):
    """ms per frame reading the GT, reading the masks, matching, AP."""
    from citymask.evaluation.cityscapes_instance import (evaluate_matches,
                                                         match_image, read_gt,
                                                         summarize)
    from citymask.evaluation.results_format import read_masks
    times, matches = np.zeros(4), []
    for task in tasks:
        t0 = time.perf_counter()
        gt = read_gt(task.gt_path)
        t1 = time.perf_counter()
        masks = read_masks(task.mask_paths, task.label_ids, gt.shape)
        t2 = time.perf_counter()
        matches.append(match_image(gt, task.label_ids, task.scores, masks))
        times[:3] += t1 - t0, t2 - t1, time.perf_counter() - t2
    t = time.perf_counter()
    summarize(evaluate_matches(matches))
    times[3] = time.perf_counter() - t
    return 1000 * times / len(tasks)


def mask_read_ms(folder, n=300):
    """ms per mask PNG: PIL as the official script, OpenCV, citymask."""
    import cv2

    from citymask.evaluation.mask_png import read_mask_crop, read_pred_mask
    files = sorted(glob(osp.join(folder, '*.png')))[:n]
    out = []
    for read in (read_pred_mask, lambda f: cv2.imread(f, -1), read_mask_crop):
        t = time.perf_counter()
        for f in files:
            read(f)
        out.append(f'{1000 * (time.perf_counter() - t) / len(files):.2f}')
    return out


def main():
    parser = make_parser(__doc__, 50)
    parser.add_argument('--preds', type=int, default=60,
                        help='about this many predictions per image')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--writers', nargs='+', default=list(WRITERS),
                        choices=list(WRITERS))
    args = parser.parse_args()
    from mmdet.evaluation import CityScapesMetric

    import citymask.register  # noqa: F401
    from citymask.compat import official_instance_evaluator
    from citymask.evaluation import evaluate
    from citymask.evaluation.cityscapes_instance import read_gt
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    from citymask.evaluation.results_format import find_gt_files, read_results
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    from citymask.testing.official import run_official
    work = osp.abspath(args.work_dir or tempfile.mkdtemp(prefix='bench_'))
    root = osp.join(work, 'cityscapes')
    if not osp.isdir(osp.join(root, 'gtFine')):
        make_mini_cityscapes(root, dict(val=args.num_images), args.width,
                             args.height, seed=0, empty_every=0,
                             things_range=(15, 26),
                             distribution=args.distribution)
    gt_files = find_gt_files(osp.join(root, 'gtFine', 'val'))
    # mmdet writes OUTFILE_PREFIX/results, masks as 0/1 PNGs (OpenCV)
    folders = {'mmdet': osp.join(work, 'results_mmdet', 'results')}
    os.chdir(work)  # the official script writes matches.json here
    with official_instance_evaluator():  # numpy >= 2.4
        theirs, mmdet_s, n_preds = run_metric(CityScapesMetric(
            outfile_prefix=osp.dirname(folders['mmdet']),
            seg_prefix=osp.join(root, 'gtFine', 'val')), gt_files, args)
    ours, ours_s, _ = run_metric(CityscapesInstanceMetric(nproc=args.nproc),
                                 gt_files, args)
    shared = set(ours) & set(theirs)  # mAP, AP@50 (+ per class)
    ok = bool(shared) and all(abs(ours[k] - theirs[k]) <= 1e-12
                              for k in shared)
    n = len(gt_files)
    n_gt = sum((np.unique(read_gt(g)) >= 1000).sum() for g in gt_files) / n
    print(f'{n} images {args.width}x{args.height} ({args.distribution}), '
          f'{n_gt:.1f} GT instances and {n_preds / n:.0f} predictions each, '
          f'nproc={args.nproc}')
    metrics = (('mmdet CityScapesMetric', mmdet_s, theirs),
               ('citymask CityscapesInstanceMetric', ours_s, ours))
    table(['metric', 'process s', 'compute s', 'total s', 'ms/img',
           'mask AP'], [[name, f'{s[0]:.2f}', f'{s[1]:.2f}', f'{s.sum():.2f}',
                         f'{1000 * s.sum() / n:.1f}',
                         f'{res["cityscapes/mAP"]:.4f}']
                        for name, s, res in metrics])
    print(f'metric speed-up: {mmdet_s.sum() / ours_s.sum():.1f}x, '
          f'identical: {ok}')

    official = np.array(run_official(gt_files, folders['mmdet'], osp.join(
        work, 'official_in_process'))['resultApMatrix'], float)
    clis, profiles, same = [], [], True
    for writer in args.writers:
        if writer != 'mmdet':
            folders[writer] = osp.join(work, f'results_{writer}')
            rewrite_folder(folders['mmdet'], folders[writer], writer)
        t_cli, t_off, results = whole_processes(
            root, folders[writer], osp.join(work, f'process_{writer}'),
            args.nproc)
        tasks, _ = read_results(gt_files, folders[writer])
        steady = []  # ms per frame of the second of two runs
        for k in (1, args.nproc):
            evaluate(tasks, k)
            t = time.perf_counter()
            results.append(evaluate(tasks, k))
            steady.append(1000 * (time.perf_counter() - t) / n)
        for ap in (np.array(r['resultApMatrix'], float) for r in results):
            same &= bool(np.array_equal(np.isnan(ap), np.isnan(official))
                         and np.nanmax(np.abs(ap - official)) <= 1e-12)
        clis.append([WRITERS[writer], f'{t_cli:.2f}', f'{t_off:.2f}',
                     f'{t_off / t_cli:.1f}x'] + [f'{ms:.1f}' for ms in steady]
                    + [f'{results[0]["averages"]["allAp"]:.4f}'])
        p = profile(tasks)
        profiles.append([WRITERS[writer], *(f'{t:.1f}' for t in p),
                         f'{p.sum():.1f}'])
    table(['writer', 'CLI s', 'official s', 'speed-up', 'ms/img 1 proc',
           f'ms/img {args.nproc} proc', 'mask AP'], clis)
    print(f'CLI results identical to the official script: {same}\n\nwhere '
          'one process spends its time, ms per image')
    table(['writer', 'read GT', 'read masks', 'match', 'AP', 'total'],
          profiles)
    print(f'\nreading one {args.width}x{args.height} mask PNG, ms (first 300 '
          'masks of each folder)')
    table(['written by', 'PIL', 'OpenCV', 'citymask'],
          [[WRITERS[w]] + mask_read_ms(folders[w]) for w in args.writers])
    sys.exit(not (ok and same))


if __name__ == '__main__':
    main()
