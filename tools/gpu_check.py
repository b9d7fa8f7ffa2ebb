"""Measure citymask's training and inference on one GPU: batch sizes x
precisions, in one command sized for 10 minutes on an H200 (the defaults).

Prints the plan first (rows, steps, a time estimate), then Markdown tables:
  train: images per GPU (1, 2, 4, 8, 16) x fp32 (TF32 on) / fp16 / bf16
    (mmengine's AmpOptimWrapper): img/s, peak GPU memory, the share of the
    time spent waiting for the data loader, the mean loss of the measured
    steps, and the fine-tune schedule's wall time at that rate;
  infer: batch 1 and 8 in the three precisions: ms per image, img/s, peak
    memory;
then the training pipeline's img/s on one core and the data loader
workers the fastest training row needs.

The frames are generated (2048x1024, the config's own multi-scale) and the
weights random (no download): inference fills max_per_img (100 detections
an image). The rows of one batch size start from the same weights and see
the same batches: exit 1 if a precision's mean loss departs from fp32's by
more than --loss-tol (relative), or is not finite.

Without a GPU the same command runs the rows a CPU can (fp32, and bf16
under CPU autocast) at the size given -- use a tiny one; fp16 rows say they
need a GPU. mmcv's CUDA ops and the metric's GPU path are checked by
``pytest tests/test_cuda.py``.

Examples:
    python tools/gpu_check.py              # a GPU node
    python tools/gpu_check.py --device cpu --width 256 --height 128 \\
        --num-images 2 --batch-sizes 1 2 --warmup 1 --steps 2 \\
        --infer-batch-sizes 1 2 --infer-steps 1 --workers 0   # a CPU
"""
import argparse
import contextlib
import functools
import gc
import math
import os.path as osp
import sys
import tempfile
import time

from citymask.cli import exit_on_error
from citymask.testing.mini_cityscapes import add_scene_args

FT = osp.join(osp.dirname(osp.abspath(__file__)), '..', 'configs',
              'maskrcnn_r50_fpn_cityscapes_ft.py')
PRECISIONS = ('fp32', 'fp16', 'bf16')
# for the estimate printed first: an H200 at 2048x1024, fp32, batch 1
# (11.4 training img/s, 2026-11-30), and the seconds a row spends building
# its model and starting its loader
EXPECT_IMG_S, ROW_OVERHEAD_S = 10.0, 6.0


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--config', default=FT, help='citymask config to '
                        'time (default: the fine-tune config)')
    parser.add_argument('--device', help='cuda or cpu (default: cuda if '
                        'torch sees a GPU)')
    parser.add_argument('--work-dir', help='generated frames (reused; '
                        'default: a new temporary folder)')
    parser.add_argument('--num-images', type=int, default=16,
                        help='generated training frames (default: 16)')
    parser.add_argument('--batch-sizes', type=int, nargs='+',
                        default=[1, 2, 4, 8, 16],
                        help='training images per GPU (default: 1 2 4 8 16)')
    parser.add_argument('--precisions', nargs='+', choices=PRECISIONS,
                        default=list(PRECISIONS))
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed steps first, per row (default: 3)')
    parser.add_argument('--steps', type=int, default=10,
                        help='measured training steps per row (default: 10)')
    parser.add_argument('--infer-batch-sizes', type=int, nargs='+',
                        default=[1, 8], help='default: 1 8')
    parser.add_argument('--infer-steps', type=int, default=4,
                        help='measured inference batches per row, after one '
                        'untimed (default: 4)')
    parser.add_argument('--workers', type=int, default=8,
                        help='data loader workers (default: 8)')
    # The weights are random: the RPN's scores are nearly tied, so any
    # rounding reorders its proposals and the RoI head samples other RoIs
    # from the first step on. At 512x256, 2 images, 8 steps after 3 (CPU,
    # torch 2.13, 2026-12-03): two fp32 runs with other sampling seeds
    # differ by 1.7% in mean loss, bf16 and fp32 by 3.6%. 10% flags a
    # precision that departs beyond that noise: not finite, diverging or
    # not learning.
    parser.add_argument('--loss-tol', type=float, default=0.1,
                        help="largest relative departure of a precision's "
                        "mean loss from fp32's (default: 0.1)")
    add_scene_args(parser, distribution=False)
    args = parser.parse_args()
    for flag in ('num_images', 'steps', 'infer_steps', 'width', 'height'):
        if getattr(args, flag) < 1:
            parser.error(f'--{flag.replace("_", "-")} must be at least 1')
    if min(args.batch_sizes + args.infer_batch_sizes) < 1:
        parser.error('batch sizes must be at least 1')
    if args.warmup < 0 or args.workers < 0:
        parser.error('--warmup and --workers must be 0 or more')
    return args


