"""Test a checkpoint: official Cityscapes instance AP (per-class table and
chart), COCO-style AP, or a benchmark-server submission (--format-only).
Same flags as mmdet's tools/test.py, plus --split test."""
import argparse
import os.path as osp

from citymask.cli import end_distributed, exit_on_error, parse_tool_args
from citymask.config import dataset_of, load_config
from citymask.preflight import (check_checkpoint, check_data,
                                check_test_outputs, check_work_dir)
from citymask.runner_setup import setup_test, show_dir_written_whole


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
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an --outfile-prefix folder that is '
                        'not empty')
    return parse_tool_args(parser)  # + --cfg-options, --launcher


@exit_on_error
def main():
    args = parse_args()
    cfg = setup_test(load_config(args.config, args.cfg_options),
                     args.config, args.checkpoint,
                     work_dir=args.work_dir, out=args.out,
                     show_dir=args.show_dir, format_only=args.format_only,
                     outfile_prefix=args.outfile_prefix, split=args.split,
                     launcher=args.launcher)
    check_data(cfg, 'test_dataloader')
    check_test_outputs(cfg.work_dir, out=args.out, show_dir=args.show_dir,
                       outfile_prefix=(args.outfile_prefix
                                       if args.format_only else None),
                       overwrite=args.overwrite)
    if args.format_only:
        cfg.test_evaluator.overwrite = args.overwrite
    check_checkpoint(cfg, args.checkpoint)
    check_work_dir(cfg.work_dir)  # last: it creates the work dir

    from mmengine.dist import get_rank
    from mmengine.runner import Runner

    import citymask.register  # noqa: F401  (stack fixes, citymask modules)
    from citymask.evaluation.submission import zip_results
    runner = Runner.from_cfg(cfg)
    with show_dir_written_whole(runner, args.show_dir):
        runner.test()
        rank = get_rank()
        end_distributed()  # first: a refused submission must not hang
    if args.format_only and rank == 0:
        # zipped only if it passes the check (every image, valid masks)
        ds = dataset_of(cfg.test_dataloader)
        images = osp.join(ds.get('data_root') or '', ds.data_prefix.img)
        print(f'submission: {zip_results(args.outfile_prefix, images)} '
              '(checked; upload to the Cityscapes benchmark server)')


if __name__ == '__main__':
    main()
