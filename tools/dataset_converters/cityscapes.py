"""Convert raw Cityscapes (leftImg8bit + gtFine) to COCO-style JSON for mmdet.

Example:
    python tools/dataset_converters/cityscapes.py data/cityscapes --nproc 8

Light imports only: the workers re-import this script.
"""
import argparse
import os.path as osp
import sys
import time

from citymask.cli import exit_on_error
from citymask.datasets.cityscapes_converter import (SPLITS, convert_cityscapes,
                                                    resolve_nproc)


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('cityscapes_root',
                        help='folder holding leftImg8bit/ and gtFine/')
    parser.add_argument('-o', '--out-dir',
                        help='output folder (default: ROOT/annotations)')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes (0: one per available core; '
                        'more than the available cores is capped)')
    parser.add_argument('--mask-format', choices=['polygon', 'rle'],
                        default='polygon', help='polygon: vertices from '
                        'gtFine_polygons.json (fast training); rle: bitmaps '
                        'from instanceIds.png')
    parser.add_argument('--splits', nargs='+', default=list(SPLITS),
                        choices=SPLITS)
    args = parser.parse_args()
    out_dir = args.out_dir or osp.join(args.cityscapes_root, 'annotations')
    nproc, note = resolve_nproc(args.nproc)
    if note:
        print(f'note: {note}', file=sys.stderr)
    start = time.perf_counter()
    written = convert_cityscapes(args.cityscapes_root, out_dir, args.splits,
                                 args.mask_format, nproc)
    for split, path in written.items():
        print(f'{split}: {path}' + ' (image list only: test ground truth is '
              'not public)' * (split == 'test'))
    print(f'converted in {time.perf_counter() - start:.1f} s '
          f'(--nproc {nproc})')


if __name__ == '__main__':
    main()
