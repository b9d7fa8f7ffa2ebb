"""citymask.compat's workarounds: checkpoint loading (allow-list, downloads),
atomic writes, mixed precision (anchors, RoIs fp32; CPU bf16 trains close to
fp32), cityscapesscripts' evaluator on numpy >= 2.4 (numpy untouched)."""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from cityscapesscripts.evaluation import \
    evalInstanceLevelSemanticLabeling as official
from mmcv.ops import RoIAlign
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

import citymask.register  # noqa: F401  (applies the workarounds)
from citymask.compat import official_instance_evaluator
from .conftest import CONFIGS, RunsCode, build_model

MINI = osp.join('mini', 'maskrcnn_r18_fpn_mini_cityscapes.py')


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        return dict(loss=((self.linear(inputs) - labels)**2).mean())


def make_runner(work_dir, max_iters, resume=False, init_seed=0):
    g = torch.Generator().manual_seed(0)
    data = zip(torch.randn(8, 2, generator=g), torch.randn(8, 1, generator=g))
    torch.manual_seed(init_seed)  # the initial weights
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=[dict(inputs=x, labels=y) for x, y in data], batch_size=2,
            sampler=dict(type='InfiniteSampler', shuffle=False),
            collate_fn=dict(type='default_collate'), num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        # `end` fixed, as in citymask's configs: mmengine would default it
        # to this run's max_iters and the short run stands for a long one
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, begin=0, end=4,
            milestones=[3], gamma=0.1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=2)),
        randomness=dict(seed=7), resume=resume, default_scope='mmengine')


def test_numpy_scalars_in_meta_load_only_with_citymask(tmp_path):
    # the upstream reproduction: mmengine writes numpy scalars into meta
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint(dict(meta=dict(seed=np.int64(3), score=np.float32(0.5)),
                         state_dict={'w': torch.ones(2)}), path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['seed'] == 3 and ckpt['meta']['score'] == 0.5
    # what the allow-list fixes: without citymask torch refuses the file
    out = subprocess.run([sys.executable, '-c',
                          f'import torch; torch.load({path!r})'],
                         capture_output=True, text=True)
    assert out.returncode == 1 and 'UnpicklingError' in out.stderr


@pytest.mark.parametrize('target', ['os.system', 'subprocess.call', 'eval',
                                    'exec'])
def test_allow_list_still_refuses_code(tmp_path, target):
    marker = tmp_path / 'ran'
    code = f'open({str(marker)!r}, "w").close()'
    call = {'os.system': (os.system, f'touch {marker}'),
            'subprocess.call': (subprocess.call, ['touch', str(marker)]),
            'eval': (eval, code), 'exec': (exec, code)}[target]
    path = tmp_path / 'evil.pth'
    path.write_bytes(pickle.dumps({'meta': RunsCode(*call)}))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    # mmengine's loader (load_from / resume) takes the same path
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def _torch_own(entry):
    """What torch allow-lists itself: its own types and (torch 2.14) the
    exceptions and tracebacks ``torch.distributed`` passes between ranks."""
    import builtins
    import traceback
    return entry.__module__.startswith('torch.') or \
        entry in (traceback.StackSummary, traceback.FrameSummary) or (
            isinstance(entry, type) and issubclass(entry, BaseException)
            and getattr(builtins, entry.__name__, None) is entry)


def test_allow_list_holds_data_types_only(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    from citymask.compat import _history_buffer_getattr, mmengine_safe_globals
    assert (allowed := torch.serialization.get_safe_globals())
    # citymask's own entries are all in the registry, none of them torch's
    ours = mmengine_safe_globals()
    assert ours and all(entry in allowed for entry in ours)
    assert not any(_torch_own(e) for e in ours if not isinstance(e, tuple))
    for entry in allowed:
        if isinstance(entry, tuple):  # (stand-in, the name it answers)
            assert entry == (_history_buffer_getattr, 'builtins.getattr')
            continue
        if _torch_own(entry):
            continue
        # numpy's array / scalar / dtype rebuilders and HistoryBuffer: no
        # callable of os, subprocess, builtins or anything else
        assert entry is HistoryBuffer or \
            entry.__module__.split('.')[0] == 'numpy', entry
    # the getattr stand-in: a real getattr would reach any allow-listed
    # class's methods (ndarray.tofile writes files)
    path = tmp_path / 'evil.pth'
    torch.save({'x': RunsCode(getattr, np.ndarray, 'tofile')}, path)
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        torch.load(path, weights_only=True)


def test_runner_resume_restores_iter_optimizer_and_lr(tmp_path):
    (ref := make_runner(tmp_path / 'ref', 4)).train()  # uninterrupted
    # interrupted: 2 iterations, checkpoint, then resumed to 4
    make_runner(tmp_path / 'run', 2).train()
    # it loads weights-only, as tools/test.py or a resumed job would: meta
    # and the message hub's HistoryBuffers
    saved = torch.load(tmp_path / 'run' / 'iter_2.pth', weights_only=True)
    assert saved['meta']['iter'] == 2 and saved['message_hub']['log_scalars']

    # other initial weights: only what it resumes can match the reference
    cont = make_runner(tmp_path / 'run', 4, resume=True, init_seed=1)
    cont.train()
    assert cont.iter == 4
    # lr passed the milestone at 3 in both runs: same schedule position;
    # the same weights need the weights and the momentum restored
    assert cont.optim_wrapper.get_lr()['lr'] == pytest.approx(
        ref.optim_wrapper.get_lr()['lr'])
    for a, b in zip(cont.model.parameters(), ref.model.parameters()):
        torch.testing.assert_close(a, b)


def test_downloads_load_weights_only(tmp_path):
    # mmengine's http/torchvision/open-mmlab loaders all call this function;
    # a file:// URL exercises the real download path without a network.
    from mmengine.runner import checkpoint
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict={'w': torch.ones(2)}), good)
    ckpt = checkpoint.load_from_http(good.as_uri(),
                                     model_dir=str(tmp_path / 'hub'))
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))

    evil = tmp_path / 'evil.pth'
    torch.save({'meta': RunsCode(print, 'pwned')}, evil)
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.load_from_http(evil.as_uri(),
                                  model_dir=str(tmp_path / 'hub'))


