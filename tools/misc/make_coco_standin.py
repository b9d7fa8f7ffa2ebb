"""Write a COCO-format (80-class) stand-in checkpoint of a config's model.

Random weights, for configs without a model zoo checkpoint (configs/mini/);
real runs start from the model zoo's COCO Mask R-CNN.

Example:
    python tools/misc/make_coco_standin.py \
        configs/mini/maskrcnn_r18_fpn_mini_cityscapes.py standin.pth
"""
import argparse

from citymask.cli import exit_on_error
from citymask.config import load_config
from citymask.fileio import check_writable
from citymask.testing.standin import make_coco_standin


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('out')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    check_writable(args.out, what='output checkpoint')
    make_coco_standin(load_config(args.config), args.out, args.seed)
    print(f'wrote {args.out}: a STAND-IN for a COCO Mask R-CNN (random '
          'weights, 80 classes); real runs use the model zoo checkpoint')


if __name__ == '__main__':
    main()
