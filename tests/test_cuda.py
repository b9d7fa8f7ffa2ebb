"""The CUDA paths, each against its CPU result (mmcv's ops, the RoI extractor
and AMP training under fp16 / bf16, the GPU check, the metric's crops).
Skipped where torch sees no GPU: the one skip the suite has."""
import os.path as osp
import re

import numpy as np
import pytest
import torch

from .conftest import build_model, ok, run_tool
from .test_compat import MINI, roi_align_inputs

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason='needs a CUDA GPU; torch sees none on this machine')


def _boxes(n, g, size=500.0, max_wh=100.0):
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * max_wh + 1
    return torch.cat([xy, xy + wh], 1)


def test_nms_cuda_matches_cpu():
    from mmcv.ops import nms
    g = torch.Generator().manual_seed(0)
    boxes = _boxes(3000, g)
    scores = torch.rand(3000, generator=g)
    dets_cpu, keep_cpu = nms(boxes, scores, iou_threshold=0.5)
    dets_gpu, keep_gpu = nms(boxes.cuda(), scores.cuda(), iou_threshold=0.5)
    assert dets_gpu.is_cuda and keep_gpu.is_cuda
    assert 0 < len(keep_cpu) < len(boxes)  # some kept, some suppressed
    assert torch.equal(keep_gpu.cpu(), keep_cpu)
    torch.testing.assert_close(dets_gpu.cpu(), dets_cpu)


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_cuda_matches_cpu(aligned):
    from mmcv.ops import RoIAlign

    # mmdet's RoI extractors: 7x7 (boxes) / 14x14 (masks), sampling_ratio 0
    op = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=0,
                  aligned=aligned)
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 16, 64, 96, generator=g)
    n = 50
    rois = torch.cat([torch.randint(0, 2, (n, 1), generator=g).float(),
                      _boxes(n, g, size=300.0, max_wh=80.0)], 1)
    grad_out = torch.randn(n, 16, 7, 7, generator=g)
    out = {}
    for device in ('cpu', 'cuda'):
        x = feats.to(device).requires_grad_()
        y = op(x, rois.to(device))
        y.backward(grad_out.to(device))
        assert y.device.type == device
        out[device] = (y.detach().cpu(), x.grad.cpu())
    assert out['cpu'][1].abs().sum() > 0
    torch.testing.assert_close(out['cuda'][0], out['cpu'][0], rtol=1e-5,
                               atol=1e-5)
    # the CUDA backward adds with atomics, in any order
    torch.testing.assert_close(out['cuda'][1], out['cpu'][1], rtol=1e-4,
                               atol=1e-5)


