"""tools/surgery.py as a user runs it."""
import os
import pickle

import pytest
import torch

from ..conftest import build_model, run_tool
from .foreign_layouts import detectron2_pkl, maskrcnn_benchmark_checkpoint

TOOL = 'tools/surgery.py'


def _ok(res):
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _fails(res, message):
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    assert message in lines[0], lines[0]


def test_mmdet_checkpoint_end_to_end(mmdet_coco_checkpoint, tmp_path):
    src, _ = mmdet_coco_checkpoint
    dst = tmp_path / 'cs.pth'
    out = _ok(run_tool(TOOL, src, str(dst)))
    assert 'new: random init' in out and 'rider' in out  # the table
    state = torch.load(dst, weights_only=True)['state_dict']
    model = build_model('maskrcnn_r50_fpn_cityscapes_ft.py')
    res = model.load_state_dict(state, strict=True)
    assert not res.missing_keys and not res.unexpected_keys

    # idempotent: converting again changes nothing and says so
    again = tmp_path / 'again.pth'
    assert 'nothing to change' in _ok(run_tool(TOOL, str(dst), str(again)))
    state2 = torch.load(again, weights_only=True)['state_dict']
    assert all(torch.equal(state[k], state2[k]) for k in state)

    # existing output needs --force
    _fails(run_tool(TOOL, src, str(dst)), 'pass --force')
    _ok(run_tool(TOOL, src, str(dst), '--force', '--rider-init', 'person'))


def test_foreign_formats(tmp_path):
    mbm = tmp_path / 'e2e_mask_rcnn_R_50_FPN_1x.pth'
    torch.save(maskrcnn_benchmark_checkpoint(), mbm)
    out = _ok(run_tool(TOOL, str(mbm), str(tmp_path / 'a.pth')))
    assert '(maskrcnn-benchmark)' in out
    pkl = tmp_path / 'model_final_f10217.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(detectron2_pkl(), f)
    out = _ok(run_tool(TOOL, str(pkl), str(tmp_path / 'b.pth'),
                       '--src-format', 'detectron2'))
    assert '(detectron2)' in out
    _fails(run_tool(TOOL, str(pkl), str(tmp_path / 'c.pth'), '--src-format',
                    'mmdet'), 'not a mmdet Mask R-CNN checkpoint')


class Exploit:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('suffix', ['.pkl', '.pth'])
def test_malicious_pickle_is_refused(tmp_path, suffix):
    marker = tmp_path / 'pwned'
    evil = tmp_path / f'evil{suffix}'
    payload = dict(model={'roi_heads.box_predictor.cls_score.weight':
                          Exploit(marker)})
    if suffix == '.pth':
        torch.save(payload, evil)  # zip container, code inside the pickle
    else:
        with open(evil, 'wb') as f:
            pickle.dump(payload, f)
    dst = tmp_path / 'out.pth'
    res = run_tool(TOOL, str(evil), str(dst))
    _fails(res, 'run code')
    assert not marker.exists() and not dst.exists()


def test_bad_inputs(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    _fails(run_tool(TOOL, str(text), str(tmp_path / 'o.pth')),
           'is not a PyTorch checkpoint')
    _fails(run_tool(TOOL, str(tmp_path / 'missing.pth'),
                    str(tmp_path / 'o.pth')), 'does not exist')
    voc = maskrcnn_benchmark_checkpoint()
    for k in list(voc['model']):
        if 'cls_score' in k:
            voc['model'][k] = voc['model'][k][:21]
    torch.save(voc, tmp_path / 'voc.pth')
    _fails(run_tool(TOOL, str(tmp_path / 'voc.pth'), str(tmp_path / 'o.pth')),
           'expected 81 (COCO) or 9 (Cityscapes)')
    faster = maskrcnn_benchmark_checkpoint()
    faster['model'] = {k: v for k, v in faster['model'].items()
                       if '.mask.' not in k}
    torch.save(faster, tmp_path / 'faster.pth')
    _fails(run_tool(TOOL, str(tmp_path / 'faster.pth'),
                    str(tmp_path / 'o.pth')), 'not a Mask R-CNN checkpoint')
    assert not (tmp_path / 'o.pth').exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] \
        == []  # no temp files left behind
