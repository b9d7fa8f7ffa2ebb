"""The resume path: the checkpoint ``--resume`` continues from
(citymask.checkpoint.latest_checkpoint), on the files mmengine's
CheckpointHook leaves, and the config changes of tools/train.py's flags
(citymask.runner_setup.setup_train)."""
import os.path as osp

import pytest
import torch

from citymask.checkpoint import latest_checkpoint
from citymask.config import load_config
from citymask.errors import CitymaskError
from citymask.runner_setup import setup_train
from .conftest import CONFIGS


def _touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b'')
    return [str(folder / n) for n in names]


def test_last_checkpoint_names_it(tmp_path):
    _, named = _touch(tmp_path, 'iter_8.pth', 'iter_4.pth')
    # mmengine writes the path and no newline; a newline must not matter
    (tmp_path / 'last_checkpoint').write_text(named + '\n')
    assert latest_checkpoint(str(tmp_path)) == named


def test_newest_by_iteration_number_not_by_name(tmp_path):
    # "iter_9" sorts after "iter_12" as text
    _touch(tmp_path, 'iter_9.pth', 'iter_12.pth', 'iter_100.pth',
           'iter_11.pth')
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_100.pth')


def test_a_broken_pointer_falls_back_to_the_newest_file(tmp_path):
    _touch(tmp_path, 'iter_4.pth', 'iter_8.pth')
    pointer = tmp_path / 'last_checkpoint'
    for content in ('', '   \n', str(tmp_path / 'iter_12.pth')):
        pointer.write_text(content)  # emptied by a kill / file deleted
        assert latest_checkpoint(str(tmp_path)) == \
            str(tmp_path / 'iter_8.pth'), content


def test_nothing_to_resume(tmp_path):
    assert latest_checkpoint(str(tmp_path)) is None
    _touch(tmp_path, 'epoch_3.pth', 'best.pth', 'iter_.pth.tmp')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    assert latest_checkpoint(str(tmp_path)) is None
    assert latest_checkpoint(str(tmp_path / 'missing')) is None
    assert not osp.exists(tmp_path / 'missing')


# ---- setup_train: the config changes of tools/train.py's flags ------------
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
