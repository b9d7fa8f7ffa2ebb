"""Mixed precision on the pinned stack (``citymask.compat``'s
``fp32_box_coordinates``): anchors and RoIs stay fp32, RoIAlign runs on
fp32 under fp16 and bf16, and the mini model trains under CPU bf16
autocast with losses close to fp32's."""
import os.path as osp

import pytest
import torch
from mmcv.ops import RoIAlign
from mmengine.config import Config

import citymask.register  # noqa: F401  (applies the workaround)
from .conftest import CONFIGS, build_model

MINI = osp.join('mini', 'maskrcnn_r18_fpn_mini_cityscapes.py')


def roi_align_inputs(model):
    """(features dtype, RoI dtype) of every RoIAlign call in ``model``."""
    seen = []
    for m in model.modules():
        if isinstance(m, RoIAlign):
            m.register_forward_pre_hook(
                lambda mod, args: seen.append((args[0].dtype, args[1].dtype)))
    return seen


def test_mmcv_roi_align_reads_rois_in_the_feature_dtype_and_has_no_bf16():
    # why the workaround runs the extractor on fp32 (mmcv 2.1.0's CPU
    # kernel dispatches float, double and half, RoIs as the features)
    op = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=0)
    feats = torch.randn(1, 4, 16, 16)
    rois = torch.tensor([[0., 2., 2., 40., 30.]])
    with pytest.raises(RuntimeError, match='BFloat16'):
        op(feats.bfloat16(), rois.bfloat16())  # mmcv 2.1.0: no bf16
    with pytest.raises(RuntimeError, match='Half but found Float'):
        op(feats.half(), rois)


def test_fp16_keeps_anchors_coordinates_and_levels():
    model = build_model(MINI)
    # anchors asked for in fp16 / bf16 are fp32's, other dtypes as asked
    gen = model.rpn_head.prior_generator
    sizes = [(256 // s, 512 // s) for s in (4, 8, 16, 32, 64)]
    ref = gen.grid_priors(sizes, device='cpu')
    for dtype in (torch.float16, torch.bfloat16):
        for a, b in zip(gen.grid_priors(sizes, dtype=dtype, device='cpu'),
                        ref):
            assert a.dtype == torch.float32 and torch.equal(a, b)
    assert gen.grid_priors(sizes, torch.float64, 'cpu')[0].dtype == \
        torch.float64
    # the RoI extractor
    extractor = model.roi_head.bbox_roi_extractor
    seen = roi_align_inputs(extractor)
    g = torch.Generator().manual_seed(0)
    # FPN levels of a 2048x1024 image, strides 4..32
    feats = [torch.randn(1, 64, 1024 // s, 2048 // s, generator=g)
             for s in (4, 8, 16, 32)]
    # a small box right of x = 1024 (fp16 steps of 1 px there) and one of
    # 300x300 px (level 2; its area overflows fp16)
    rois = torch.tensor([[0., 1500.3, 700.6, 1530.7, 731.2],
                         [0., 100.5, 200.5, 400.5, 500.5]])
    # mmdet 3.3.0 alone: rois.type_as(fp16 features)
    assert rois.half()[0, 1].item() == 1500.0
    assert extractor.map_roi_levels(rois, 4).tolist() == [0, 2]
    assert extractor.map_roi_levels(rois.half(), 4).tolist() == [0, 3]

    ref = extractor(feats, rois)  # fp32: mmdet's own path
    assert seen == [(torch.float32, torch.float32)] * 2
    seen.clear()
    out = extractor([f.half() for f in feats], rois)
    assert out.dtype == torch.float16
    assert seen == [(torch.float32, torch.float32)] * 2
    # only the features' fp16 rounding (2**-11 relative) remains
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=5e-3)


@pytest.fixture(scope='module')
def real_batch(tmp_path_factory):
    """Two generated 512x256 frames through the mini config's training
    pipeline, collated."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed

    from citymask.testing.mini_cityscapes import make_benchmark_set
    root, anns = make_benchmark_set(
        str(tmp_path_factory.mktemp('amp')), 2, 512, 256)
    cfg = Config.fromfile(osp.join(CONFIGS, MINI))
    cfg.train_dataloader.dataset.update(data_root=root,
                                        ann_file=anns['polygon'])
    init_default_scope('mmdet')
    set_random_seed(0)  # the random resize and flip
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[0], dataset[1]])


def loss_and_grads(model, batch, dtype, proposals):
    """Losses, backbone gradients and RPN proposals of one forward and
    backward under CPU autocast to ``dtype`` (None: fp32). The RoI head
    gets ``proposals`` (when empty: the RPN's, put into it), so both
    precisions sample the same RoIs."""
    rpn, made = model.rpn_head, []

    def loss_and_predict(x, samples, proposal_cfg=None):
        losses, results = type(rpn).loss_and_predict(rpn, x, samples,
                                                     proposal_cfg)
        made.extend(results)
        proposals.extend([] if proposals else results)
        return losses, [p.clone() for p in proposals]  # the head pops

    rpn.loss_and_predict = loss_and_predict
    torch.manual_seed(1)  # the RPN's and the RoI head's samplers
    model.zero_grad()
    data = model.data_preprocessor(batch, True)
    with torch.autocast('cpu', dtype=dtype or torch.bfloat16,
                        enabled=dtype is not None):
        losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    loss.backward()
    del rpn.loss_and_predict
    grads = torch.cat([p.grad.flatten() for p in model.backbone.parameters()
                       if p.grad is not None])
    return {k: v.item() for k, v in log_vars.items()}, grads, made


def test_mini_model_trains_under_cpu_bf16_autocast(real_batch):
    torch.manual_seed(0)
    model = build_model(MINI)
    model.init_weights()
    model.train()
    seen = roi_align_inputs(model)
    proposals = []
    ref, ref_grads, _ = loss_and_grads(model, real_batch, None, proposals)
    dtypes = []
    hook = model.backbone.layer1.register_forward_hook(
        lambda mod, args, out: dtypes.append(out.dtype))
    seen.clear()
    got, grads, made = loss_and_grads(model, real_batch, torch.bfloat16,
                                      proposals)
    hook.remove()
    assert dtypes == [torch.bfloat16]  # autocast was on
    # bbox head and mask head, one RoIAlign call per used level: RoIs fp32
    assert seen and set(seen) == {(torch.float32, torch.float32)}
    # the bf16 RPN's own boxes (mmcv's nms takes fp32 only) are fp32
    assert made and all(r.bboxes.dtype == torch.float32 for r in made)
    # Same RoIs, only rounding left: bf16's 0.2 % per number largely
    # cancels in each loss's mean over thousands of terms (measured: at
    # most 3e-4 relative).
    losses = [k for k in ref if k.startswith('loss')]
    assert len(losses) == 6
    for k in losses:
        assert got[k] == pytest.approx(ref[k], rel=2e-3, abs=1e-4), k
    # gradients reach the backbone, in fp32's direction
    assert torch.isfinite(grads).all() and grads.abs().sum() > 0
    assert torch.nn.functional.cosine_similarity(grads, ref_grads, 0) > 0.99
