"""Convert raw Cityscapes (leftImg8bit + gtFine) to COCO-style JSON for mmdet.

Example:
    python tools/dataset_converters/cityscapes.py data/cityscapes \
        -o data/cityscapes/annotations --nproc 8
"""
import argparse
import os.path as osp

from citymask.datasets.cityscapes_converter import SPLITS, convert_cityscapes
from citymask.cli import exit_on_error


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('cityscapes_root',
                        help='folder holding leftImg8bit/ and gtFine/')
    parser.add_argument('-o', '--out-dir',
                        help='output folder (default: ROOT/annotations)')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes')
    parser.add_argument('--mask-format', choices=['polygon', 'rle'],
                        default='polygon',
                        help='polygon: vertices from gtFine_polygons.json '
                        '(fast training); rle: bitmaps from instanceIds.png')
    parser.add_argument('--splits', nargs='+', default=list(SPLITS),
                        choices=SPLITS)
    return parser.parse_args()


@exit_on_error
def main():
    args = parse_args()
    out_dir = args.out_dir or osp.join(args.cityscapes_root, 'annotations')
    written = convert_cityscapes(args.cityscapes_root, out_dir, args.splits,
                                 args.mask_format, max(1, args.nproc))
    for split, path in written.items():
        note = (' (image list only: test ground truth is not public)'
                if split == 'test' else '')
        print(f'{split}: {path}{note}')


if __name__ == '__main__':
    main()
