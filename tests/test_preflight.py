"""citymask.preflight: the checks tools run before any work starts."""
import os
import os.path as osp

import pytest
import torch

from citymask.config import load_config
from citymask.errors import CheckpointError, CitymaskError
from citymask.preflight import (check_checkpoint, check_data, check_gpu_count,
                                check_loadable, check_work_dir)
from .conftest import CONFIGS, build_model

MINI = osp.join(CONFIGS, 'mini', 'maskrcnn_r18_fpn_mini_cityscapes.py')


def _tree(root, split='train', ann=True, images=True):
    if ann:
        os.makedirs(root / 'annotations', exist_ok=True)
        (root / 'annotations' /
         f'instancesonly_filtered_gtFine_{split}.json').write_text('{}')
    if images:
        os.makedirs(root / 'leftImg8bit' / split, exist_ok=True)


def test_check_data_names_the_converter_command(tmp_path):
    cfg = load_config(MINI, {'data_root': str(tmp_path)})
    with pytest.raises(CitymaskError) as e:
        check_data(cfg, 'train_dataloader')
    msg = str(e.value)
    assert 'instancesonly_filtered_gtFine_train.json not found' in msg
    assert 'tools/dataset_converters/cityscapes.py' in msg
    _tree(tmp_path, images=False)
    with pytest.raises(CitymaskError, match='leftImg8bit/train/ not found'):
        check_data(cfg, 'train_dataloader')
    _tree(tmp_path)
    check_data(cfg, 'train_dataloader')
    with pytest.raises(CitymaskError, match='gtFine_val.json not found'):
        check_data(cfg, 'train_dataloader', 'val_dataloader')


def test_check_work_dir(tmp_path):
    check_work_dir(str(tmp_path / 'new' / 'dir'))
    assert osp.isdir(tmp_path / 'new' / 'dir')
    assert os.listdir(tmp_path / 'new' / 'dir') == []  # probe removed
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(CitymaskError, match='cannot write to work dir'):
        check_work_dir(str(blocker / 'sub'))


def test_check_gpu_count(monkeypatch):
    for bad in ('0', '-1', 'two', ''):
        with pytest.raises(CitymaskError, match='positive integer'):
            check_gpu_count(bad)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    check_gpu_count('8')  # CPU processes: any count
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    check_gpu_count('2')
    with pytest.raises(CitymaskError, match='asked for 3 GPUs but this '
                       'machine has 2'):
        check_gpu_count('3')


def test_check_loadable(tmp_path):
    check_loadable(None)
    check_loadable('https://example.com/x.pth')  # checked when downloaded
    with pytest.raises(CitymaskError, match='not found'):
        check_loadable(str(tmp_path / 'missing.pth'))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint'):
        check_loadable(str(junk))
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}}, good)
    check_loadable(str(good))


@pytest.fixture(scope='module')
def mini_state():
    return build_model(osp.join('mini', 'maskrcnn_r18_fpn_mini_cityscapes.py')
                       ).state_dict()


def test_check_checkpoint_accepts_the_configs_model(tmp_path, mini_state):
    cfg = load_config(MINI)
    path = tmp_path / 'ok.pth'
    torch.save({'state_dict': mini_state}, path)
    check_checkpoint(cfg, str(path))
    # a DDP-prefixed copy fits too
    torch.save({'state_dict': {'module.' + k: v
                               for k, v in mini_state.items()}}, path)
    check_checkpoint(cfg, str(path))


def test_check_checkpoint_names_what_does_not_fit(tmp_path, mini_state):
    cfg = load_config(MINI)
    state = dict(mini_state)
    del state['backbone.conv1.weight']
    state['extra.weight'] = torch.zeros(1)
    state['neck.fpn_convs.0.conv.bias'] = torch.zeros(3)
    path = tmp_path / 'bad.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(CitymaskError) as e:
        check_checkpoint(cfg, str(path))
    msg = str(e.value)
    assert '1 missing (backbone.conv1.weight)' in msg
    assert '1 unexpected (extra.weight)' in msg
    assert '1 shape mismatch (neck.fpn_convs.0.conv.bias)' in msg
