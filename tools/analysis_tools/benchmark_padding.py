"""Padded share of the pixels a multi-image training batch computes on.

Runs the real train dataloader and the model's data preprocessor (pads a
batch to its largest image, then to a multiple of 32) of two configs on
generated 2048x1024 frames:
  (a) per-image scales: maskrcnn_r50_fpn_cityscapes_ft.py (mmdet's
      RandomChoiceResize) at --batch-size images per GPU,
  (b) one scale per batch: maskrcnn_r50_fpn_1xb8-4k_cityscapes-ft.py
      (SeededBatchSampler + BatchChoiceResize), same batch size.

Example (the docs/benchmarks.md settings):
    python tools/analysis_tools/benchmark_padding.py --batches 40
"""
import argparse
import itertools
import os.path as osp
import tempfile

import numpy as np

from citymask.cli import exit_on_error

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')
VARIANTS = [('(a) per-image scale', 'maskrcnn_r50_fpn_cityscapes_ft.py'),
            ('(b) one scale per batch',
             'maskrcnn_r50_fpn_1xb8-4k_cityscapes-ft.py')]


def at_least(low):
    def parse(text):
        if not text.isdigit() or int(text) < low:
            raise argparse.ArgumentTypeError(f'{text!r}: give an integer >= '
                                             f'{low}')
        return int(text)
    return parse


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batches', type=at_least(1), default=40)
    parser.add_argument('--batch-size', type=at_least(1), default=8)
    parser.add_argument('--num-images', type=at_least(1), default=16,
                        help='generated frames (default: 16)')
    parser.add_argument('--workers', type=at_least(0), default=2,
                        help='dataloader workers (default: 2)')
    parser.add_argument('--work-dir', help='keep the data here')
    return parser.parse_args()


def measure(cfg, root, ann, args):
    """Per batch: (real pixels per image, padded pixels per batch)."""
    from mmdet.registry import MODELS
    from mmengine.runner import Runner
    loader = dict(cfg.train_dataloader, batch_size=args.batch_size,
                  num_workers=args.workers, persistent_workers=False)
    loader['dataset'].update(data_root=root, ann_file=ann)
    preprocess = MODELS.build(cfg.model.data_preprocessor)
    rows = []
    for batch in itertools.islice(Runner.build_dataloader(loader, seed=0),
                                  args.batches):
        inputs = preprocess(batch, True)['inputs']
        real = [np.prod(s.img_shape) for s in batch['data_samples']]
        rows.append((np.mean(real), np.prod(inputs.shape) // inputs.shape[1]))
    return np.array(rows, float)


@exit_on_error
def main():
    args = parse_args()
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401
    from citymask.testing.mini_cityscapes import make_benchmark_set
    init_default_scope('mmdet')
    work = args.work_dir or tempfile.mkdtemp(prefix='benchmark_padding_')
    root, anns = make_benchmark_set(work, args.num_images)
    print(f'{args.batches} batches of {args.batch_size} images (2048x1024 '
          f'frames, {args.num_images} generated), seed 0\n')
    print('| pipeline | Mpx per image | Mpx per batch computed | padded '
          'share: mean | max | cost vs no padding |\n|---|---|---|---|---|'
          '---|')
    for name, config in VARIANTS:
        cfg = Config.fromfile(osp.join(CONFIGS, config))
        per_image, padded = measure(cfg, root, anns['polygon'], args).T
        share = 1 - per_image * args.batch_size / padded
        cost = padded.sum() / (per_image.sum() * args.batch_size)
        print(f'| {name} | {per_image.mean() / 1e6:.3f} | '
              f'{padded.mean() / 1e6:.2f} | {100 * share.mean():.1f}% | '
              f'{100 * share.max():.1f}% | {cost:.3f}x |')


if __name__ == '__main__':
    main()
