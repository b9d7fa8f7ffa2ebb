"""Timing on one device, and the GPU check built from it.

``tools/gpu_check.py`` prints one table (:func:`gpu_check`): mmcv's CUDA
ops against their CPU results, training throughput (stock mmdet config vs
citymask's, fp32 vs AMP), inference latency (fp32 vs fp16) and the
Cityscapes metric on device masks vs mmdet's. On a CPU every row runs at a
tiny size; a row that needs a GPU says so instead of failing.
``tools/analysis_tools/benchmark_eval.py`` uses :func:`time_metric`.
"""
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional

import numpy as np
import torch

STOCK_CONFIG = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'
FT_CONFIG = osp.join(osp.dirname(__file__), '..', 'configs',
                     'maskrcnn_r50_fpn_cityscapes_ft.py')
NEEDS_GPU = 'not measured: needs a CUDA GPU'


class Row(NamedTuple):
    """One line of the GPU check: what, at which setting, the result, and
    ``ok`` (False: a CUDA op disagrees with the CPU; None: not measured)."""
    check: str
    setting: str
    result: str
    ok: Optional[bool] = True


def format_table(rows: Iterable[Row]) -> str:
    """A Markdown table of ``rows`` (pastes into docs/benchmarks.md)."""
    lines = ['| check | setting | result |', '|---|---|---|']
    for r in rows:
        flag = ' **FAILED**' if r.ok is False else ''
        lines.append(f'| {r.check} | {r.setting} | {r.result}{flag} |')
    return '\n'.join(lines)


