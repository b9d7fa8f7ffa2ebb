"""The resume path: the config changes of tools/train.py's flags
(citymask.runner_setup.setup_train) and the checkpoint they resume from,
which must fit the model (citymask.preflight.check_checkpoint; the latest
checkpoint itself: tests/test_checkpoint.py)."""
import os.path as osp

import pytest
import torch

from citymask.config import load_config
from citymask.errors import CitymaskError
from citymask.preflight import check_checkpoint
from citymask.runner_setup import setup_train
from .conftest import CONFIGS, MINI_CFG, REPO
from .test_preflight import _save, _shapes


def _cfg():
    return load_config(osp.join(CONFIGS, 'maskrcnn_r50_fpn_cityscapes_ft.py'))


def test_no_flags_change_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _cfg()
    before = cfg.to_dict()
    setup_train(cfg, 'configs/x.py', work_dir=str(tmp_path))
    after = cfg.to_dict()
    # a single-process run: no launcher, no DDP wrapper, no gloo
    assert after.pop('launcher') == 'none'
    assert after.pop('work_dir') == str(tmp_path)
    assert after == before


def test_flag_errors_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)

    def error(cfg, **kwargs):
        with pytest.raises(CitymaskError) as e:
            setup_train(cfg, 'configs/x.py', **kwargs)
        return str(e.value)

    assert error(_cfg(), amp=True) == (
        "--amp needs a GPU (mmengine's AmpOptimWrapper refuses to run on "
        'CPU); train without --amp here')
    assert error(_cfg(), work_dir=str(tmp_path), resume='auto') == (
        f'--resume: no checkpoint in {tmp_path} to resume from; train '
        'without --resume, or pass --resume CHECKPOINT')
    cfg = _cfg()
    cfg.pop('auto_scale_lr')  # a config without the section at all
    assert error(cfg, auto_scale_lr=True) == (
        'configs/x.py has no auto_scale_lr.base_batch_size; '
        '--auto-scale-lr needs it')


def test_resume_into_a_work_dir_of_another_model(tmp_path):
    # written by the R-50 recipe, resumed with the mini config: the
    # Runner would fail in the optimizer's state, after building it all
    _save(tmp_path / 'iter_8.pth', _shapes(_cfg()), meta=dict(iter=8),
          optimizer=dict(state={}, param_groups=[]))
    cfg = setup_train(load_config(osp.join(REPO, MINI_CFG)), MINI_CFG,
                      work_dir=str(tmp_path), resume='auto')
    with pytest.raises(CitymaskError) as e:
        check_checkpoint(cfg, cfg.load_from, resume=True)
    assert str(e.value).startswith(
        f'checkpoint {tmp_path}/iter_8.pth does not match the config\'s '
        'model (maskrcnn_r18_fpn_mini_cityscapes.py): backbone.layer1.0.'
        'conv1.weight is (64, 64, 1, 1) in it, (64, 64, 3, 3) in the model;')
    assert str(e.value).endswith('use the config it was trained with, or a '
                                 "checkpoint of this config's model")
