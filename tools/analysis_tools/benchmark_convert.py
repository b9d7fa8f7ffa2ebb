"""Benchmark the Cityscapes converter for several --nproc on generated frames.

Times tools/dataset_converters/cityscapes.py as users run it (a new process
per run, round robin, the median), checks that every --nproc writes the
same JSON (else exit 1) and projects the time for --project-frames.

Example:
    python tools/analysis_tools/benchmark_convert.py --num-frames 11 \\
        --nproc 1 2 16
"""
import hashlib
import os.path as osp
import statistics
import sys
import tempfile

from bench_utils import REPO, at_least, make_parser, run_tool, table

TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'cityscapes.py')


def main():
    parser = make_parser(__doc__, 11, flag='--num-frames')
    parser.add_argument('--nproc', type=at_least(1), nargs='+',
                        default=[1, 2, 16])
    parser.add_argument('--repeat', type=at_least(1), default=3,
                        help='runs per --nproc (default: 3)')
    parser.add_argument('--mask-format', choices=['polygon', 'rle'],
                        default='polygon')
    parser.add_argument('--project-frames', type=int, default=5000,
                        help='Cityscapes: 2975 train, 500 val, 1525 test')
    parser.add_argument('--project-cores', type=int, default=16)
    args = parser.parse_args()
    from citymask.datasets.cityscapes_converter import (available_cores,
                                                        resolve_nproc)
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    work = args.work_dir or tempfile.mkdtemp(prefix='benchmark_convert_')
    root = osp.join(work, f'cityscapes_{args.distribution}_'
                    f'{args.num_frames}_{args.width}x{args.height}')
    if not osp.isdir(osp.join(root, 'leftImg8bit')):
        make_mini_cityscapes(root, dict(train=args.num_frames), args.width,
                             args.height, seed=0,
                             distribution=args.distribution)
    times = {nproc: [] for nproc in args.nproc}
    digests = set()
    for _ in range(args.repeat):  # round robin: load drifts alike for all
        for nproc in args.nproc:
            out = osp.join(work, f'out_{nproc}')
            times[nproc].append(run_tool(
                TOOL, root, '-o', out, '--nproc', str(nproc), '--splits',
                'train', '--mask-format', args.mask_format))
            with open(osp.join(out, 'instancesonly_filtered_gtFine_train.'
                               'json'), 'rb') as f:
                digests.add(hashlib.sha256(f.read()).hexdigest())
    cores = available_cores()
    rows = [(nproc, min(resolve_nproc(nproc)[0], args.num_frames),
             statistics.median(t), t) for nproc, t in times.items()]
    print(f'{args.num_frames} generated frames {args.width}x{args.height} '
          f'({args.distribution}), --mask-format {args.mask_format}, '
          f'{cores} available cores, median of {args.repeat} runs')
    table(['--nproc', 'workers', 'wall s', 'frames/s', 'vs first', 'runs s'],
          [[n, w, f'{med:.2f}', f'{args.num_frames / med:.2f}',
            f'{med / rows[0][2]:.2f}x', ' '.join(f'{t:.2f}' for t in ts)]
           for n, w, med, ts in rows])
    # per-core rates of one worker and of the most workers with a core each
    fits = [r for r in rows if r[1] <= cores]
    for label, (nproc, workers, med, _) in (
            ('one worker', rows[0]),
            ('every core', max(fits, key=lambda r: (r[1], -r[2])))):
        per_core = args.num_frames / med / workers
        minutes = args.project_frames / (per_core * args.project_cores) / 60
        print(f'projected from {label} (--nproc {nproc}, {per_core:.2f} '
              f'frames/s per core): {args.project_frames} frames on '
              f'{args.project_cores} cores in {minutes:.1f} min')
    print(f'identical output for every --nproc: {len(digests) == 1}')
    sys.exit(len(digests) != 1)


if __name__ == '__main__':
    main()
