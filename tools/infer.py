"""Run a trained model on your own images or video: overlays and JSON.

INPUT is an image, a folder (searched recursively), a glob in quotes, or a
video file. Writes OUT/vis/ (JPEG overlays in the Cityscapes palette with
class names and scores; a video gives an annotated video), OUT/preds/ (one
JSON per image or frame: COCO RLE masks, boxes, scores, Cityscapes label
ids) and, with --cityscapes-format, OUT/cityscapes/ (the official results
format). Ends with the images/s and the time per image spent reading, in
the model, drawing and writing.

Examples:
    python tools/infer.py demo/frames/ CONFIG CHECKPOINT --out work_dirs/infer
    python tools/infer.py "dashcam/*.jpg" CONFIG CHECKPOINT --batch-size 4
    python tools/infer.py drive.mp4 CONFIG CHECKPOINT --device cuda
"""
import argparse

from citymask.cli import exit_on_error
from citymask.inference import format_timing, run_inference


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('input', help='image, folder, glob or video')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (Cityscapes heads)')
    parser.add_argument('--out', default='outputs',
                        help='output folder (default: outputs)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (default: 1)')
    parser.add_argument('--device', default='cpu',
                        help='cpu, cuda, cuda:1, ... (default: cpu)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='overlays and JSON keep instances scoring at '
                        'least this (default: 0.3); --cityscapes-format '
                        'keeps all, as AP needs them')
    parser.add_argument('--cityscapes-format', action='store_true',
                        help='also write the official Cityscapes results '
                        'format to OUT/cityscapes/')
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args()


@exit_on_error
def main():
    args = parse_args()
    result = run_inference(
        args.input, args.config, args.checkpoint, args.out,
        batch_size=args.batch_size, device=args.device,
        score_thr=args.score_thr, cityscapes_format=args.cityscapes_format,
        cfg_options=args.cfg_options)
    print(format_timing(result))
    print(f'written to {args.out}/' + (
        f' (video: {result["video"]})' if result['video'] else ''))


if __name__ == '__main__':
    main()
