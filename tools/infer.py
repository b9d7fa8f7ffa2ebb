"""Run a trained model on your own images and videos: overlays and JSON.

INPUTS are images, folders (searched recursively) and videos. As mmdet's
demo/image_demo.py, OUT/vis/ gets overlays (a video: an annotated video) and
OUT/preds/ a JSON per image or frame (COCO RLE masks, Cityscapes label ids);
--cityscapes-format adds OUT/cityscapes/ (the official results format). OUT
is written as a whole when the run ends: a failed run leaves none of it.

Example:
    python tools/infer.py frames/ drive.mp4 CONFIG CHECKPOINT --out-dir out
"""
import argparse

from citymask.cli import add_cfg_options, exit_on_error


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n')[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add('inputs', nargs='+', help='images, folders or videos')
    add('config')
    add('checkpoint', help='checkpoint with Cityscapes heads')
    add('--out-dir', '--out', default='outputs',
        help="new or empty output folder ('': write nothing)")
    add('--overwrite', action='store_true', help='replace a full --out-dir')
    add('--batch-size', type=int, default=1)
    add('--pred-score-thr', type=float, default=0.3,
        help='overlays and JSON keep instances scoring at least this; '
        '--cityscapes-format keeps all')
    add('--no-save-vis', action='store_true', help='no OUT/vis/')
    add('--no-save-pred', action='store_true', help='no OUT/preds/')
    add('--print-result', action='store_true', help='each JSON on stdout')
    add('--cityscapes-format', action='store_true')
    add('--device', default='cpu', help='cpu, cuda, cuda:1, ...')
    add_cfg_options(parser)
    return parser.parse_args()


@exit_on_error
def main():
    args = parse_args()
    from citymask.inference import run_inference
    n, seconds = run_inference(**vars(args))
    print(f'{n} images in {seconds:.1f} s ({n / seconds:.2f} img/s)'
          + (f'; written to {args.out_dir}/' if args.out_dir else ''))


if __name__ == '__main__':
    main()