def sync(device: str) -> None:
    """Wait for the device, so wall-clock times cover the work."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()


# ---- a. CUDA ops -----------------------------------------------------------
def _boxes(n: int, g: torch.Generator, size: float, max_wh: float):
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * max_wh + 1
    return torch.cat([xy, xy + wh], 1)


def check_cuda_ops(device: str) -> List[Row]:
    """mmcv's ``nms`` and ``RoIAlign`` (forward, backward; fp16 and bf16
    as under AMP) on ``device`` against the CPU."""
    names = ('CUDA op nms', 'CUDA op RoIAlign fwd + bwd',
             'CUDA op RoIAlign fp16', 'CUDA op RoIAlign bf16')
    if not device.startswith('cuda'):
        return [Row(n, '', NEEDS_GPU, None) for n in names]
    from mmcv.ops import RoIAlign, nms
    g = torch.Generator().manual_seed(0)
    boxes = _boxes(3000, g, 500.0, 100.0)
    scores = torch.rand(3000, generator=g)
    _, keep_cpu = nms(boxes, scores, iou_threshold=0.5)
    _, keep_dev = nms(boxes.to(device), scores.to(device), iou_threshold=0.5)
    same = torch.equal(keep_dev.cpu(), keep_cpu)
    rows = [Row(names[0], '3000 boxes, IoU 0.5',
                f'{"same" if same else "different"} kept boxes as the CPU '
                f'({len(keep_cpu)} of 3000)', same)]

    # mmdet's RoI extractor: 7x7, sampling_ratio 0, aligned
    op = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=0, aligned=True)
    feats = torch.randn(2, 256, 64, 128, generator=g)
    rois = torch.cat([torch.randint(0, 2, (256, 1), generator=g).float(),
                      _boxes(256, g, 400.0, 100.0)], 1)
    grad = torch.randn(256, 256, 7, 7, generator=g)
    out = {}
    for dev in ('cpu', device):
        x = feats.to(dev).requires_grad_()
        y = op(x, rois.to(dev))
        y.backward(grad.to(dev))
        out[dev] = (y.detach().cpu(), x.grad.cpu())
    fwd = (out[device][0] - out['cpu'][0]).abs().max().item()
    bwd = (out[device][1] - out['cpu'][1]).abs().max().item()
    rows.append(Row(names[1], '256 RoIs, 256 channels, 7x7',
                    f'max |GPU - CPU| {fwd:.1e} forward, {bwd:.1e} backward',
                    fwd < 1e-4 and bwd < 1e-3))
    for name, dtype, tol in ((names[2], torch.float16, 2e-2),
                             (names[3], torch.bfloat16, 1e-1)):
        try:
            y = op(feats.to(device, dtype), rois.to(device, dtype))
        except RuntimeError as e:  # mmcv 2.1.0's kernel has no bf16
            rows.append(Row(name, 'forward', 'not supported: '
                            + str(e).splitlines()[0][:70], None))
            continue
        err = (y.float().cpu() - out['cpu'][0]).abs().max().item()
        rows.append(Row(name, 'forward', f'max |GPU - CPU fp32| {err:.1e}',
                        err < tol))
    return rows


# ---- b. training, c. inference -------------------------------------------
def bench_config(path: str, root: str, ann: str, *, width: int, height: int,
                 batch_size: Optional[int] = None, workers: int = 4):
    """``path`` set to train on the generated frames of ``root`` (ann file
    ``ann``), no download, an infinite sampler; at 2048x1024 the config's
    own multi-scale, at other sizes (smoke runs) that size only."""
    from mmengine.config import Config

    from .config import resolve_config_path
    cfg = Config.fromfile(resolve_config_path(path))
    cfg.model.backbone.init_cfg = None  # no download
    loader = cfg.train_dataloader
    ds = loader.dataset
    while 'dataset' in ds:  # stock: RepeatDataset
        ds = ds.dataset
    ds.update(data_root=root, ann_file=ann)
    loader.update(num_workers=workers, persistent_workers=workers > 0,
                  batch_size=batch_size or loader.batch_size)
    if loader.sampler.type != 'InfiniteSampler':
        loader.sampler = dict(type='InfiniteSampler', shuffle=True)
    scale = (width, height)
    for t in cfg.test_pipeline:
        if t.type == 'Resize':
            t.scale = scale
    if width != 2048:  # tiny smoke runs: shrink the training scales
        for t in cfg.train_pipeline:
            if 'scales' in t:
                t.scales = [scale]
            if t.type == 'RandomResize':
                t.scale = [scale, scale]
        ds.pipeline = cfg.train_pipeline
    return cfg


def train_speed(cfg, device: str, *, iters: int, warmup: int,
                amp: Optional[str] = None) -> Dict[str, object]:
    """Median seconds per training iteration after ``warmup``, the share
    of the wall time spent waiting for data, peak device memory (GiB) and
    the trained model.

    Args:
        cfg: A config from :func:`bench_config`.
        device: ``cuda`` or ``cpu``.
        iters: Timed iterations.
        warmup: Untimed iterations first.
        amp: None (fp32), or the autocast dtype: ``float16`` or
            ``bfloat16``.
    """
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    model.train()
    optim = cfg.optim_wrapper.copy()
    if amp:
        optim.update(type='AmpOptimWrapper', dtype=amp)
    optim = build_optim_wrapper(model, optim)
    loader = iter(Runner.build_dataloader(cfg.train_dataloader, seed=0))
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    steps, waits = [], []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        data = next(loader)
        t1 = time.perf_counter()
        model.train_step(data, optim)
        sync(device)
        if i >= warmup:
            waits.append(t1 - t0)
            steps.append(time.perf_counter() - t1)
    mem = (torch.cuda.max_memory_allocated() / 2**30
           if device.startswith('cuda') else float('nan'))
    per_iter = [a + b for a, b in zip(waits, steps)]
    return dict(s_per_iter=statistics.median(per_iter),
                data_share=sum(waits) / sum(per_iter), peak_gib=mem,
                model=model)


def infer_latency(model, cfg, device: str, *, iters: int, warmup: int,
                  amp: Optional[str] = None) -> float:
    """Median seconds per image of ``model.test_step``, batch 1, at the
    test pipeline's scale, on the training frames of ``cfg``."""
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
        for i in range(warmup + iters):
            item = dataset[i % len(dataset)]
            data = dict(inputs=[item['inputs']],
                        data_samples=[item['data_samples']])
            sync(device)
            start = time.perf_counter()
            with torch.autocast('cuda', dtype=getattr(torch, amp or
                                                      'float32'),
                                enabled=bool(amp)):
                model.test_step(data)
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- d. the metric ---------------------------------------------------------
def time_metric(metric, samples: Iterable[dict], classes,
                num_images: int) -> Dict[str, object]:
    """Seconds in ``process`` (over all samples) and in ``evaluate``, the
    results and the number of predictions.

    Args:
        metric: An mmengine metric.
        samples: Data samples as the model returns them.
        classes: The dataset's class names.
        num_images: Passed to ``evaluate``.
    """
    metric.dataset_meta = dict(classes=classes)
    t_process, n_preds = 0.0, 0
    for s in samples:
        n_preds += len(s['pred_instances']['labels'])
        sync(str(s['pred_instances']['masks'].device))
        t = time.perf_counter()
        metric.process({}, [s])
        sync(str(s['pred_instances']['masks'].device))
        t_process += time.perf_counter() - t
    t = time.perf_counter()
    res = metric.evaluate(num_images)
    return dict(process=t_process, evaluate=time.perf_counter() - t,
                results=res, preds=n_preds)


