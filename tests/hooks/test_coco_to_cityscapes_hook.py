"""CocoToCityscapesHook inside a real Runner built from the fine-tune config"""
import glob
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..conftest import CONFIGS
from ..surgery.foreign_layouts import CLS, MASK, REG, assert_heads_from


def _runner(tmp_path, load_from, resume=False):
    cfg = Config.fromfile(osp.join(CONFIGS,
                                   'maskrcnn_r50_fpn_cityscapes_ft.py'))
    cfg.update(work_dir=str(tmp_path), load_from=load_from, resume=resume)
    return Runner.from_cfg(cfg)


def test_hook_converts_coco_on_load(mmdet_coco_checkpoint, tmp_path):
    path, coco = mmdet_coco_checkpoint
    runner = _runner(tmp_path / 'a', path)
    hooks = [h for h in runner.hooks
             if type(h).__name__ == 'CocoToCityscapesHook']
    assert len(hooks) == 1 and hooks[0].priority == 'VERY_HIGH'
    runner.load_or_resume()
    # the mapping table is in the run's log file
    logs = glob.glob(osp.join(runner.log_dir, '*.log'))
    with open(logs[0]) as f:
        log = f.read()
    assert 'COCO checkpoint to Cityscapes heads' in log
    assert 'new: random init' in log
    # compared on the CPU: the Runner moves the model to a GPU where present
    loaded = {k: v.cpu() for k, v in runner.model.state_dict().items()}
    assert_heads_from(loaded, *(coco[k + '.weight'] for k in (CLS, REG, MASK)))
    assert torch.equal(loaded['backbone.conv1.weight'],
                       coco['backbone.conv1.weight'])

    # A Cityscapes checkpoint (what --resume / tools/test.py load) passes
    # through untouched.
    saved = tmp_path / 'cs.pth'
    state = {k: (v + 1 if v.is_floating_point() else v).cpu()
             for k, v in runner.model.state_dict().items()}
    torch.save(dict(state_dict=state, meta={}), saved)
    runner.load_checkpoint(str(saved))
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v.cpu(), state[k]), k