def test_out_pickle_is_whole_or_absent(tmp_path):
    # tools/test.py --out: citymask.compat's atomic dump
    from mmdet.evaluation import DumpDetResults

    from citymask.checkpoint import load_pickle
    out = tmp_path / 'results.pkl'
    DumpDetResults(out_file_path=str(out)).compute_metrics([{'a': 1}])
    before = out.read_bytes()
    # fails half-way through pickling: mmengine alone would leave half
    with pytest.raises(Exception):
        DumpDetResults(out_file_path=str(out)).compute_metrics(
            [{'a': np.zeros(10**6)}, {'b': lambda: 0}])
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ['results.pkl']
    assert load_pickle(str(out)) == [{'a': 1}]


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
    """Two generated 512x256 frames through the mini training pipeline."""
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
    """Losses, backbone gradients and RPN proposals of one step under CPU
    autocast to ``dtype`` (None: fp32); the RoI head gets ``proposals``
    (empty: the RPN's, kept), so both precisions sample the same RoIs."""
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
    # same RoIs, only rounding left: bf16's 0.2 % per number largely
    # cancels in each loss's mean over thousands of terms
    losses = [k for k in ref if k.startswith('loss')]
    assert len(losses) == 6
    for k in losses:
        assert got[k] == pytest.approx(ref[k], rel=2e-3, abs=1e-4), k
    # gradients reach the backbone, in fp32's direction
    assert torch.isfinite(grads).all() and grads.abs().sum() > 0
    assert torch.nn.functional.cosine_similarity(grads, ref_grads, 0) > 0.99


def test_in1d_while_it_runs_and_only_then():
    before = official.np, official.writeDict2JSON
    # the evaluator's own use: assignGt2Preds' void mask
    gt = np.array([[0, 24001, 24001], [1, 26000, 255]], np.int32)
    void = [0, 1, 255]
    with official_instance_evaluator() as module:
        assert module is official
        got = official.np.in1d(gt, void).reshape(gt.shape)
        assert got.tolist() == [[True, False, False], [True, False, True]]
        # numpy's own spelling of the same question
        assert official.np.in1d(gt, void, invert=True).tolist() == \
            (~np.isin(gt, void)).ravel().tolist()
        assert official.np.float32 is np.float32  # the rest is numpy
    assert (official.np, official.writeDict2JSON) == before
    assert ('in1d' in dir(np)) == hasattr(np, 'in1d')  # numpy untouched
    with pytest.raises(RuntimeError):  # restored after an error too
        with official_instance_evaluator():
            raise RuntimeError
    assert official.np is before[0]


def test_matches_json_with_numpy_integers(tmp_path):
    # numpy 2's count_nonzero returns numpy integers, which the evaluator
    # puts into matches.json
    matches = {'a.png': {'prediction': {'car': [
        {'intersection': np.count_nonzero(np.ones(3)), 'confidence': 0.5}]}}}
    with official_instance_evaluator():
        official.writeDict2JSON(matches, str(tmp_path / 'matches.json'))
    assert json.loads((tmp_path / 'matches.json').read_text()) == {'a.png': {
        'prediction': {'car': [{'intersection': 3, 'confidence': 0.5}]}}}
