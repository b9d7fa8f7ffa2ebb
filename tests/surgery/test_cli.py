"""tools/surgery.py as a user runs it."""
import os
import os.path as osp
import pickle

import torch

from citymask.cli import EXIT_IO
from .. import fs_fixtures
from ..conftest import build_model, ok, run_tool, shared_rows
from ..tools.conftest import fails
from .foreign_layouts import (CLS, MASK, REG, assert_heads_from,
                              detectron2_pkl, maskrcnn_benchmark_checkpoint)

TOOL = 'tools/surgery.py'
RIDER = 1
tiny_fs = fs_fixtures.tiny_fs


def test_mmdet_checkpoint_end_to_end(mmdet_coco_checkpoint, tmp_path):
    src, coco = mmdet_coco_checkpoint
    dst = tmp_path / 'cs.pth'
    out = ok(run_tool(TOOL, src, str(dst))).stdout
    assert 'new: random init' in out and 'rider' in out  # the table
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt.keys() == {'state_dict', 'meta'}
    assert ckpt['meta']['mmdet_version'] == '2.0.0'  # the source's meta
    assert ckpt['meta']['dataset_meta']['classes'][RIDER] == 'rider'
    state = ckpt['state_dict']
    model = build_model('maskrcnn_r50_fpn_cityscapes_ft.py')
    res = model.load_state_dict(state, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    for param in ('weight', 'bias'):
        assert_heads_from(state, *(coco[f'{k}.{param}']
                                   for k in (CLS, REG, MASK)), param=param)
    assert state.keys() == coco.keys()
    for k in state:  # the rest passes through
        if not k.startswith((CLS, REG, MASK)):
            assert torch.equal(state[k], coco[k]), k
    person = dict(shared_rows())[0]
    assert not torch.equal(state[CLS + '.weight'][RIDER],
                           coco[CLS + '.weight'][person])

    # idempotent: converting again changes nothing and says so
    again = tmp_path / 'again.pth'
    res = ok(run_tool(TOOL, str(dst), str(again)))
    assert 'nothing to change' in res.stdout
    state2 = torch.load(again, weights_only=True)['state_dict']
    assert state2.keys() == state.keys() and all(
        torch.equal(state[k], state2[k]) for k in state)

    # existing output needs --force
    fails(run_tool(TOOL, src, str(dst)), 'pass --force')
    assert torch.equal(torch.load(dst, weights_only=True)['state_dict'][
        CLS + '.weight'], state[CLS + '.weight'])
    out = ok(run_tool(TOOL, src, str(dst), '--force', '--rider-init',
                      'person')).stdout
    assert 'copy of person' in out
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['citymask_surgery']['rider_init'] == 'person'
    # rider's rows: the source's person rows (all heads: test_heads.py)
    assert torch.equal(ckpt['state_dict'][CLS + '.weight'][RIDER],
                       coco[CLS + '.weight'][person])


def test_foreign_formats(tmp_path):
    mbm_src = maskrcnn_benchmark_checkpoint()
    mbm = tmp_path / 'e2e_mask_rcnn_R_50_FPN_1x.pth'
    torch.save(mbm_src, mbm)
    out = ok(run_tool(TOOL, str(mbm), str(tmp_path / 'a.pth'))).stdout
    assert '(maskrcnn-benchmark)' in out
    state = torch.load(tmp_path / 'a.pth', weights_only=True)['state_dict']
    assert_heads_from(state, *(mbm_src['model'][f'module.roi_heads.{k}'] for k
                               in ('box.predictor.cls_score.weight',
                                   'box.predictor.bbox_pred.weight',
                                   'mask.predictor.mask_fcn_logits.weight')),
                      first=1)

    d2_src = detectron2_pkl()
    pkl = tmp_path / 'model_final_f10217.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(d2_src, f)
    out = ok(run_tool(TOOL, str(pkl), str(tmp_path / 'b.pth'),
                      '--src-format', 'detectron2')).stdout
    assert '(detectron2)' in out
    state = torch.load(tmp_path / 'b.pth', weights_only=True)['state_dict']
    assert_heads_from(state, *(d2_src['model'][f'roi_heads.{k}'] for k in (
        'box_predictor.cls_score.weight', 'box_predictor.bbox_pred.weight',
        'mask_head.predictor.weight')))
    fails(run_tool(TOOL, str(pkl), str(tmp_path / 'c.pth'), '--src-format',
                   'mmdet'), 'not a mmdet Mask R-CNN checkpoint')
    assert not (tmp_path / 'c.pth').exists()


def test_bad_inputs(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    fails(run_tool(TOOL, str(text), str(tmp_path / 'o.pth')),
          'is not a PyTorch checkpoint')
    fails(run_tool(TOOL, str(tmp_path / 'missing.pth'),
                   str(tmp_path / 'o.pth')), 'does not exist')
    assert not (tmp_path / 'o.pth').exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] \
        == []  # no temp files left behind


def test_surgery_onto_a_full_disk(mini_data, tiny_fs):
    # torch.save says "unexpected pos N vs M"; the user reads this
    dst = tiny_fs / 'cs.pth'
    line = fails(run_tool(TOOL, osp.join(mini_data[0], 'standin.pth'),
                          str(dst)), f'no space left on {dst} (', EXIT_IO)
    assert 'MiB needed, ' in line and 'nothing was written' in line
    assert os.listdir(tiny_fs) == []
