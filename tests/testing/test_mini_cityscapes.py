"""The mini-Cityscapes generator (citymask.testing.mini_cityscapes)."""
import glob
import json
import os.path as osp
import re

import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import name2label
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image

from citymask.testing.mini_cityscapes import make_mini_cityscapes

NAME = re.compile(r'^([a-z]+)_(\d{6})_(\d{6})_')
EVAL_CLASSES = ('person', 'rider', 'car', 'truck', 'bus', 'train',
                'motorcycle', 'bicycle')


def _gt_files(root, split):
    return sorted(glob.glob(osp.join(root, 'gtFine', split, '*',
                                     '*_gtFine_polygons.json')))


def test_official_layout(mini_cityscapes):
    root = mini_cityscapes
    for split, n in (('train', 10), ('val', 5), ('test', 2)):
        images = sorted(glob.glob(
            osp.join(root, 'leftImg8bit', split, '*', '*.png')))
        assert len(images) == n
        for img in images:
            city = osp.basename(osp.dirname(img))
            name = osp.basename(img)
            m = NAME.match(name)
            assert m and m.group(1) == city
            assert name.endswith('_leftImg8bit.png')
            stem = osp.join(root, 'gtFine', split, city,
                            name[:-len('leftImg8bit.png')] + 'gtFine_')
            with Image.open(img) as im:
                assert im.mode == 'RGB' and im.size == (2048, 1024)
            with Image.open(stem + 'instanceIds.png') as im:
                assert im.mode == 'I;16' and im.size == (2048, 1024)
            with Image.open(stem + 'labelIds.png') as im:
                assert im.mode == 'L' and im.size == (2048, 1024)
            with open(stem + 'polygons.json') as f:
                poly = json.load(f)
            assert (poly['imgWidth'], poly['imgHeight']) == (2048, 1024)


def test_pngs_are_what_cityscapesscripts_renders(mini_cityscapes):
    # Independent reference: re-render every file with cityscapesscripts.
    for path in _gt_files(mini_cityscapes, 'val') + _gt_files(
            mini_cityscapes, 'test'):
        ann = Annotation()
        ann.fromJsonFile(path)
        inst = np.asarray(createInstanceImage(ann, 'ids'))
        label = np.asarray(createLabelImage(ann, 'ids'))
        stem = path[:-len('polygons.json')]
        np.testing.assert_array_equal(
            np.asarray(Image.open(stem + 'instanceIds.png')), inst)
        np.testing.assert_array_equal(
            np.asarray(Image.open(stem + 'labelIds.png')), label)


def test_scene_content_is_cityscapes_like(mini_cityscapes):
    labels, n_things, tiny = set(), [], 0
    for path in _gt_files(mini_cityscapes, 'train') + _gt_files(
            mini_cityscapes, 'val'):
        with open(path) as f:
            objs = json.load(f)['objects']
        labels |= {o['label'] for o in objs}
        inst = np.asarray(Image.open(path[:-len('polygons.json')] +
                                     'instanceIds.png'))
        ids, counts = np.unique(inst[inst >= 1000], return_counts=True)
        n_things.append(len(ids))
        tiny += int((counts < 100).sum())
    assert set(EVAL_CLASSES) <= labels, set(EVAL_CLASSES) - labels
    assert {'caravan', 'trailer', 'ego vehicle', 'rectification border'} \
        <= labels
    assert any(lab.endswith('group') for lab in labels)
    assert {'road', 'sky', 'building'} <= labels
    assert 0 in n_things and max(n_things) >= 5  # empty and busy frames
    assert tiny > 0  # things under the 100-pixel evaluation limit


def test_occlusion_later_polygons_win(mini_cityscapes):
    # Some thing must lose pixels to a later polygon somewhere in the set.
    lost = 0
    for path in _gt_files(mini_cityscapes, 'train'):
        ann = Annotation()
        ann.fromJsonFile(path)
        inst = np.asarray(Image.open(path[:-len('polygons.json')] +
                                     'instanceIds.png'))
        alone = Annotation()
        alone.imgWidth, alone.imgHeight = ann.imgWidth, ann.imgHeight
        alone.objects = [o for o in ann.objects
                         if not o.label.endswith('group')
                         and name2label[o.label].hasInstances]
        full = np.asarray(createInstanceImage(alone, 'ids'))
        for i in np.unique(full[full >= 1000]):
            lost += int((full == i).sum() > (inst == i).sum())
    assert lost > 0


def test_test_split_has_no_public_ground_truth(mini_cityscapes):
    for path in _gt_files(mini_cityscapes, 'test'):
        with open(path) as f:
            labels = {o['label'] for o in json.load(f)['objects']}
        assert labels <= {'ego vehicle', 'rectification border',
                          'out of roi'}
        inst = np.asarray(Image.open(path[:-len('polygons.json')] +
                                     'instanceIds.png'))
        assert inst.max() < 1000


def test_deterministic_for_a_seed(tmp_path):
    counts = dict(train=2, val=1)
    a = make_mini_cityscapes(str(tmp_path / 'a'), counts, 512, 256, seed=5)
    b = make_mini_cityscapes(str(tmp_path / 'b'), counts, 512, 256, seed=5)
    c = make_mini_cityscapes(str(tmp_path / 'c'), counts, 512, 256, seed=6)
    files_a = sorted(glob.glob(str(tmp_path / 'a' / '**' / '*.*'),
                               recursive=True))
    assert len(files_a) == 3 * 4
    for fa in files_a:
        fb = fa.replace(str(tmp_path / 'a'), str(tmp_path / 'b'))
        with open(fa, 'rb') as x, open(fb, 'rb') as y:
            assert x.read() == y.read(), fa
    img_a = np.asarray(Image.open(a['train'][0]))
    img_c = np.asarray(Image.open(c['train'][0]))
    rel = [osp.relpath(p, str(tmp_path / 'a')) for p in a['train']]
    assert rel == [osp.relpath(p, str(tmp_path / 'b')) for p in b['train']]
    assert not np.array_equal(img_a, img_c)
