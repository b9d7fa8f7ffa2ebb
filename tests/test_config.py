"""citymask.config: loading configs and the data-root rewrite."""
import os.path as osp

import pytest
from mmengine.config import ConfigDict

from citymask.config import dataset_of, load_config, resolve_config_path
from citymask.errors import CitymaskError
from .conftest import CONFIGS

FT = osp.join(CONFIGS, 'maskrcnn_r50_fpn_cityscapes_ft.py')


def test_missing_config_names_the_config_folder():
    with pytest.raises(CitymaskError, match='configs/maskrcnn_r50_fpn_'):
        load_config('configs/nope.py')


def test_broken_config_is_one_error(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(\n')
    with pytest.raises(CitymaskError, match=f'cannot read config {bad}'):
        load_config(str(bad))


def test_data_root_reaches_every_dataset_and_evaluator_path():
    cfg = load_config(FT, {'data_root': '/data/cs'})
    assert cfg.data_root == '/data/cs/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert dataset_of(cfg[key]).data_root == '/data/cs/'
    for ev in cfg.val_evaluator + cfg.test_evaluator:
        paths = [v for k, v in ev.items() if k in ('seg_prefix', 'ann_file')]
        assert paths and all(p.startswith('/data/cs/') for p in paths)
    # unrelated strings keep their value
    assert cfg.load_from.startswith('https://')


def test_other_options_are_merged():
    cfg = load_config(FT, {'train_cfg.max_iters': 6})
    assert cfg.train_cfg.max_iters == 6
    assert cfg.data_root == 'data/cityscapes/'


def test_mmdet_config_names_resolve_to_files():
    path = resolve_config_path(
        'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py')
    assert osp.isfile(path)
    assert resolve_config_path('configs/x.py') == 'configs/x.py'


def test_dataset_of_unwraps_dataset_wrappers():
    inner = ConfigDict(type='CityscapesDataset', ann_file='a.json')
    loader = ConfigDict(dataset=ConfigDict(
        type='RepeatDataset', times=8,
        dataset=ConfigDict(type='ClassBalancedDataset', dataset=inner)))
    assert dataset_of(loader).ann_file == 'a.json'
