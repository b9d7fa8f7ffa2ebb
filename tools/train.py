"""Train a citymask / mmdet config with the mmengine Runner: mmdet's
tools/train.py flags. Multi-GPU: tools/dist_train.sh."""
import argparse

from citymask.cli import exit_on_error, parse_tool_args
from citymask.config import load_config
from citymask.preflight import check_checkpoint, check_data, check_work_dir
from citymask.runner_setup import setup_train, train, use_tensorboard


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr to the real batch size '
                        '(configs are for 8 images per iteration)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CHECKPOINT, or without a value from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--tensorboard', action='store_true',
        help='also log to TensorBoard (loss curves, metrics, validation '
        'images with predictions) in WORK_DIR/TIMESTAMP/vis_data')
    parser.add_argument('--amp', nargs='?', const='fp16',
                        choices=['fp16', 'bf16'],
                        help='automatic mixed precision (needs a GPU): fp16 '
                        '(the default, with dynamic loss scaling) or bf16')
    return parse_tool_args(parser)  # + --cfg-options, --launcher


@exit_on_error
def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg = setup_train(cfg, args.config, work_dir=args.work_dir,
                      amp=args.amp, auto_scale_lr=args.auto_scale_lr,
                      resume=args.resume, launcher=args.launcher)
    if args.tensorboard:
        use_tensorboard(cfg)
    check_data(cfg, 'train_dataloader', 'val_dataloader')
    check_work_dir(cfg.work_dir)
    check_checkpoint(cfg, cfg.get('load_from'), resume=bool(cfg.get('resume')))
    train(cfg, args.launcher)


if __name__ == '__main__':
    main()
