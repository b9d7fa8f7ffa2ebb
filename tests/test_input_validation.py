"""Bad input refused with one clear line, in-process: --cfg-options, damaged
checkpoints, non-finite scores, label ids, annotation files, degenerate
polygons (docs/reliability.md lists each with its test)."""
import argparse
import errno
import json
import logging
import os
import os.path as osp
import pickle
import zipfile

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import name2label

from citymask.checkpoint import load_checkpoint_file, save_checkpoint
from citymask.cli import add_common_args
from citymask.config import load_config
from citymask.errors import CheckpointError, CitymaskError, ConversionError
from citymask.evaluation.frame_task import FrameTask
from citymask.evaluation.results_format import (label_id_report,
                                                read_prediction_txt)
from citymask.preflight import (check_checkpoint, check_data, check_loadable,
                                check_training_set)
from . import fs_fixtures
from .conftest import CONFIGS

MINI = osp.join(CONFIGS, 'mini', 'maskrcnn_r18_fpn_mini_cityscapes.py')
tiny_fs = fs_fixtures.tiny_fs


def _options(*pairs):
    parser = argparse.ArgumentParser()
    add_common_args(parser)
    return parser.parse_args(['--cfg-options', *pairs]).cfg_options


# --cfg-options


def test_a_file_variable_is_refused_with_where_it_is_used():
    # the reference: mmengine merges it, and nothing that uses it changes
    from mmengine.config import Config
    plain = Config.fromfile(MINI)
    plain.merge_from_dict({'max_iters': 6})
    assert plain.max_iters == 6 and plain.train_cfg.max_iters == 300
    with pytest.raises(CitymaskError) as e:
        load_config(MINI, _options('max_iters=6'))
    assert str(e.value) == (
        '--cfg-options max_iters=6: max_iters is a variable of the config '
        'file, read only while the file is parsed, so setting it changes '
        'nothing; set it where it is used: train_cfg.max_iters')
    cfg = load_config(MINI, _options('train_cfg.max_iters=6'))
    assert cfg.train_cfg.max_iters == 6


@pytest.mark.parametrize('pair,closest', [
    ('train_cfg.max_iter=6', 'train_cfg.max_iters'),
    ('model.backbone.dept=50', 'model.backbone.depth'),
    # CheckpointHook takes **kwargs, but this is a letter off `interval`
    ('default_hooks.checkpoint.intervall=2', 'default_hooks.checkpoint.'
     'interval'),
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


def test_keys_the_built_class_takes_are_accepted():
    cfg = load_config(MINI, _options(
        'default_hooks.checkpoint.max_keep_ckpts=2', 'randomness.seed=0',
        'train_dataloader.pin_memory=True', 'optim_wrapper.optimizer.lr=1',
        'param_scheduler.1.milestones=[8]', 'work_dir=/w'))
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 2
    assert cfg.randomness.seed == 0 and cfg.train_dataloader.pin_memory
    assert cfg.optim_wrapper.optimizer.lr == 1
    assert cfg.param_scheduler[1].milestones == [8]


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


@pytest.mark.parametrize('pair,expected', [
    ('foo', "--cfg-options 'foo': expected KEY=VALUE"),
    ('x=[1,2', 'cannot parse the value (Imbalanced brackets'),
])
def test_malformed_options_are_one_error(pair, expected):
    with pytest.raises(CitymaskError) as e:
        _options(pair)
    assert expected in str(e.value)


# checkpoints


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / 'model.pth'
    state = {'w': torch.randn(64, 256), 'b': torch.randn(64)}
    save_checkpoint(dict(state_dict=state, meta=dict(note='x')), str(path))
    return path, state


def test_damaged_tensor_bytes_fail_the_crc_check(saved, tmp_path):
    path, state = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:  # flip bytes inside a tensor record
        info = next(i for i in zf.infolist() if '/data/' in i.filename)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 100:start + 104] = b'\xde\xad\xbe\xef'
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(data)
    # the reference: torch loads it without a word, with other numbers
    loaded = torch.load(bad, weights_only=True)['state_dict']
    assert not all(torch.equal(loaded[k], state[k]) for k in state)
    for check in (load_checkpoint_file, check_loadable):
        with pytest.raises(CheckpointError,
                           match=f'checkpoint {bad} is damaged: its record '
                           f'.*{info.filename.split("/", 1)[1]} fails its '
                           'CRC-32 check'):
            check(str(bad))
    with pytest.raises(CheckpointError, match='is damaged'):
        check_checkpoint(load_config(MINI), str(bad))
    from citymask.surgery import convert_file
    with pytest.raises(CheckpointError, match='is damaged'):
        convert_file(str(bad), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


def test_a_truncated_checkpoint_is_named(saved, tmp_path):
    path, _ = saved
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(CheckpointError,
                       match=f'checkpoint {cut} is truncated'):
        load_checkpoint_file(str(cut))


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
def test_a_pkl_of_numpy_arrays_loads_in_every_protocol(tmp_path, protocol):
    weights = {'conv1.w': np.arange(24, dtype=np.float32).reshape(2, 3, 4),
               'fc.b': np.float64(0.5), 'ids': np.arange(3)}
    path = tmp_path / 'model.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(model=weights, __author__='Detectron'), f,
                    protocol=protocol)
    loaded = load_checkpoint_file(str(path))
    assert loaded['__author__'] == 'Detectron'
    for k, v in weights.items():
        assert np.array_equal(loaded['model'][k], v)
        assert loaded['model'][k].dtype == v.dtype


def test_protocol_2_codecs_only_encode_latin1(tmp_path):
    import _codecs

    class Sneaky:
        def __reduce__(self):
            return _codecs.encode, ('x', 'rot13')

    path = tmp_path / 'sneaky.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'a': Sneaky()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="encode.*'rot13'"):
        load_checkpoint_file(str(path))


def test_resume_needs_a_training_state(saved, tmp_path):
    path, state = saved  # weights only, like a COCO or surgery checkpoint
    check_loadable(str(path))  # fine for load_from
    with pytest.raises(CitymaskError) as e:
        check_loadable(str(path), resume=True)
    assert str(e.value) == (
        f'--resume {path}: it holds model weights only, no training state '
        '(optimizer, iteration) to resume; to train from these weights pass '
        f'--cfg-options load_from={path} instead of --resume')
    full = tmp_path / 'iter_4.pth'
    save_checkpoint(dict(state_dict=state, meta=dict(iter=4, epoch=0),
                         optimizer=dict(state={}, param_groups=[])),
                    str(full))
    check_loadable(str(full), resume=True)


@pytest.mark.parametrize('error', [
    OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), KeyboardInterrupt()])
