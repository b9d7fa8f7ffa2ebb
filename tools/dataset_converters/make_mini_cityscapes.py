"""Generate a mini Cityscapes tree (leftImg8bit + gtFine) for tests and demos.

Example:
    python tools/dataset_converters/make_mini_cityscapes.py data/mini \
        --train 20 --val 8 --test 4
"""
import argparse
import os.path as osp
import time

from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.cli import exit_on_error
from citymask.errors import CitymaskError


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_root', help='folder to write the tree into')
    parser.add_argument('--train', type=int, default=8, help='train images')
    parser.add_argument('--val', type=int, default=4, help='val images')
    parser.add_argument('--test', type=int, default=2, help='test images')
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


@exit_on_error
def main():
    args = parse_args()
    counts = dict(train=args.train, val=args.val, test=args.test)
    if min(counts.values()) < 0 or args.height < 64 or args.width < 64:
        raise CitymaskError(
            'image counts must be >= 0 and --height/--width >= 64')
    if osp.exists(osp.join(args.out_root, 'leftImg8bit')):
        raise CitymaskError(
            f'{args.out_root} already holds a Cityscapes tree; choose a new '
            'folder (nothing was overwritten)')
    start = time.time()
    written = make_mini_cityscapes(args.out_root, counts, args.width,
                                   args.height, args.seed)
    n = sum(len(v) for v in written.values())
    print(f'wrote {n} images ({args.width}x{args.height}) to {args.out_root} '
          f'in {time.time() - start:.1f}s: ' +
          ', '.join(f'{k} {len(v)}' for k, v in written.items()))


if __name__ == '__main__':
    main()
