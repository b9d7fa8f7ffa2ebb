"""citymask.preflight: the checks tools run before any work starts."""
import json
import os
import os.path as osp

import pytest
import torch

from citymask.config import load_config
from citymask.errors import CheckpointError, CitymaskError
from citymask.preflight import (check_checkpoint, check_data,
                                check_test_outputs, check_work_dir)
from .conftest import MINI_CFG, REPO, build_model

MINI = osp.join(REPO, MINI_CFG)


def _ann(root, split='train', images=(0, ), annotations=(dict(
        id=1, image_id=0, category_id=26, iscrowd=0), )):
    os.makedirs(root / 'annotations', exist_ok=True)
    path = root / 'annotations' / f'instancesonly_filtered_gtFine_{split}.json'
    path.write_text(json.dumps(dict(images=[dict(id=i) for i in images],
                                    annotations=list(annotations))))
    return path


def test_check_data_names_the_converter_command(tmp_path):
    cfg = load_config(MINI, {'data_root': str(tmp_path)})
    with pytest.raises(CitymaskError, match='instancesonly_filtered_gtFine_'
                       'train.json not found .*tools/dataset_converters/'
                       'cityscapes.py'):
        check_data(cfg, 'train_dataloader')
    ann = _ann(tmp_path)
    with pytest.raises(CitymaskError, match='leftImg8bit/train/ not found'):
        check_data(cfg, 'train_dataloader')
    os.makedirs(tmp_path / 'leftImg8bit' / 'train')
    check_data(cfg, 'train_dataloader')
    with pytest.raises(CitymaskError, match='gtFine_val.json not found'):
        check_data(cfg, 'train_dataloader', 'val_dataloader')
    ann.write_text('{"images": [')  # truncated
    with pytest.raises(CitymaskError,
                       match=f'annotation file {ann} is not valid JSON'):
        check_data(cfg, 'train_dataloader')
    crowd = dict(id=1, image_id=0, category_id=26, iscrowd=1)
    _ann(tmp_path, annotations=[crowd])
    with pytest.raises(CitymaskError, match=f'{ann} has nothing to train '
                       'on: 1 images, none with a non-crowd instance'):
        check_data(cfg, 'train_dataloader')
    _ann(tmp_path, 'val', annotations=[crowd])  # fine to test on
    os.makedirs(tmp_path / 'leftImg8bit' / 'val')
    check_data(cfg, 'val_dataloader')
    _ann(tmp_path, annotations=[crowd, dict(crowd, iscrowd=0)])
    check_data(cfg, 'train_dataloader')


def test_work_dir_and_show_dir_are_checked_writable(tmp_path):
    check_work_dir(str(tmp_path / 'new' / 'dir'))
    assert os.listdir(tmp_path / 'new' / 'dir') == []  # probe removed
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(CitymaskError, match='cannot write to work dir'):
        check_work_dir(str(blocker / 'sub'))
    # tools/test.py passes all its outputs here (--out, --outfile-prefix:
    # through the tool, tests/test_fileio.py)
    with pytest.raises(CitymaskError,
                       match=f'cannot write --show-dir {blocker}/vis: '
                       f'{blocker} is a file, not a folder'):
        check_test_outputs(str(tmp_path / 'w'), show_dir=str(blocker / 'vis'))
    with pytest.raises(CitymaskError, match='cannot write --show-dir '):
        check_test_outputs(str(blocker), show_dir='vis')  # relative
    check_test_outputs(str(tmp_path / 'w'), show_dir='vis')
    assert sorted(os.listdir(tmp_path)) == ['a_file', 'new']


def test_a_zip_beside_the_submission_is_replaced_only_with_it(tmp_path):
    from citymask.fileio import atomic_dir
    prefix, zipped = tmp_path / 'sub', tmp_path / 'sub.zip'
    zipped.write_bytes(b'the user\'s own zip')
    for overwrite in (False, True):
        with pytest.raises(CitymaskError,
                           match=f'submission zip {zipped} exists'):
            check_test_outputs(str(tmp_path), outfile_prefix=str(prefix),
                               overwrite=overwrite)
    with atomic_dir(str(prefix)) as d:  # an earlier submission, its zip
        open(osp.join(d, 'a_pred.txt'), 'w').close()
    check_test_outputs(str(tmp_path), outfile_prefix=str(prefix),
                       overwrite=True)
    assert zipped.read_bytes() == b'the user\'s own zip'  # checks only


