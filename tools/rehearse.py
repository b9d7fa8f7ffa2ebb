"""Rehearse the whole job with the real tools on generated frames (convert,
stand-in checkpoint, surgery, train, test, submission, check, infer).

Examples: python tools/rehearse.py (CPU size, make demo); --iters 2
--frames 4 2 1 (about 2 min); --gpus 8 --batch-size 8 (8 images per GPU).
"""
import argparse

from citymask.cli import exit_on_error
from citymask.errors import CitymaskError
from citymask.rehearsal import rehearse


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add = parser.add_argument
    add('--work-dir', default='work_dirs/rehearsal',
        help='emptied first if a rehearsal wrote it')
    add('--gpus', type=int, default=0,
        help='GPUs: the main config at full size, AMP (default 0: CPU size)')
    add('--iters', type=int,
        help='training iterations (default 300 on CPU, 200 on GPUs)')
    add('--frames', type=int, nargs=3, metavar='N',
        help='frames to generate for train, val, test (default 48 12 4 on '
        'CPU, 50 10 5 on GPUs)')
    add('--batch-size', type=int,
        help="training images per GPU (default: config's)")
    add('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='for train, test, submission and infer')
    args = parser.parse_args()
    given = [args.iters, args.batch_size, *(args.frames or [])]
    if args.gpus < 0 or any(n is not None and n < 1 for n in given):
        raise CitymaskError('--gpus must be >= 0; --iters, --frames and '
                            '--batch-size >= 1')
    rehearse(args.work_dir, args.gpus, iters=args.iters, frames=args.frames,
             batch_size=args.batch_size, cfg_options=args.cfg_options)


if __name__ == '__main__':
    main()
