"""Plot loss / lr / AP curves of a training run from its work dir."""
import argparse
import os.path as osp

from citymask.cli import exit_on_error
from citymask.errors import CitymaskError
from citymask.fileio import check_writable
from citymask.visualization import plot_curves, read_scalars


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('work_dir')
    parser.add_argument('--keys', nargs='+',
                        default=['loss', 'lr', 'cityscapes/mAP'])
    parser.add_argument('--out', help='PNG path (default WORK_DIR/curves.png)')
    args = parser.parse_args()
    out = args.out or osp.join(args.work_dir, 'curves.png')
    check_writable(out, what='--out')
    records = read_scalars(args.work_dir)
    keys = [k for k in args.keys if any(k in r for r in records)]
    if not keys:
        raise CitymaskError(f'none of {args.keys} was logged in '
                            f'{args.work_dir}')
    print(f'wrote {plot_curves(records, keys, out)} ({", ".join(keys)})')


if __name__ == '__main__':
    main()
