"""Rehearse the main job on this node: data, conversion, checkpoint, surgery,
dist_train.sh, dist_test.sh, a submission and inference, at full size on
every visible GPU, in minutes; one table at the end.

Example (the first thing to run on a new GPU node):
    python tools/rehearse.py
    python tools/rehearse.py --data data/cityscapes \
        --checkpoint checkpoints/mask_rcnn_r50_fpn_1x_coco.pth --budget 20
"""
import argparse

from citymask.cli import exit_on_error
from citymask.rehearsal import rehearse


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/rehearsal',
                        help='where everything goes (a folder an earlier '
                        'rehearsal wrote is emptied first)')
    parser.add_argument('--data', help='a real Cityscapes root: its first '
                        'frames are used (default: generated frames)')
    parser.add_argument('--checkpoint', help='the model zoo COCO Mask R-CNN '
                        '.pth (default: a stand-in with random weights)')
    parser.add_argument('--budget', type=float,
                        help='minutes to fit in; frame and iteration counts '
                        'scale with it (default: 8 on GPUs, 1.5 on a CPU)')
    parser.add_argument('--device', choices=['auto', 'cuda', 'cpu'],
                        default='auto',
                        help='auto: every visible GPU, else the CPU size')
    return parser.parse_args()


@exit_on_error
def main():
    args = parse_args()
    rehearse(args.device, args.work_dir, args.data, args.checkpoint,
             args.budget)


if __name__ == '__main__':
    main()