def test_a_failed_checkpoint_write_is_what_it_is(tmp_path, monkeypatch,
                                                 error):
    import citymask.checkpoint as ckpt_module
    fs_fixtures.fail_writes(monkeypatch, ckpt_module, error)
    dst = tmp_path / 'ckpt.pth'
    state = {'w': torch.zeros(1000)}
    with pytest.raises(type(error)) as e:
        save_checkpoint(dict(state_dict=state), str(dst))
    if isinstance(error, OSError):  # not torch's "unexpected pos"
        assert e.value.errno == errno.ENOSPC
        assert e.value.filename == str(dst) and e.value.needed_bytes == 4000
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_on_a_real_full_disk(tiny_fs):
    from citymask.cli import os_error_line
    dst = tiny_fs / 'ckpt.pth'
    with pytest.raises(OSError) as e:
        save_checkpoint(dict(state_dict={'w': torch.zeros(2**19)}), str(dst))
    assert e.value.errno == errno.ENOSPC
    assert os_error_line(e.value).startswith(
        f'no space left on {dst} (2.0 MiB needed, ')
    assert os.listdir(tiny_fs) == []


# predictions


def test_non_finite_confidences_are_refused(tmp_path):
    txt = tmp_path / 'a_b_c_pred.txt'
    for bad in ('nan', 'inf', '-inf'):
        txt.write_text(f'm0.png 26 0.5\nm1.png 26 {bad}\n')
        with pytest.raises(CitymaskError,
                           match=f'{txt}:2: confidence {bad} is not a finite'):
            read_prediction_txt(str(txt))
    txt.write_text('m0.png inf 0.5\n')
    with pytest.raises(CitymaskError, match='must be numbers'):
        read_prediction_txt(str(txt))


def test_the_metric_refuses_non_finite_scores():
    import citymask.register  # noqa: F401
    from citymask.classes import CLASSES
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    metric = CityscapesInstanceMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    pred = dict(scores=torch.tensor([0.9, float('nan')]),
                labels=torch.tensor([0, 2]),
                masks=torch.zeros(2, 8, 8, dtype=torch.bool))
    with pytest.raises(CitymaskError, match='non-finite scores .* a_b_c'):
        metric.process({}, [dict(pred_instances=pred, img_path='a_b_c.png',
                                 ori_shape=(8, 8))])


def _tasks(*label_ids):
    return [FrameTask('gt.png', list(label_ids), [0.5] * len(label_ids))]


