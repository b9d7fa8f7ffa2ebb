"""Raw Cityscapes -> COCO JSON on generated 2048x1024 trees, and the tool."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from citymask.datasets.cityscapes_converter import convert_cityscapes
from ..conftest import ok, run_tool
from ..tools.conftest import fails
from .conftest import car, check_regions, write_frame

TOOL = 'tools/dataset_converters/cityscapes.py'


def _load(path):
    with open(path) as f:
        return json.load(f)


def _frames(root, split, coco):
    """``(image, its annotations, its instance PNG)`` of a split."""
    for img in coco['images']:
        png = osp.join(root, 'gtFine', split, img['file_name'].replace(
            'leftImg8bit.png', 'gtFine_instanceIds.png'))
        yield (img, [a for a in coco['annotations']
                     if a['image_id'] == img['id']],
               np.asarray(Image.open(png), np.int32))


@pytest.fixture(scope='module')
def cityscapes_like(tmp_path_factory):
    """``(root, {fmt: {split: json}})`` of the ``cityscapes`` distribution
    (approximate published statistics, irregular outlines, small things)."""
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    root = str(tmp_path_factory.mktemp('cityscapes_like'))
    make_mini_cityscapes(root, dict(train=6), seed=2, empty_every=0,
                         distribution='cityscapes')
    return root, {fmt: convert_cityscapes(root, osp.join(root, fmt),
                                          ['train'], fmt, progress=False)
                  for fmt in ('polygon', 'rle')}


@pytest.mark.parametrize('distribution', ['simple', 'cityscapes'])
@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_annotations_are_the_instance_png_regions(request, distribution, fmt):
    # every instance of *_instanceIds.png pixel for pixel, small and crowds
    if distribution == 'simple':
        root = request.getfixturevalue('mini_cityscapes')
        files = request.getfixturevalue('mini_coco')[fmt]
        files = {s: files[s] for s in ('train', 'val')}
    else:
        root, files = request.getfixturevalue('cityscapes_like')
        files = files[fmt]
    things, crowds, small = 0, 0, 0
    for split, path in files.items():
        coco = _load(path)
        names = glob.glob(osp.join(root, 'leftImg8bit', split, '*', '*.png'))
        assert sorted(i['file_name'] for i in coco['images']) == sorted(
            osp.relpath(p, osp.join(root, 'leftImg8bit', split))
            for p in names)
        for img, anns, inst in _frames(root, split, coco):
            assert (img['width'], img['height']) == (2048, 1024)
            by_id = check_regions(anns, inst)
            things += sum(i >= 1000 for i in by_id)
            crowds += sum(i < 1000 for i in by_id)
            small += sum(a['area'] < 100 for a in anns)
    assert things > 50 and crowds > 0 and small > 0


@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_mmdet_cityscapes_dataset_loads_it(mini_cityscapes, mini_coco, fmt):
    # Independent reference: mmdet's own dataset class parses the files.
    from mmdet.datasets import CityscapesDataset

    import citymask.register  # noqa: F401
    coco = _load(mini_coco[fmt]['train'])
    ds = CityscapesDataset(
        data_root=mini_cityscapes, ann_file=mini_coco[fmt]['train'],
        data_prefix=dict(img='leftImg8bit/train/'), lazy_init=False,
        filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=[])
    assert ds.metainfo['classes'][0] == 'person'
    with_things = {a['image_id'] for a in coco['annotations']
                   if not a['iscrowd']}
    assert len(ds) == len(with_things) > 0
    assert osp.isfile(ds[0]['img_path'])
    instances = [i for d in range(len(ds)) for i in ds[d]['instances']]
    assert {i['bbox_label'] for i in instances} <= set(range(8))
    assert sum(i['ignore_flag'] for i in instances) == sum(
        a['iscrowd'] for a in coco['annotations']
        if a['image_id'] in with_things)


def test_cli_writes_what_the_converter_writes(mini_cityscapes, mini_coco,
                                              tmp_path):
    from citymask.datasets.cityscapes_converter import available_cores
    res = ok(run_tool(TOOL, mini_cityscapes, '-o', str(tmp_path / 'all'),
                      '--nproc', '4'))
    # mini_coco: every split converted in this process (nproc=1)
    for split, path in mini_coco['polygon'].items():
        with open(path, 'rb') as a, \
                open(tmp_path / 'all' / osp.basename(path), 'rb') as b:
            assert a.read() == b.read(), split
    # more workers than cores is capped, with a note
    capped = available_cores() < 4
    assert ('note: --nproc 4 is more than the' in res.stderr) == capped
    res = ok(run_tool(TOOL, mini_cityscapes, '-o', str(tmp_path / 'some'),
                      '--splits', 'val', 'test', '--mask-format', 'rle'))
    assert 'test ground truth is not public' in res.stdout
    assert sorted(os.listdir(tmp_path / 'some')) == [
        'instancesonly_filtered_gtFine_test.json',
        'instancesonly_filtered_gtFine_val.json']
    for split, fmt in (('val', 'rle'), ('test', 'polygon')):
        assert _load(tmp_path / 'some' / osp.basename(
            mini_coco[fmt][split])) == _load(mini_coco[fmt][split])


# each case in-process: test_converter_units.py; here, the tool's end
@pytest.mark.parametrize('label', [None, 'spaceship'])
def test_bad_input_one_clear_line(tmp_path, label):
    root = str(tmp_path / 'cs')
    if label:
        write_frame(root, car(label=label), render=False)
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    fails(run_tool(TOOL, root, '-o', str(out_dir), '--splits', 'val'),
          f"unknown label '{label}'" if label else 'does not exist')
    assert os.listdir(out_dir) == []  # no JSON, no temp file
