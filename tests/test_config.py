"""citymask.config: configs, --cfg-options, data root, values that can't
work (mmdet:: names: tests/test_runner_setup.py)."""
import argparse
import os.path as osp

import pytest
from mmengine.config import Config, ConfigDict

from citymask.cli import add_cfg_options
from citymask.config import dataset_of, load_config
from citymask.errors import CitymaskError
from .conftest import CONFIGS, MINI_CFG, REPO

FT = osp.join(CONFIGS, 'maskrcnn_r50_fpn_cityscapes_ft.py')
MINI = osp.join(REPO, MINI_CFG)


def _options(*pairs):
    parser = argparse.ArgumentParser()
    add_cfg_options(parser)
    return parser.parse_args(['--cfg-options', *pairs]).cfg_options


def test_a_missing_or_broken_config_is_one_error(tmp_path):
    with pytest.raises(CitymaskError, match='configs/maskrcnn_r50_fpn_'):
        load_config('configs/nope.py')  # names the config folder
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
    # dataset_of unwraps dataset wrappers
    inner = ConfigDict(type='CityscapesDataset', ann_file='a.json')
    loader = ConfigDict(dataset=ConfigDict(
        type='RepeatDataset', times=8,
        dataset=ConfigDict(type='ClassBalancedDataset', dataset=inner)))
    assert dataset_of(loader).ann_file == 'a.json'


# --cfg-options


def test_a_file_variable_is_refused_with_where_it_is_used():
    # the reference: mmengine merges it, and nothing that uses it changes
    plain = Config.fromfile(MINI)
    plain.merge_from_dict({'max_iters': 6})
    assert plain.max_iters == 6 and plain.train_cfg.max_iters == 300
    with pytest.raises(CitymaskError) as e:
        load_config(MINI, _options('max_iters=6'))
    assert str(e.value) == (
        '--cfg-options max_iters=6: max_iters is a variable of the config '
        'file, read only while the file is parsed, so setting it changes '
        'nothing; set it where it is used: train_cfg.max_iters')
    with pytest.raises(CitymaskError, match='train_pipeline is a variable '
                       '.* used: train_dataloader.dataset.pipeline'):
        load_config(MINI, _options('train_pipeline=[]'))
    cfg = load_config(MINI, _options('train_cfg.max_iters=6'))
    assert cfg.train_cfg.max_iters == 6
    assert cfg.data_root == 'data/mini_cityscapes/'  # the rest as it was


@pytest.mark.parametrize('pair,closest', [
    ('train_cfg.max_iter=6', 'train_cfg.max_iters'),
    ('model.backbone.dept=50', 'model.backbone.depth'),
    # CheckpointHook takes **kwargs, but this is a letter off `interval`
    ('default_hooks.checkpoint.intervall=2', 'default_hooks.checkpoint.'
     'interval'),
    # the Runner unpacks env_cfg itself; it takes no such key
    ('env_cfg.cudnn_benchmarkk=True', 'env_cfg.cudnn_benchmark'),
])
def test_a_misspelt_key_names_the_closest(pair, closest):
    with pytest.raises(CitymaskError, match=f'the config has no '
                       f'{pair.split("=")[0]} \\(closest: {closest}\\)'):
        load_config(MINI, _options(pair))


@pytest.mark.parametrize('pair,expected', [
    ('train_cfg.max_iters=abc', "takes an integer (the config has 300), "
     "got 'abc'"),
    ('model.roi_head.bbox_head.num_classes=8.5', 'takes an integer'),
    ('param_scheduler.1.milestones=8', 'takes a list, e.g. [a,b] (the '
     'config has [225]), got 8'),
    ('train_dataloader.persistent_workers=3', 'takes True or False'),
])
def test_a_value_of_the_wrong_type_is_refused(pair, expected):
    with pytest.raises(CitymaskError) as e:
        load_config(MINI, _options(pair))
    assert expected in str(e.value)


def test_keys_what_the_section_builds_takes_are_accepted():
    # read from the installed mmengine / mmdet: the registered type's
    # signature, what the Runner builds (DataLoader) or calls
    # (set_randomness), the keys its source reads (compile)
    cfg = load_config(MINI, _options(
        'default_hooks.checkpoint.max_keep_ckpts=2', 'randomness.seed=0',
        'randomness.deterministic=True', 'train_dataloader.pin_memory=True',
        'optim_wrapper.optimizer.lr=1', 'param_scheduler.1.milestones=[8]',
        'work_dir=/w', 'compile=False', 'find_unused_parameters=True'))
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 2
    assert cfg.randomness.seed == 0 and cfg.randomness.deterministic
    assert cfg.train_dataloader.pin_memory and cfg.find_unused_parameters
    assert cfg.optim_wrapper.optimizer.lr == 1
    assert cfg.param_scheduler[1].milestones == [8]
    for pair in ('randomness.sed=0', 'train_dataloader.pin_memroy=True',
                 'nonsense=1'):
        with pytest.raises(CitymaskError, match='the config has no'):
            load_config(MINI, _options(pair))


def test_paths_keep_spaces_commas_and_non_ascii():
    from mmengine.config import DictAction
    root = '/data/my cityscapes, v2/ü/'
    # the reference: mmengine 0.10.7's parser squeezes and splits it
    assert DictAction._parse_iterable(root) != root
    cfg = load_config(MINI, _options(f'data_root={root}',
                                     'load_from=/ckpt dir/a,b.pth'))
    assert cfg.data_root == root
    assert cfg.train_dataloader.dataset.data_root == root
    assert cfg.val_evaluator[0].seg_prefix == root + 'gtFine/val'
    assert cfg.load_from == '/ckpt dir/a,b.pth'
    assert load_config(MINI, _options('load_from=None')).load_from is None


# values and formats that can't work


@pytest.mark.parametrize('pair,expected', [
    ('train_dataloader.batch_size=0', 'batch_size must be greater than 0'),
    ('optim_wrapper.optimizer.lr=-1', 'lr must be greater than 0'),
    ('train_cfg.max_iters=0', 'max_iters must be greater than 0'),
    ('val_dataloader.num_workers=-2', 'num_workers must be 0 or more'),
])
def test_sizes_and_lr_must_be_positive(tmp_path, pair, expected):
    with pytest.raises(CitymaskError) as e:
        load_config(MINI, _options(pair))
    assert str(e.value) == f'--cfg-options {pair}: {expected}'
    bad = tmp_path / 'bad.py'  # in the file: named with it
    key, value = pair.split('=')
    bad.write_text(f'_base_ = {MINI!r}\n{key.split(".")[0]} = dict('
                   f'{key.split(".", 1)[1].replace(".", "=dict(")}={value}'
                   f'{")" * key.count(".")}\n')
    with pytest.raises(CitymaskError) as e:
        load_config(str(bad))
    assert str(e.value) == f'{bad}: {key} = {value}: {expected}'


def test_json_is_refused_yaml_works(tmp_path):
    cfg = Config.fromfile(MINI)
    cfg.dump(str(tmp_path / 'mini.json'))
    with pytest.raises(CitymaskError, match='mini.json: JSON has no tuples'):
        load_config(str(tmp_path / 'mini.json'))
    cfg.dump(str(tmp_path / 'mini.yaml'))
    yaml = load_config(str(tmp_path / 'mini.yaml'), {'data_root': '/d'})
    py = load_config(MINI, {'data_root': '/d'})
    assert yaml.train_pipeline == py.train_pipeline  # scales stay tuples
    assert yaml.train_dataloader == py.train_dataloader