def test_label_ids_outside_the_classes_are_reported():
    assert label_id_report(_tasks(24, 26, 33)) is None
    # stuff classes (road 7, sky 23): counted, no train-id hint
    msg = label_id_report(_tasks(24, 7, 23, 26))
    assert msg.startswith('2 of 4 predictions have label ids outside the 8 '
                          'instance classes (24, 25, 26, 27, 28, 31, 32, 33) '
                          '(ids 7, 23), which the evaluation ignores')
    assert 'train ids' not in msg


def test_train_ids_get_the_mapping_from_cityscapesscripts():
    car = name2label['car']  # the reference: cityscapesscripts' table
    with pytest.raises(CitymaskError) as e:
        label_id_report(_tasks(car.trainId, car.trainId))
    msg = str(e.value)
    assert 'they look like train ids' in msg
    assert f'{car.trainId}->{car.id}' in msg
    assert msg.endswith('nothing left to evaluate')
    with pytest.raises(CitymaskError, match='look like class indices'):
        label_id_report(_tasks(0, 2))


# annotation files


def _data_root(root, train_anns):
    (root / 'annotations').mkdir(parents=True)
    (root / 'leftImg8bit' / 'train').mkdir(parents=True)
    ann = root / 'annotations' / 'instancesonly_filtered_gtFine_train.json'
    ann.write_text(json.dumps(dict(
        images=[dict(id=0, file_name='a.png')], annotations=train_anns,
        categories=[dict(id=26, name='car')])))
    return ann


def test_truncated_annotation_json_is_named(tmp_path):
    ann = _data_root(tmp_path, [])
    ann.write_text(ann.read_text()[:-20])
    cfg = load_config(MINI, {'data_root': str(tmp_path)})
    with pytest.raises(CitymaskError,
                       match=f'annotation file {ann} is not valid JSON'):
        check_data(cfg, 'train_dataloader')


def test_an_empty_training_set_is_refused(tmp_path):
    crowd = dict(id=1, image_id=0, category_id=26, iscrowd=1)
    ann = _data_root(tmp_path, [crowd])
    cfg = load_config(MINI, {'data_root': str(tmp_path)})
    with pytest.raises(CitymaskError, match=f'{ann} has nothing to train '
                       'on: 1 images, none with a non-crowd instance'):
        check_training_set(cfg)
    ann.write_text(json.dumps(dict(
        images=[dict(id=0)], annotations=[crowd, dict(crowd, iscrowd=0)])))
    check_training_set(cfg)


# polygons of fewer than 3 points


def test_two_point_polygons_are_kept_as_cityscapesscripts_draws_them(
        tmp_path, caplog):
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import \
        createInstanceImage

    from citymask.datasets.cityscapes_converter import (_coco_dict,
                                                        polygon_annotations)
    path = tmp_path / 'a_000000_000000_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=64, imgHeight=48, objects=[
        dict(label='car', polygon=[[10, 10], [40, 30]]),
        dict(label='person', polygon=[[5, 40], [20, 40], [20, 45]])])))
    size, anns = polygon_annotations(str(path))
    # the reference: the instance PNG cityscapesscripts draws from the file
    ann = Annotation()
    ann.fromJsonFile(str(path))
    inst = np.asarray(createInstanceImage(ann, 'ids'))
    car = [a for a in anns if a['category_id'] == 26]
    assert len(car) == 1
    assert car[0]['area'] == np.count_nonzero(inst == 26000) > 0
    with caplog.at_level(logging.WARNING):
        _coco_dict(str(tmp_path), 'train', [('x.png', str(path))],
                   [(dict(width=64, height=48), anns)])
    assert 'note: 1 train objects have a polygon of 2 points' in caplog.text
    assert all('_two_points' not in a for a in anns)  # not in the JSON


@pytest.mark.parametrize('points', [[[10, 10]], []])
def test_polygons_of_0_or_1_point_are_refused(tmp_path, points):
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import \
        createInstanceImage

    from citymask.datasets.cityscapes_converter import polygon_annotations
    path = tmp_path / 'a_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=64, imgHeight=48, objects=[
        dict(label='car', polygon=points)])))
    ann = Annotation()
    ann.fromJsonFile(str(path))
    with pytest.raises(Exception):  # cityscapesscripts can't draw it either
        createInstanceImage(ann, 'ids')
    with pytest.raises(ConversionError,
                       match=f"{path}: a 'car' object has a polygon of "
                       f'{len(points)} point'):
        polygon_annotations(str(path))