def bench_config(path, root, ann, width, height, workers):
    """``path`` set to train on the generated frames; at 2048x1024 with the
    config's own scales, at other sizes (smoke runs) at that size only."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None  # no download
    cfg.train_dataloader.update(num_workers=workers, persistent_workers=False,
                                sampler=dict(type='InfiniteSampler',
                                             shuffle=True))
    cfg.train_dataloader.dataset.update(data_root=root, ann_file=ann)
    if width != 2048:
        for t in cfg.train_pipeline:
            if 'scales' in t:
                t.scales = [(width, height)]
        cfg.train_dataloader.dataset.pipeline = cfg.train_pipeline
    test = cfg.test_dataloader.dataset
    test.update(data_root=root, ann_file=ann,
                data_prefix=cfg.train_dataloader.dataset.data_prefix)
    for t in test.pipeline:
        if t.type == 'Resize':
            t.scale = (width, height)
    return cfg


def build_dataset(cfg):
    """``cfg`` built, without pycocotools' progress lines."""
    import io

    from mmdet.registry import DATASETS
    with contextlib.redirect_stdout(io.StringIO()):
        return DATASETS.build(cfg)


def build_model(cfg, device):
    from mmdet.registry import MODELS
    from mmengine.runner import set_random_seed
    set_random_seed(0)  # every row: the same weights, augmentations, RoIs
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    return model


@contextlib.contextmanager
def cpu_bf16(context, model):
    """``context(model)`` (an optim wrapper's) under CPU bf16 autocast."""
    import torch
    with context(model), torch.autocast('cpu', dtype=torch.bfloat16):
        yield


def optim_wrapper(cfg, model, device, precision):
    """The config's optimizer; fp16 / bf16 through mmengine's
    AmpOptimWrapper, which refuses CPUs: there a plain OptimWrapper's
    forward runs under bf16 autocast."""
    from mmengine.optim import build_optim_wrapper
    optim = cfg.optim_wrapper.copy()
    dtype = {'fp16': 'float16', 'bf16': 'bfloat16'}.get(precision)
    gpu = device.startswith('cuda')
    if dtype and gpu:
        optim.update(type='AmpOptimWrapper', dtype=dtype, loss_scale='dynamic')
    wrapper = build_optim_wrapper(model, optim)
    if dtype and not gpu:
        wrapper.optim_context = functools.partial(cpu_bf16,
                                                  wrapper.optim_context)
    return wrapper


def unavailable(device, precision):
    """Why ``precision`` cannot run on ``device``, or None."""
    import torch
    if not device.startswith('cuda'):
        return 'needs a CUDA GPU' if precision == 'fp16' else None
    if precision == 'bf16' and not torch.cuda.is_bf16_supported():
        return 'this GPU has no bf16'
    return None


def sync(device):
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def peak_gib(device):
    import torch
    if not device.startswith('cuda'):
        return float('nan')
    return torch.cuda.max_memory_allocated() / 2**30


