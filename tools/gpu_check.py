"""Measure training and inference on one GPU: images per GPU x precisions,
about 10 minutes on an H200 with the defaults (docs/benchmarks.md).

Exit 1 if fp16's or bf16's mean loss departs from fp32's by more than
--loss-tol. Without a GPU it runs the fp32 and bf16 rows: give it a tiny size.

Examples:
    python tools/gpu_check.py
    python tools/gpu_check.py --device cpu --width 256 --height 128 \\
        --num-images 2 --batch-sizes 1 2 --warmup 1 --steps 2 \\
        --infer-batch-sizes 1 2 --infer-steps 1 --workers 0
"""
import contextlib
import gc
import io
import itertools
import math
import os.path as osp
import sys
import time

from analysis_tools.bench_utils import (REPO, at_least, benchmark_set,
                                        make_parser, rate, table)

from citymask.cli import add_cfg_options, exit_on_error

FT = osp.join(REPO, 'configs', 'maskrcnn_r50_fpn_cityscapes_ft.py')
PRECISIONS = ('fp32', 'fp16', 'bf16')
DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}
# for the estimate printed first: training img/s of an H200 at 2048x1024
# (fp32, batch 1), and the seconds a row takes to build its model and loader
EXPECT_IMG_S, ROW_OVERHEAD_S = 10.0, 6.0


def parse_args():
    parser = make_parser(__doc__, 16, distribution=False)
    parser.add_argument('--config', default=FT,
                        help='config to time (default: the fine-tune one)')
    parser.add_argument('--device', help='cuda or cpu (default: cuda if '
                        'torch sees a GPU)')
    parser.add_argument('--precisions', nargs='+', choices=PRECISIONS,
                        default=list(PRECISIONS))
    for flag, default, low, what in (
            ('batch-sizes', [1, 2, 4, 8, 16], 1, 'training images per GPU'),
            ('infer-batch-sizes', [1, 8], 1, 'inference batch sizes'),
            ('warmup', 3, 0, 'untimed training steps per row'),
            ('steps', 10, 1, 'measured training steps per row'),
            ('infer-steps', 4, 1, 'measured inference batches per row, '
             'after one untimed'),
            ('workers', 8, 0, 'data loader workers')):
        parser.add_argument(
            f'--{flag}', type=at_least(low), default=default,
            nargs='+' if isinstance(default, list) else None,
            help=f'{what} (default: {str(default).strip("[]")})')
    # why 10 %: random weights tie the RPN's scores (docs/benchmarks.md)
    parser.add_argument('--loss-tol', type=float, default=0.1,
                        help="largest relative departure of a precision's "
                        "mean loss from fp32's (default: 0.1)")
    add_cfg_options(parser)
    return parser.parse_args()


def bench_config(args, root, ann):
    """The config on the generated frames; at sizes other than 2048x1024
    (smoke runs) at that size only."""
    from citymask.config import load_config
    cfg = load_config(args.config, args.cfg_options)
    cfg.model.backbone.init_cfg = None  # no download
    train, test = cfg.train_dataloader, cfg.test_dataloader.dataset
    train.update(num_workers=args.workers, persistent_workers=False,
                 sampler=dict(type='InfiniteSampler', shuffle=True))
    train.dataset.update(data_root=root, ann_file=ann)
    test.update(data_root=root, ann_file=ann,
                data_prefix=train.dataset.data_prefix)
    for t in test.pipeline + (cfg.train_pipeline if args.width != 2048
                              else []):
        t.update({'scale': (args.width, args.height)} if t.type == 'Resize'
                 else {'scales': [(args.width, args.height)]} if 'scales' in t
                 else {})
    train.dataset.pipeline = cfg.train_pipeline
    return cfg


def build(cfg, device=None):
    """A dataset (without pycocotools' lines) or, with ``device``, a model."""
    from mmdet.registry import DATASETS, MODELS
    from mmengine.runner import set_random_seed
    if device is None:
        with contextlib.redirect_stdout(io.StringIO()):
            return DATASETS.build(cfg)
    set_random_seed(0)  # every row: the same weights, augmentations, RoIs
    model = MODELS.build(cfg).to(device)
    model.init_weights()
    return model