def needs(dtype):
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip('this GPU has no bf16')


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_roi_extractor_on_cuda_keeps_rois_fp32(dtype):
    needs(dtype)
    import citymask.register  # noqa: F401  (the fp32 RoI workaround)
    extractor = build_model(MINI).roi_head.bbox_roi_extractor.cuda()
    seen = roi_align_inputs(extractor)
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(1, 64, 1024 // s, 2048 // s, generator=g).cuda()
             for s in (4, 8, 16, 32)]
    rois = torch.tensor([[0., 1500.3, 700.6, 1530.7, 731.2],
                         [0., 100.5, 200.5, 400.5, 500.5]]).cuda()
    ref = extractor(feats, rois)
    seen.clear()
    out = extractor([f.to(dtype) for f in feats], rois)
    assert out.dtype == dtype
    assert seen == [(torch.float32, torch.float32)] * 2
    # only the features' rounding remains (bf16: 2**-8 relative)
    atol = 5e-3 if dtype == torch.float16 else 4e-2
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=atol)


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_amp_training_steps(dtype):
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import AmpOptimWrapper
    needs(getattr(torch, dtype))
    import citymask.register  # noqa: F401

    torch.manual_seed(0)
    model = build_model(MINI)
    model.init_weights()
    model = model.cuda().train()
    # what ``tools/train.py --amp [fp16|bf16]`` builds
    optim = AmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01,
                                  momentum=0.9),
        loss_scale='dynamic', dtype=dtype)
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 256, 512)] * 2,
                          num_items=[6, 4], num_classes=8, with_mask=True)
    dtypes = []
    hook = model.backbone.conv1.register_forward_hook(
        lambda module, inputs, output: dtypes.append(output.dtype))
    seen = roi_align_inputs(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    # the first fp16 steps may overflow at the initial loss scale and be
    # skipped (the scaler then lowers it): take a few
    for _ in range(3):
        log_vars = model.train_step(data, optim)
        assert torch.isfinite(torch.as_tensor(log_vars['loss']))
    hook.remove()
    # autocast was on; the RoIs stayed fp32 (bf16: mmcv's kernel has none)
    assert dtypes and set(dtypes) == {getattr(torch, dtype)}
    assert seen and set(seen) == {(torch.float32, torch.float32)}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(p.is_cuda for p in model.parameters())
    changed = [k for k, v in model.named_parameters()
               if not torch.equal(v, before[k])]
    assert changed, 'no weight changed in 3 AMP steps'
    assert 0 < optim.loss_scaler.get_scale() < float('inf')


def test_gpu_check_grid_tiny(tmp_path):
    res = ok(run_tool('tools/gpu_check.py', '--width', '512', '--height',
                      '256', '--num-images', '2', '--batch-sizes', '1', '2',
                      '--warmup', '1', '--steps', '3', '--infer-batch-sizes',
                      '1', '2', '--infer-steps', '1', '--workers', '1',
                      '--work-dir', str(tmp_path)))
    rows = re.findall(r'^\| ([12]) \| (fp32|fp16|bf16) \| (.*)\|$',
                      res.stdout, re.M)
    assert len(rows) == 12  # 6 training, 6 inference
    bf16 = torch.cuda.is_bf16_supported()
    for _, precision, cells in rows:
        if precision == 'bf16' and not bf16:
            assert cells.startswith('not measured: this GPU has no bf16')
            continue
        assert 'not measured' not in cells, cells
        parts = cells.split(' | ')  # training: 5 cells, inference: 3
        assert float(parts[1 if len(parts) == 5 else 2]) > 0  # peak GiB
    # exit 0: fp16's and bf16's losses within 10% of fp32's
    assert len(re.findall(r'^loss (fp16|bf16) vs fp32', res.stdout,
                          re.M)) == (4 if bf16 else 2)


@pytest.fixture(scope='module')
def val_frames(tmp_path_factory):
    from citymask.evaluation.results_format import find_gt_files
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    root = str(tmp_path_factory.mktemp('cuda_val'))
    make_mini_cityscapes(root, dict(val=3), width=1024, height=512, seed=5)
    return find_gt_files(osp.join(root, 'gtFine', 'val'))


def _samples(gt_files, device):
    from citymask.testing.predictions import metric_samples
    return list(metric_samples(gt_files, np.random.default_rng(0),
                               device=device))


def test_crop_masks_tensor_on_cuda_matches_numpy(val_frames):
    from citymask.evaluation.crops import (crop_masks, crop_masks_tensor,
                                           decode_crop)
    masks = _samples(val_frames[:1], 'cpu')[0]['pred_instances']['masks']
    masks = torch.cat([masks, torch.zeros_like(masks[:1])])  # one empty
    ours = crop_masks_tensor(masks.cuda())
    ref = crop_masks(masks.numpy())
    assert len(ours) == len(ref) == len(masks) and ours[-1] is None
    for mask, a, b in zip(masks.numpy(), ours, ref):
        assert (a is None) == (b is None)
        if a is None:
            continue
        x0, y0, crop = decode_crop(a)
        assert (x0, y0) == b[:2] and a[2] == b[2]
        full = np.zeros_like(mask)
        full[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        np.testing.assert_array_equal(full, mask)


def test_metric_on_cuda_masks_equals_cpu(val_frames):
    from mmdet.datasets import CityscapesDataset

    import citymask.register  # noqa: F401
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    results = {}
    for device in ('cpu', 'cuda'):
        metric = CityscapesInstanceMetric()
        metric.dataset_meta = dict(
            classes=CityscapesDataset.METAINFO['classes'])
        for s in _samples(val_frames, device):
            metric.process({}, [s])
        results[device] = metric.evaluate(len(val_frames))
    assert results['cpu']['cityscapes/mAP'] > 0
    np.testing.assert_equal(results['cuda'], results['cpu'])  # nan == nan


def test_box_mask_head_is_mmdets_paste_on_the_gpu():
    """BoxMaskHead on a GPU: mmdet's pixels at mask_thr_binary 0.5; under
    0.5 mmdet's own paste runs."""
    from .models.test_box_mask_head import compare
    compare(0.5, device='cuda')
    compare(0.3, device='cuda')