def train_row(cfg, dataset, device, batch, precision, warmup, steps):
    """img/s, data-wait share, peak GiB and mean loss of ``steps`` training
    steps after ``warmup``."""
    import torch
    from mmengine.runner import Runner
    model = build_model(cfg, device).train()
    optim = optim_wrapper(cfg, model, device, precision)
    batches = iter(Runner.build_dataloader(
        dict(cfg.train_dataloader, batch_size=batch, dataset=dataset),
        seed=0))
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    wait = total = 0.0
    losses = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        data = next(batches)
        t1 = time.perf_counter()
        log_vars = model.train_step(data, optim)
        sync(device)
        if i >= warmup:
            wait += t1 - t0
            total += time.perf_counter() - t0
            losses.append(float(torch.as_tensor(log_vars['loss']).detach()))
    return dict(img_s=batch * steps / total, wait=wait / total,
                gib=peak_gib(device), loss=sum(losses) / len(losses))


def infer_row(model, items, device, batch, precision, steps):
    """ms per image, img/s and peak GiB of ``model.test_step`` on batches of
    ``batch`` test-pipeline items, after one untimed batch."""
    import torch
    from mmengine.dataset import pseudo_collate
    dtype = {'fp16': torch.float16, 'bf16': torch.bfloat16}.get(precision)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    total = 0.0
    for i in range(1 + steps):
        data = pseudo_collate([items[(i * batch + j) % len(items)]
                               for j in range(batch)])
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast(
                device.split(':')[0], dtype=dtype or torch.bfloat16,
                enabled=dtype is not None):
            model.test_step(data)
        sync(device)
        total += (time.perf_counter() - t0) if i else 0.0
    n = batch * steps
    return dict(ms=1000 * total / n, img_s=n / total, gib=peak_gib(device))


def pipeline_rate(dataset, n):
    """The training pipeline's img/s in this process on one thread."""
    import cv2
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    dataset[0]  # warm-up (imports, caches)
    t0 = time.perf_counter()
    for i in range(n):
        dataset[i % len(dataset)]
    rate = n / (time.perf_counter() - t0)
    torch.set_num_threads(threads)
    return rate


def run_safely(fn, device):
    """``fn()``, or the reason it did not fit; memory freed after."""
    import torch
    try:
        return fn()
    except torch.cuda.OutOfMemoryError:
        return 'out of GPU memory'
    finally:
        gc.collect()
        if device.startswith('cuda'):
            torch.cuda.empty_cache()


def loss_check(train, tol):
    """``(batch, precision, relative departure, ok)`` of each measured
    fp16 / bf16 row's mean loss from the fp32 row of its batch size; not
    ok beyond ``tol`` or when not finite."""
    out = []
    for (batch, precision), r in train.items():
        ref = train.get((batch, 'fp32'))
        if precision == 'fp32' or not isinstance(r, dict) or \
                not isinstance(ref, dict):
            continue
        rel = r['loss'] / ref['loss'] - 1
        out.append((batch, precision, rel,
                    math.isfinite(rel) and abs(rel) <= tol))
    return out


def fmt_gib(x):
    return '-' if math.isnan(x) else f'{x:.1f}'


