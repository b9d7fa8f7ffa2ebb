"""Benchmark training and inference speed of a config on one device.

Training rows: stock mmdet (mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes
pipeline on RLE masks) and citymask (the given config: polygons, pyspng),
fp32 and AMP (bf16); iterations/s, img/s and peak memory, after warm-up,
synchronised. Inference: latency per image at the test scale, fp32 vs AMP.
Data: generated Cityscapes frames (2048x1024 by default).

Example (one GPU, the docs/benchmarks.md setting):
    python tools/analysis_tools/benchmark_train.py --iters 50
CPU smoke test:
    python tools/analysis_tools/benchmark_train.py --device cpu \
        --width 256 --height 128 --iters 2 --warmup 1 --infer-iters 2
"""
import argparse
import os.path as osp
import statistics
import tempfile
import time

import torch

import citymask.register  # noqa: F401
from citymask.config import resolve_config_path
from citymask.testing.mini_cityscapes import make_benchmark_set

FT = osp.join(osp.dirname(__file__), '..', '..', 'configs',
              'maskrcnn_r50_fpn_cityscapes_ft.py')
STOCK = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=FT)
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else
                        'cpu')
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--infer-iters', type=int, default=30)
    parser.add_argument('--work-dir')
    return parser.parse_args()


def _config(path, root, ann, args):
    from mmengine.config import Config
    path = resolve_config_path(path)
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None  # no download
    loader = cfg.train_dataloader
    ds = loader.dataset
    while 'dataset' in ds:  # stock: RepeatDataset
        ds = ds.dataset
    ds.update(data_root=root, ann_file=ann)
    loader.update(batch_size=args.batch_size, num_workers=args.workers,
                  persistent_workers=args.workers > 0)
    if loader.sampler.type != 'InfiniteSampler':
        loader.sampler = dict(type='InfiniteSampler', shuffle=True)
    scale = (args.width, args.height)
    for t in cfg.test_pipeline:
        if t.type == 'Resize':
            t.scale = scale
    if args.width != 2048:  # tiny smoke runs: shrink the training scales
        for t in cfg.train_pipeline:
            if 'scales' in t:
                t.scales = [scale]
            if t.type == 'RandomResize':
                t.scale = [scale, scale]
        ds.pipeline = cfg.train_pipeline
    return cfg


def _sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def train_speed(cfg, args, amp):
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).to(args.device)
    model.init_weights()
    model.train()
    optim = cfg.optim_wrapper.copy()
    if amp:  # a dtype string: 'bfloat16' or 'float16'
        optim.update(type='AmpOptimWrapper', dtype=amp)
    optim = build_optim_wrapper(model, optim)
    loader = iter(Runner.build_dataloader(cfg.train_dataloader, seed=0))
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.warmup + args.iters):
        data = next(loader)
        _sync(args.device)
        start = time.perf_counter()
        model.train_step(data, optim)
        _sync(args.device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    mem = (torch.cuda.max_memory_allocated() / 2**30
           if args.device.startswith('cuda') else float('nan'))
    return statistics.median(times), mem, model


def infer_latency(model, cfg, args, amp):
    from mmdet.registry import DATASETS
    ds = cfg.test_dataloader.dataset.copy()
    ds.update(data_root=cfg.train_dataloader.dataset.get('data_root'),
              ann_file=cfg.train_dataloader.dataset.get('ann_file'),
              data_prefix=dict(img='leftImg8bit/train/'),
              pipeline=cfg.test_pipeline)
    dataset = DATASETS.build(ds)
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.infer_iters):
            item = dataset[i % len(dataset)]
            data = dict(inputs=[item['inputs']],
                        data_samples=[item['data_samples']])
            _sync(args.device)
            start = time.perf_counter()
            with torch.autocast('cuda', dtype=getattr(torch, amp or
                                                      'float32'),
                                enabled=bool(amp)):
                model.test_step(data)
            _sync(args.device)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    args = parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix='benchmark_train_')
    root, anns = make_benchmark_set(work, args.num_images, args.width,
                                    args.height)
    device = torch.cuda.get_device_name() if args.device.startswith(
        'cuda') else 'cpu'
    print(f'{device}, {args.width}x{args.height}, batch {args.batch_size}, '
          f'{args.workers} workers, median of {args.iters} iterations\n')
    print(f'{"training":34s} {"s/iter":>8s} {"iter/s":>7s} {"img/s":>7s} '
          f'{"peak GiB":>9s}')
    gpu = args.device.startswith('cuda')
    rows = [('stock mmdet, fp32', STOCK, 'rle', None),
            ('citymask, fp32', args.config, 'polygon', None),
            ('citymask, AMP', args.config, 'polygon', 'amp')]
    base, model, cfg, amp_dtype = None, None, None, None
    for name, path, fmt, amp in rows:
        cfg = _config(path, root, anns[fmt], args)
        if amp and not gpu:
            # AmpOptimWrapper is GPU-only and mmcv's CPU ops take fp32 only
            print(f'{name:34s} n/a on CPU')
            continue
        for dtype in (('bfloat16', 'float16') if amp else (None, )):
            try:  # bf16 where mmcv's CUDA ops take it, else fp16
                t, mem, model = train_speed(cfg, args, dtype)
                amp_dtype = dtype
                break
            except RuntimeError as e:
                if dtype != 'bfloat16':
                    raise
                print(f'(bfloat16 failed: {str(e).splitlines()[0][:80]})')
        img_s = args.batch_size / t
        base = base or img_s
        label = f'{name} {amp_dtype}' if amp else name
        print(f'{label:34s} {t:8.3f} {1 / t:7.2f} {img_s:7.2f} {mem:9.2f}'
              f'  ({img_s / base:.2f}x stock)')
    print(f'\n{"inference (batch 1)":34s} {"ms/img":>8s}')
    for amp in ((None, amp_dtype) if gpu else (None, )):
        ms = 1000 * infer_latency(model, cfg, args, amp)
        print(f'{"citymask, " + (f"AMP {amp}" if amp else "fp32"):34s} '
              f'{ms:8.1f}')


if __name__ == '__main__':
    main()
