"""Check a GPU machine for citymask and measure it: one table.

Rows: mmcv's CUDA ops (nms, RoIAlign forward / backward, fp16, bf16)
against the CPU; training img/s, data-wait share and peak memory of the
stock mmdet Cityscapes config vs citymask's fine-tune config, fp32 vs AMP
fp16, at the config's multi-scale on generated 2048x1024 frames; inference
latency at 1024x2048, batch 1, fp32 vs fp16; the Cityscapes metric on masks
on the GPU vs mmdet's CityScapesMetric, same predictions. Exit 1 if a CUDA
op disagrees with the CPU or the metrics disagree.

On a machine without a GPU the same command runs every row that can run on
the CPU at the size given (use a tiny one) and prints the others as not
measured.

Examples:
    python tools/gpu_check.py                     # a GPU node, ~5 minutes
    python tools/gpu_check.py --device cpu --width 256 --height 128 \\
        --num-images 2 --iters 2 --warmup 1 --infer-iters 2 \\
        --metric-images 2 --workers 0            # smoke run on a CPU
"""
import argparse
import os.path as osp
import sys
import tempfile

from citymask.cli import exit_on_error
from citymask.testing.mini_cityscapes import add_scene_args

FT = osp.join(osp.dirname(osp.abspath(__file__)), '..', 'configs',
              'maskrcnn_r50_fpn_cityscapes_ft.py')


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--config', default=FT,
                        help='citymask config to time (default: the '
                        'fine-tune config)')
    parser.add_argument('--device', default=None,
                        help='cuda or cpu (default: cuda if torch sees a '
                        'GPU)')
    parser.add_argument('--work-dir', help='generated frames (reused; '
                        'default: a new temporary folder)')
    parser.add_argument('--num-images', type=int, default=16,
                        help='generated training frames (default: 16)')
    parser.add_argument('--batch-size', type=int,
                        help="images per iteration (default: the config's)")
    parser.add_argument('--workers', type=int, default=4,
                        help='data loader workers (default: 4)')
    parser.add_argument('--iters', type=int, default=50,
                        help='timed training iterations (default: 50)')
    parser.add_argument('--warmup', type=int, default=10,
                        help='untimed iterations first (default: 10)')
    parser.add_argument('--infer-iters', type=int, default=50,
                        help='timed inference images (default: 50)')
    parser.add_argument('--metric-images', type=int, default=20,
                        help='frames for the metric rows (default: 20)')
    add_scene_args(parser, distribution=False)
    args = parser.parse_args()
    for flag in ('num_images', 'iters', 'infer_iters', 'metric_images',
                 'width', 'height'):
        if getattr(args, flag) < 1:
            parser.error(f'--{flag.replace("_", "-")} must be at least 1')
    if args.warmup < 0 or args.workers < 0:
        parser.error('--warmup and --workers must be 0 or more')
    return args


@exit_on_error
def main():
    args = parse_args()
    import torch  # after --help

    import citymask.register  # noqa: F401
    from citymask.benchmarking import format_table, gpu_check
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    name = (torch.cuda.get_device_name(device)
            if device.startswith('cuda') else 'CPU')
    print(f'{name}, torch {torch.__version__}, {args.width}x{args.height}')
    rows = gpu_check(
        args.work_dir or tempfile.mkdtemp(prefix='gpu_check_'), device,
        config=args.config, num_images=args.num_images, width=args.width,
        height=args.height, iters=args.iters, warmup=args.warmup,
        infer_iters=args.infer_iters, metric_images=args.metric_images,
        workers=args.workers, batch_size=args.batch_size)
    print()
    print(format_table(rows))
    if any(r.ok is False for r in rows):
        sys.exit(1)


if __name__ == '__main__':
    main()
