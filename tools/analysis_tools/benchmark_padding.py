"""Padded share of the pixels training batches (8 images) compute on: the
real dataloader and data preprocessor of (a) a scale per image (the 8x1
configs) and (b) one scale per batch (the NxbM configs).

Example:
    python tools/analysis_tools/benchmark_padding.py --batches 40
"""
import itertools
import os.path as osp

import numpy as np
from bench_utils import REPO, at_least, benchmark_set, make_parser, table

from citymask.cli import exit_on_error

VARIANTS = {'(a) per-image scale': 'maskrcnn_r50_fpn_cityscapes_ft.py',
            '(b) one scale per batch':
            'maskrcnn_r50_fpn_1xb8-4k_cityscapes-ft.py'}


def padding(cfg, root, ann, args):
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
    return np.array(rows, float).T


@exit_on_error
def main():
    parser = make_parser(__doc__, 16, distribution=False)
    parser.add_argument('--batches', type=at_least(1), default=40)
    parser.add_argument('--batch-size', type=at_least(1), default=8)
    parser.add_argument('--workers', type=at_least(0), default=2,
                        help='dataloader workers (default: 2)')
    args = parser.parse_args()
    from citymask.config import load_config
    root, anns = benchmark_set(args, 'benchmark_padding_')
    print(f'{args.batches} batches of {args.batch_size} images ('
          f'{args.num_images} generated {args.width}x{args.height} frames), '
          'seed 0')
    rows = []
    for name, config in VARIANTS.items():
        per_image, padded = padding(load_config(osp.join(
            REPO, 'configs', config)), root, anns['polygon'], args)
        real = per_image * args.batch_size
        share = 1 - real / padded
        rows.append([name, f'{per_image.mean() / 1e6:.3f}',
                     f'{padded.mean() / 1e6:.2f}',
                     f'{100 * share.mean():.1f}%', f'{100 * share.max():.1f}%',
                     f'{padded.sum() / real.sum():.3f}x'])
    table(['pipeline', 'Mpx per image', 'Mpx per batch computed',
           'padded share: mean', 'max', 'cost vs no padding'], rows)


if __name__ == '__main__':
    main()