def test_format_only_never_replaces_a_folder_of_user_files(tmp_path):
    mine = tmp_path / 'cityscapes'  # e.g. the dataset root, by a typo
    (mine / 'leftImg8bit').mkdir(parents=True)
    (mine / 'stale_pred.txt').write_text('old.png 26 0.9\n')
    for overwrite in (False, True):
        with pytest.raises(CitymaskError) as e:
            check_test_outputs(str(tmp_path / 'w'), outfile_prefix=str(mine),
                               overwrite=overwrite)
        assert str(e.value) == (
            f'--outfile-prefix {mine} is not empty (2 entries, e.g. '
            'leftImg8bit) and not an earlier output of this tool (no record '
            f'of it in {tmp_path}/.citymask-cityscapes), so it is never '
            'replaced; choose a new or empty folder')
    assert sorted(p.name for p in mine.rglob('*')) == [
        'leftImg8bit', 'stale_pred.txt']
    assert os.listdir(tmp_path) == ['cityscapes']


# checkpoints: loadable, and fitting the model as the config loads them


def _shapes(cfg, num_classes=None):
    """``{key: shape}`` of the model ``cfg`` builds (on the meta device)."""
    with torch.device('meta'):
        return {k: v.shape for k, v in
                build_model(cfg, num_classes).state_dict().items()}


def _save(path, shapes, **rest):
    """A checkpoint of these shapes: one stored number per tensor."""
    torch.save(dict(rest, state_dict={
        k: torch.zeros(()).expand(s) for k, s in shapes.items()}), path)
    return str(path)


def test_a_checkpoint_must_load_and_resume_needs_a_training_state(tmp_path):
    cfg = load_config(MINI)
    check_checkpoint(cfg, None)
    check_checkpoint(cfg, 'https://example.com/x.pth')  # when downloaded
    with pytest.raises(CitymaskError, match='not found'):
        check_checkpoint(cfg, str(tmp_path / 'missing.pth'))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint'):
        check_checkpoint(cfg, str(junk))
    shapes = _shapes(cfg)
    path = _save(tmp_path / 'model.pth', shapes)  # like a surgery output
    check_checkpoint(cfg, path)  # fine for load_from
    check_checkpoint(cfg, _save(tmp_path / 'ddp.pth', {  # DDP prefix too
        'module.' + k: s for k, s in shapes.items()}))
    with pytest.raises(CitymaskError) as e:
        check_checkpoint(cfg, path, resume=True)
    assert str(e.value) == (
        f'--resume {path}: it holds model weights only, no training state '
        '(optimizer, iteration) to resume; to train from these weights pass '
        f'--cfg-options load_from={path} instead of --resume')
    full = _save(tmp_path / 'iter_4.pth', shapes, meta=dict(iter=4),
                 optimizer=dict(state={}, param_groups=[]))
    check_checkpoint(cfg, full, resume=True)


def test_coco_heads_fit_only_where_the_config_converts_them(tmp_path):
    cfg = load_config(MINI)  # converts on load: CocoToCityscapesHook
    shapes = _shapes(cfg)  # another model's: named with both shapes
    del shapes['backbone.conv1.weight']
    shapes['extra.weight'] = (1, )
    shapes['neck.fpn_convs.0.conv.bias'] = (3, )
    path = _save(tmp_path / 'bad.pth', shapes)
    with pytest.raises(CitymaskError) as e:
        check_checkpoint(cfg, path)
    assert str(e.value) == (
        f"checkpoint {path} does not match the config's model "
        '(maskrcnn_r18_fpn_mini_cityscapes.py): neck.fpn_convs.0.conv.bias '
        'is (3,) in it, (64,) in the model; 1 shape mismatch '
        '(neck.fpn_convs.0.conv.bias); 1 missing (backbone.conv1.weight); '
        '1 unexpected (extra.weight); use the config it was trained with, or '
        "a checkpoint of this config's model")
    shapes = _shapes(cfg, num_classes=80)
    coco = _save(tmp_path / 'coco.pth', shapes)
    check_checkpoint(cfg, coco)
    # resumed, it is taken as it is: its optimizer state can't be converted
    run = _save(tmp_path / 'iter_4.pth', shapes, meta=dict(iter=4),
                optimizer=dict(state={}, param_groups=[]))
    with pytest.raises(CitymaskError, match='has COCO heads'):
        check_checkpoint(cfg, run, resume=True)
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h.type != 'CocoToCityscapesHook']
    with pytest.raises(CitymaskError) as e:
        check_checkpoint(cfg, coco)  # tested as it is: AP 0, before
    assert 'roi_head.bbox_head.fc_cls.bias is (81,) in it, (9,) in the ' \
        'model; 6 shape mismatch' in str(e.value)
    assert str(e.value).endswith(
        'it has COCO heads (80 classes) and nothing converts them on load: '
        f'convert it with `python tools/surgery.py {coco} OUT.pth`, or use '
        'a config that converts on load (custom_hooks: CocoToCityscapesHook)')
