"""Test a checkpoint: official Cityscapes instance AP (per-class table and
chart), COCO-style AP, or a benchmark-server submission (--format-only).

Same flags as mmdet's tools/test.py, plus --split test.
"""
import argparse
import os

from mmengine.config import DictAction

from citymask.config import (check_checkpoint, check_data, check_work_dir,
                             load_config, setup_test)
from citymask.errors import exit_on_error


def parse_args():
    parser = argparse.ArgumentParser(description='Test a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where metrics and logs go')
    parser.add_argument('--out', help='dump raw predictions to a .pkl')
    parser.add_argument('--show-dir', help='write prediction overlays '
                        '(Cityscapes palette) to WORK_DIR/TIMESTAMP/SHOW_DIR')
    parser.add_argument('--split', choices=['val', 'test'], default='val',
                        help='test: the test split (with --format-only)')
    parser.add_argument('--format-only', action='store_true',
                        help='write the Cityscapes submission, no AP')
    parser.add_argument('--outfile-prefix',
                        help='folder for --format-only results (a .zip of '
                        'it is written next to it)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


@exit_on_error
def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg = setup_test(cfg, args.config, args.checkpoint, args.work_dir,
                     args.out, args.show_dir, args.format_only,
                     args.outfile_prefix, args.split, args.launcher)
    check_data(cfg, 'test_dataloader')
    check_work_dir(cfg.work_dir)
    check_checkpoint(cfg, args.checkpoint)

    from mmengine.dist import get_rank
    from mmengine.runner import Runner

    from citymask.evaluation.results_format import zip_results
    runner = Runner.from_cfg(cfg)
    runner.test()
    if args.format_only and get_rank() == 0:
        print(f'submission: {zip_results(args.outfile_prefix)} (upload to '
              'the Cityscapes benchmark server)')


if __name__ == '__main__':
    main()