@exit_on_error
def main():
    args = parse_args()
    import mmcv
    import torch  # after --help
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401
    from citymask.testing.mini_cityscapes import make_benchmark_set
    start = time.perf_counter()
    init_default_scope('mmdet')
    # the tables only: no weight-initialisation reports
    MMLogger.get_instance('gpu_check', log_level='WARNING')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    gpu = device.startswith('cuda')
    if gpu:  # fp32 rows: TF32 matmuls and convolutions, as on Ampere+
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if gpu else 'CPU'
    print(f'{name}, torch {torch.__version__}, mmcv {mmcv.__version__}, '
          f'{args.width}x{args.height}, {args.workers} loader workers')
    rows = [(b, p) for b in args.batch_sizes for p in args.precisions]
    n_train = (args.warmup + args.steps) * sum(
        b for b, p in rows if not unavailable(device, p))
    n_infer = (1 + args.infer_steps) * sum(args.infer_batch_sizes) * len(
        [p for p in args.precisions if not unavailable(device, p)])
    plan = (f'plan: {len(rows)} training rows of {args.warmup} warm-up + '
            f'{args.steps} measured steps ({n_train} images), '
            f'{len(args.infer_batch_sizes) * len(args.precisions)} '
            f'inference rows of 1 + {args.infer_steps} batches ({n_infer} '
            'images)')
    if gpu:
        minutes = ((n_train + n_infer) / EXPECT_IMG_S
                   + ROW_OVERHEAD_S * len(rows)) / 60
        plan += (f'; estimate {minutes:.0f} min at {EXPECT_IMG_S:.0f} img/s '
                 '(an H200 at 2048x1024) plus frame generation')
    print(plan, flush=True)

    work = args.work_dir or tempfile.mkdtemp(prefix='gpu_check_')
    root, anns = make_benchmark_set(work, args.num_images, args.width,
                                    args.height)
    cfg = bench_config(args.config, root, anns['polygon'], args.width,
                       args.height, args.workers)
    train_set = build_dataset(cfg.train_dataloader.dataset)
    ft_images = cfg.train_cfg.max_iters * cfg.get('auto_scale_lr', {}).get(
        'base_batch_size', cfg.train_dataloader.batch_size)

    print(f'\n| images/GPU | precision | img/s | peak GiB | data wait | '
          f'loss | fine-tune ({ft_images} img) |\n|---|---|---|---|---|---|'
          '---|', flush=True)
    train = {}
    for batch, precision in rows:
        why = unavailable(device, precision)
        r = why or run_safely(lambda: train_row(
            cfg, train_set, device, batch, precision, args.warmup,
            args.steps), device)
        train[batch, precision] = r
        if isinstance(r, str):
            print(f'| {batch} | {precision} | not measured: {r} |||||',
                  flush=True)
            continue
        print(f'| {batch} | {precision} | {r["img_s"]:.2f} | '
              f'{fmt_gib(r["gib"])} | {100 * r["wait"]:.0f}% | '
              f'{r["loss"]:.4f} | '
              f'{ft_images / r["img_s"] / 60:.0f} min |', flush=True)

    print('\n| batch | precision | ms/img | img/s | peak GiB |\n'
          '|---|---|---|---|---|', flush=True)
    model = build_model(cfg, device).eval()
    dataset = build_dataset(cfg.test_dataloader.dataset)
    items = [dataset[i] for i in range(min(len(dataset),
                                           max(args.infer_batch_sizes)))]
    for batch in args.infer_batch_sizes:
        for precision in args.precisions:
            why = unavailable(device, precision)
            r = why or run_safely(lambda: infer_row(
                model, items, device, batch, precision, args.infer_steps),
                device)
            print(f'| {batch} | {precision} | not measured: {r} |||'
                  if isinstance(r, str) else
                  f'| {batch} | {precision} | {r["ms"]:.1f} | '
                  f'{r["img_s"]:.2f} | {fmt_gib(r["gib"])} |', flush=True)

    per_core = pipeline_rate(train_set, min(8, args.num_images))
    done = {k: r for k, r in train.items() if isinstance(r, dict)}
    if done:
        (batch, precision), best = max(done.items(),
                                       key=lambda kv: kv[1]['img_s'])
        print(f'\nfastest: {batch} images/GPU {precision}, '
              f'{best["img_s"]:.2f} img/s: the fine-tune ({ft_images} '
              f'images) in {ft_images / best["img_s"] / 60:.0f} min of '
              'training steps (validation and checkpoints not included)')
        print(f'training pipeline: {per_core:.1f} img/s on one core; data '
              f'loader workers to feed {best["img_s"]:.2f} img/s: '
              f'{math.ceil(best["img_s"] / per_core)} (this run: '
              f'{args.workers})')
    checks = loss_check(train, args.loss_tol)
    for batch, precision, rel, ok in checks:
        print(f'loss {precision} vs fp32, {batch} images/GPU: '
              f'{100 * rel:+.2f}% (tolerance {100 * args.loss_tol:g}%)'
              + ('' if ok else ' FAILED'))
    print(f'total {time.perf_counter() - start:.0f} s')
    if not all(c[3] for c in checks):
        sys.exit(1)


if __name__ == '__main__':
    main()