def unavailable(device, precision):
    """Why ``precision`` cannot run on ``device``, or None."""
    import torch
    if not device.startswith('cuda'):
        return 'needs a CUDA GPU' if precision == 'fp16' else None
    if precision == 'bf16' and not torch.cuda.is_bf16_supported():
        return 'this GPU has no bf16'


def run_steps(device, precision, batches, step, warmup, steps, autocast):
    """Seconds waiting for ``next(batches)`` and in all, and the outputs,
    of ``steps`` calls of ``step`` after ``warmup``."""
    import torch
    sync = torch.cuda.synchronize if device.startswith('cuda') else int
    wait, total, outs = 0.0, 0.0, []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        data = next(batches)
        t1 = time.perf_counter()
        with torch.autocast(device.split(':')[0], getattr(
                torch, DTYPES.get(precision, 'bfloat16')),
                enabled=autocast and precision in DTYPES):
            out = step(data)
        sync()
        if i >= warmup:
            wait, total = wait + t1 - t0, total + time.perf_counter() - t0
            outs.append(out)
    return wait, total, outs


def train_row(cfg, dataset, device, batch, precision, warmup, steps):
    """img/s, data-wait share and mean loss; fp16 / bf16 through mmengine's
    AmpOptimWrapper, which refuses CPUs: there under bf16 autocast."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    model = build(cfg.model, device).train()
    gpu = device.startswith('cuda')
    optim = build_optim_wrapper(model, dict(cfg.optim_wrapper, **dict(
        type='AmpOptimWrapper', dtype=DTYPES.get(precision),
        loss_scale='dynamic') if gpu and precision in DTYPES else {}))
    wait, total, losses = run_steps(device, precision, iter(
        Runner.build_dataloader(dict(cfg.train_dataloader, batch_size=batch,
                                     dataset=dataset), seed=0)),
        lambda data: float(model.train_step(data, optim)['loss'].detach()),
        warmup, steps, not gpu)
    return dict(img_s=batch * steps / total, wait=wait / total,
                loss=sum(losses) / steps)


def infer_row(model, items, device, batch, precision, steps):
    """ms per image and img/s of ``model.test_step`` on batches of
    ``batch`` items, after one untimed batch."""
    import torch
    from mmengine.dataset import pseudo_collate
    with torch.no_grad():
        wait, total, _ = run_steps(device, precision, (pseudo_collate(
            [items[(i * batch + j) % len(items)] for j in range(batch)])
            for i in itertools.count()), lambda data: len(model.test_step(
                data)), 1, steps, True)  # the predictions dropped
    n, seconds = batch * steps, total - wait  # not collating
    return dict(ms=1000 * seconds / n, img_s=n / seconds)


def rows(device, grid, fn, cells, results):
    """Per ``(batch, precision)`` of ``grid`` a table row, ``cells(r, peak
    GiB)`` of ``r = fn(batch, precision)`` (also put in ``results``), or
    why it did not run."""
    import torch
    gpu = device.startswith('cuda')
    for batch, precision in grid:
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        try:
            r = unavailable(device, precision) or fn(batch, precision)
        except torch.cuda.OutOfMemoryError:
            r = 'out of GPU memory'
        gc.collect()
        if gpu:
            torch.cuda.empty_cache()
        results[batch, precision] = r
        peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else None
        yield [batch, precision] + ([f'not measured: {r}'] if isinstance(
            r, str) else cells(r, '-' if peak is None else f'{peak:.1f}'))


def loss_check(train, tol):
    """``(batch, precision, departure from fp32, ok)`` per fp16 / bf16 row
    with an fp32 row of its batch size: ok if finite and within ``tol``."""
    rels = [(b, p, r['loss'] / train[b, 'fp32']['loss'] - 1)
            for (b, p), r in train.items() if p != 'fp32' and isinstance(
                r, dict) and isinstance(train.get((b, 'fp32')), dict)]
    return [(b, p, rel, math.isfinite(rel) and abs(rel) <= tol)
            for b, p, rel in rels]


@exit_on_error
def main():
    args = parse_args()
    import mmcv
    import torch
    from mmengine.logging import MMLogger
    start = time.perf_counter()
    MMLogger.get_instance('gpu_check', log_level='WARNING')  # tables only
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    gpu = device.startswith('cuda')
    # fp32 rows: TF32 matmuls and convolutions, as on Ampere and later
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    print(f'{torch.cuda.get_device_name(device) if gpu else "CPU"}, torch '
          f'{torch.__version__}, mmcv {mmcv.__version__}, {args.width}x'
          f'{args.height}, {args.workers} loader workers')
    grids = [[(b, p) for b in sizes for p in args.precisions]
             for sizes in (args.batch_sizes, args.infer_batch_sizes)]
    n_train, n_infer = (n * sum(b for b, p in grid if not unavailable(
        device, p)) for n, grid in zip((args.warmup + args.steps,
                                        1 + args.infer_steps), grids))
    minutes = ((n_train + n_infer) / EXPECT_IMG_S
               + ROW_OVERHEAD_S * len(grids[0])) / 60
    print(f'plan: {len(grids[0])} training rows of {args.warmup} warm-up + '
          f'{args.steps} measured steps ({n_train} images), {len(grids[1])} '
          f'inference rows of 1 + {args.infer_steps} batches ({n_infer} '
          f'images)' + (f'; estimate {minutes:.0f} min at {EXPECT_IMG_S:.0f}'
                        ' img/s (an H200 at 2048x1024) plus frame generation'
                        if gpu else ''), flush=True)

    root, anns = benchmark_set(args, 'gpu_check_')
    cfg = bench_config(args, root, anns['polygon'])
    train_set = build(cfg.train_dataloader.dataset)
    ft_images = cfg.train_cfg.max_iters * cfg.get('auto_scale_lr', {}).get(
        'base_batch_size', cfg.train_dataloader.batch_size)
    train = {}
    table(['images/GPU', 'precision', 'img/s', 'peak GiB', 'data wait',
           'loss', f'fine-tune ({ft_images} img)'], rows(
        device, grids[0], lambda b, p: train_row(
            cfg, train_set, device, b, p, args.warmup, args.steps),
        lambda r, gib: [f'{r["img_s"]:.2f}', gib, f'{100 * r["wait"]:.0f}%',
                        f'{r["loss"]:.4f}',
                        f'{ft_images / r["img_s"] / 60:.0f} min'], train))
    model = build(cfg.model, device).eval()
    dataset = build(cfg.test_dataloader.dataset)
    items = [dataset[i] for i in range(min(len(dataset), max(
        args.infer_batch_sizes)))]
    table(['batch', 'precision', 'ms/img', 'img/s', 'peak GiB'], rows(
        device, grids[1], lambda b, p: infer_row(
            model, items, device, b, p, args.infer_steps),
        lambda r, gib: [f'{r["ms"]:.1f}', f'{r["img_s"]:.2f}', gib], {}))

    done = {k: r['img_s'] for k, r in train.items() if isinstance(r, dict)}
    if done:
        (batch, precision), best = max(done.items(), key=lambda kv: kv[1])
        per_core = rate(train_set, min(8, args.num_images))
        print(f'\nfastest: {batch} images/GPU {precision}, {best:.2f} img/s:'
              f' the fine-tune ({ft_images} images) in '
              f'{ft_images / best / 60:.0f} min of training steps '
              '(validation and checkpoints not included)\ntraining pipeline:'
              f' {per_core:.1f} img/s on one core; data loader workers to '
              f'feed {best:.2f} img/s: {math.ceil(best / per_core)} (this '
              f'run: {args.workers})')
    checks = loss_check(train, args.loss_tol)
    for batch, precision, rel, ok in checks:
        print(f'loss {precision} vs fp32, {batch} images/GPU: '
              f'{100 * rel:+.2f}% (tolerance {100 * args.loss_tol:g}%)'
              + ('' if ok else ' FAILED'))
    print(f'total {time.perf_counter() - start:.0f} s')
    sys.exit(not all(c[3] for c in checks))


if __name__ == '__main__':
    main()
