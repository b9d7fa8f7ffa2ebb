"""Cityscapes instance-level evaluation, a drop-in for the official script.

Same numbers as cityscapesscripts' evalInstanceLevelSemanticLabeling, from
the same inputs (official results format), in parallel, writing nothing
but --out.

Example:
    python tools/analysis_tools/eval_cityscapes.py \
        data/cityscapes/gtFine/val work_dirs/results --out result.json
"""
import argparse
import os

from citymask.cli import exit_on_error
from citymask.evaluation import evaluate, format_table
from citymask.evaluation.results_format import find_gt_files, read_results
from citymask.fileio import dump_json_atomic


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('gt_dir', help='searched recursively for '
                        '*_gtFine_instanceIds.png, e.g. gtFine/val')
    parser.add_argument('results_dir', help='predictions in the official '
                        'format: <image>_pred.txt + mask PNGs')
    parser.add_argument('--out', help='write the official result JSON here')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    return parser.parse_args()


@exit_on_error
def main():
    args = parse_args()
    gt_files = find_gt_files(args.gt_dir)
    tasks, missing = read_results(gt_files, args.results_dir)
    if missing:
        print(f'warning: {len(missing)} of {len(gt_files)} images have no '
              'prediction file; counted as images without predictions')
    result = evaluate(tasks, max(1, args.nproc))
    print(format_table(result))
    if args.out:
        dump_json_atomic(result, args.out)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
