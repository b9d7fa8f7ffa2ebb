"""Turn a COCO Mask R-CNN checkpoint into a Cityscapes one (8 classes).

Shared classes' rows are copied; mmdet, maskrcnn-benchmark and detectron2
(.pkl/.pth) checkpoints are read safely."""
import argparse

from citymask.cli import exit_on_error
from citymask.fileio import check_writable
from citymask.surgery import FORMATS, RIDER_INITS


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='COCO Mask R-CNN checkpoint (.pth/.pkl)')
    parser.add_argument('dst', help='output mmdet checkpoint (.pth)')
    parser.add_argument('--src-format', choices=('auto', ) + FORMATS,
                        default='auto')
    parser.add_argument('--rider-init', choices=RIDER_INITS, default='random',
                        help='rider has no COCO class: random init or a '
                        'copy of person')
    parser.add_argument('--force', action='store_true',
                        help='overwrite dst if it exists')
    args = parser.parse_args()
    from citymask.surgery import convert_file, mapping_table  # torch
    check_writable(args.dst, what='output checkpoint')
    fmt = None if args.src_format == 'auto' else args.src_format
    info = convert_file(args.src, args.dst, fmt, args.rider_init, args.force)
    if info['changed']:
        print(f'{args.src} ({info["format"]}): COCO heads -> Cityscapes '
              f'heads\n{mapping_table(args.rider_init)}')
    else:
        print(f'{args.src} already has Cityscapes heads: nothing to change '
              '(copied as is)')
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
