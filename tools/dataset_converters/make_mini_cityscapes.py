"""Generate a mini Cityscapes tree (leftImg8bit + gtFine) for tests and demos.

Example (``cityscapes``: approximate published Cityscapes statistics):
    python tools/dataset_converters/make_mini_cityscapes.py data/mini \
        --train 20 --val 8 --test 4 [--distribution cityscapes]
"""
import argparse
import os.path as osp
import time

from citymask.cli import exit_on_error
from citymask.errors import CitymaskError
from citymask.fileio import check_writable
from citymask.testing.mini_cityscapes import (add_scene_args,
                                              make_mini_cityscapes)


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_root', help='folder to write the tree into')
    for split, n in (('train', 8), ('val', 4), ('test', 2)):
        parser.add_argument(f'--{split}', type=int, default=n,
                            help=f'{split} images')
    parser.add_argument('--seed', type=int, default=0)
    add_scene_args(parser)
    args = parser.parse_args()
    counts = dict(train=args.train, val=args.val, test=args.test)
    if min(counts.values()) < 0 or args.height < 64 or args.width < 64:
        raise CitymaskError(
            'image counts must be >= 0 and --height/--width >= 64')
    if osp.exists(osp.join(args.out_root, 'leftImg8bit')):
        raise CitymaskError(
            f'{args.out_root} already holds a Cityscapes tree; choose a new '
            'folder (nothing was overwritten)')
    check_writable(args.out_root, 'dir', what='output folder', overwrite=True)
    start = time.time()
    written = make_mini_cityscapes(args.out_root, counts, args.width,
                                   args.height, args.seed,
                                   distribution=args.distribution)
    print(f'wrote {sum(map(len, written.values()))} images ({args.width}x'
          f'{args.height}, {args.distribution}) to {args.out_root} in '
          f'{time.time() - start:.1f}s: ' +
          ', '.join(f'{k} {len(v)}' for k, v in written.items()))


if __name__ == '__main__':
    main()