def metric_rows(work_dir: str, device: str, *, num_images: int, width: int,
                height: int, preds_per_image: int = 57,
                nproc: int = 2) -> List[Row]:
    """citymask's metric on masks on ``device`` (boxes found there, only
    crops copied) vs mmdet's ``CityScapesMetric`` (a PNG per instance,
    then the official script), same predictions and numbers."""
    from mmdet.datasets import CityscapesDataset
    from mmdet.evaluation import CityScapesMetric

    from .compat import official_instance_evaluator
    from .evaluation.metrics import CityscapesInstanceMetric
    from .evaluation.results_format import find_gt_files
    from .testing.mini_cityscapes import make_mini_cityscapes
    from .testing.predictions import metric_samples
    root = osp.join(work_dir, 'metric_cityscapes')
    if not osp.isdir(osp.join(root, 'gtFine')):
        make_mini_cityscapes(root, dict(val=num_images), width, height,
                             seed=0, empty_every=0, things_range=(15, 26))
    gt_files = find_gt_files(osp.join(root, 'gtFine', 'val'))
    classes = CityscapesDataset.METAINFO['classes']

    def samples(dev):
        return metric_samples(gt_files, np.random.default_rng(0),
                              preds_per_image=preds_per_image, device=dev)

    cwd = os.getcwd()
    os.chdir(work_dir)  # the official script writes matches.json here
    try:
        with official_instance_evaluator():  # numpy >= 2.4
            theirs = time_metric(
                CityScapesMetric(
                    outfile_prefix=osp.join(work_dir, 'metric_mmdet'),
                    seg_prefix=osp.join(root, 'gtFine', 'val')),
                samples(device), classes, len(gt_files))
    finally:
        os.chdir(cwd)
    ours = time_metric(CityscapesInstanceMetric(nproc=nproc),
                       samples(device), classes, len(gt_files))
    same = all(abs(ours['results'][k] - theirs['results'][k]) <= 1e-12
               for k in ('cityscapes/mAP', 'cityscapes/AP@50'))
    setting = (f'{len(gt_files)} frames {width}x{height}, '
               f'{ours["preds"] / len(gt_files):.0f} {device} masks each')
    rows = []
    for name, t in (('metric: mmdet CityScapesMetric', theirs),
                    ('metric: citymask CityscapesInstanceMetric', ours)):
        total = t['process'] + t['evaluate']
        n = len(gt_files)
        rows.append(Row(name, setting,
                        f'process {1000 * t["process"] / n:.1f} + evaluate '
                        f'{1000 * t["evaluate"] / n:.1f} ms/img = '
                        f'{total:.2f} s, mAP '
                        f'{t["results"]["cityscapes/mAP"]:.4f}'))
    ratio = ((theirs['process'] + theirs['evaluate']) /
             (ours['process'] + ours['evaluate']))
    p_ratio = theirs['process'] / ours['process']
    rows.append(Row('metric: speed-up', setting,
                    f'{ratio:.1f}x overall, {p_ratio:.1f}x in process; '
                    f'same AP: {same}', same))
    return rows


