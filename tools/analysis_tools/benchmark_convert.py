"""Benchmark the Cityscapes converter for several --nproc on generated frames.

Times ``tools/dataset_converters/cityscapes.py`` as users run it (a new
process each time, start-up and worker start included) on generated
full-size frames with ground truth, checks that every --nproc writes the
same JSON, and projects the time for Cityscapes' 5000 frames.

Example (the docs/benchmarks.md setting):
    python tools/analysis_tools/benchmark_convert.py --num-frames 11 \
        --nproc 1 2 16
"""
import argparse
import hashlib
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

from citymask.testing.mini_cityscapes import add_scene_args

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'cityscapes.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-frames', type=int, default=11,
                        help='generated train frames (with ground truth)')
    parser.add_argument('--nproc', type=int, nargs='+', default=[1, 2, 16])
    parser.add_argument('--repeat', type=int, default=3,
                        help='runs per --nproc (the median is reported)')
    parser.add_argument('--mask-format', choices=['polygon', 'rle'],
                        default='polygon')
    parser.add_argument('--project-frames', type=int, default=5000,
                        help='frames to project the time for (Cityscapes: '
                        '2975 train + 500 val + 1525 test)')
    parser.add_argument('--project-cores', type=int, default=16)
    parser.add_argument('--work-dir', help='keep the frames here')
    add_scene_args(parser)
    return parser.parse_args()


def generate(root, args):
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    if not osp.isdir(osp.join(root, 'leftImg8bit')):
        make_mini_cityscapes(root, dict(train=args.num_frames), args.width,
                             args.height, seed=0,
                             distribution=args.distribution)


def convert(root, out, nproc, mask_format):
    """Seconds one run of the converter tool takes, and its JSON's digest.
    """
    path = os.environ.get('PYTHONPATH')
    env = dict(os.environ,
               PYTHONPATH=REPO + (os.pathsep + path if path else ''))
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, TOOL, root, '-o', out, '--nproc', str(nproc),
         '--splits', 'train', '--mask-format', mask_format], env=env,
        capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        sys.exit(f'the converter failed (--nproc {nproc}):\n{res.stderr}')
    with open(osp.join(out, 'instancesonly_filtered_gtFine_train.json'),
              'rb') as f:
        return seconds, hashlib.sha256(f.read()).hexdigest()


def main():
    args = parse_args()
    from citymask.datasets.cityscapes_converter import (available_cores,
                                                        resolve_nproc)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or tmp
        root = osp.join(work, f'cityscapes_{args.distribution}_'
                        f'{args.num_frames}_{args.width}x{args.height}')
        generate(root, args)
        times = {nproc: [] for nproc in args.nproc}
        digests = set()
        # round robin: a shared machine's load drifts alike for every nproc
        for _ in range(args.repeat):
            for nproc in args.nproc:
                secs, digest = convert(root, osp.join(work, f'out_{nproc}'),
                                       nproc, args.mask_format)
                times[nproc].append(secs)
                digests.add(digest)
        rows = [(nproc, min(resolve_nproc(nproc)[0], args.num_frames),
                 statistics.median(t), t) for nproc, t in times.items()]
    cores = available_cores()
    base = rows[0][2]
    print(f'{args.num_frames} generated frames {args.width}x{args.height} '
          f'({args.distribution} distribution) with ground truth, '
          f'--mask-format {args.mask_format}, '
          f'{cores} available cores, median of {args.repeat} runs:\n')
    print(f'{"--nproc":>7}  {"workers":>7}  {"wall s":>6}  {"frames/s":>8}  '
          f'{"vs first":>8}  runs s')
    for nproc, workers, med, times in rows:
        print(f'{nproc:>7}  {workers:>7}  {med:6.2f}  '
              f'{args.num_frames / med:8.2f}  {med / base:7.2f}x  ' +
              ' '.join(f'{t:.2f}' for t in times))
    # per-core rates: of one worker (no contention between workers) and of
    # the run with the most workers that have a core each; start-up included
    fits = [r for r in rows if r[1] <= cores]
    for label, (nproc, workers, med, _) in (
            ('one worker', rows[0]),
            ('every core', max(fits, key=lambda r: (r[1], -r[2])))):
        per_core = args.num_frames / med / workers
        minutes = args.project_frames / (per_core * args.project_cores) / 60
        print(f'projected from {label} (--nproc {nproc}, {per_core:.2f} '
              f'frames/s per core): {args.project_frames} frames on '
              f'{args.project_cores} cores in {minutes:.1f} min')
    print('(scaled linearly; every frame counted as one with ground truth)')
    print(f'identical output for every --nproc: {len(digests) == 1}')
    if len(digests) != 1:
        sys.exit(1)


if __name__ == '__main__':
    main()