# ---- the check -------------------------------------------------------------
def gpu_check(work_dir: str, device: str, *, config: str = FT_CONFIG,
              num_images: int = 16, width: int = 2048, height: int = 1024,
              iters: int = 50, warmup: int = 10, infer_iters: int = 50,
              metric_images: int = 20, workers: int = 4,
              batch_size: Optional[int] = None,
              log: Callable[[str], None] = print) -> List[Row]:
    """Every row of the GPU check (module docstring).

    Args:
        work_dir: Generated frames and annotations (reused when there).
        device: ``cuda`` or ``cpu``.
        config: The citymask config to time (the fine-tune config).
        num_images: Generated training frames.
        width: Frame width (2048: full size, the config's own scales).
        height: Frame height.
        iters: Timed training iterations (median reported).
        warmup: Untimed iterations before each timing.
        infer_iters: Timed inference images (median reported).
        metric_images: Frames for the metric rows.
        workers: Data loader workers.
        batch_size: Images per iteration (default: the config's).
        log: Where each row goes as soon as it is measured.
    """
    from .testing.mini_cityscapes import make_benchmark_set
    gpu = device.startswith('cuda')
    rows: List[Row] = []

    def add(new):
        for r in new:
            rows.append(r)
            log(f'{r.check}: {r.result}')

    add(check_cuda_ops(device))
    root, anns = make_benchmark_set(work_dir, num_images, width, height)
    setting = f'{width}x{height} frames, {workers} workers'
    base, model, cfg = None, None, None
    for name, path, fmt, amp in (
            ('train: stock mmdet fp32', STOCK_CONFIG, 'rle', None),
            ('train: citymask fp32', config, 'polygon', None),
            ('train: citymask AMP fp16', config, 'polygon', 'float16')):
        cfg_ = bench_config(path, root, anns[fmt], width=width,
                            height=height, batch_size=batch_size,
                            workers=workers)
        if amp and not gpu:  # AmpOptimWrapper needs CUDA
            add([Row(name, setting, NEEDS_GPU, None)])
            continue
        r = train_speed(cfg_, device, iters=iters, warmup=warmup, amp=amp)
        batch = cfg_.train_dataloader.batch_size
        img_s = batch / r['s_per_iter']
        base = base or img_s
        mem = f', peak {r["peak_gib"]:.1f} GiB' if gpu else ''
        add([Row(name, f'{setting}, batch {batch}',
                 f'{img_s:.2f} img/s ({img_s / base:.2f}x stock), data wait '
                 f'{100 * r["data_share"]:.0f}%{mem}')])
        if not amp and path == config:
            model, cfg = r['model'], cfg_
    for name, amp in (('infer: citymask fp32', None),
                      ('infer: citymask fp16', 'float16')):
        if amp and not gpu:
            add([Row(name, '', NEEDS_GPU, None)])
            continue
        t = infer_latency(model, cfg, device, iters=infer_iters,
                          warmup=warmup, amp=amp)
        add([Row(name, f'{height}x{width}, batch 1, median of '
                 f'{infer_iters}', f'{1000 * t:.1f} ms/img')])
    add(metric_rows(work_dir, device, num_images=metric_images, width=width,
                    height=height))
    return rows
