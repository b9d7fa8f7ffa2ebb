"""The mini-Cityscapes generator (citymask.testing.mini_cityscapes)."""
import glob
import json
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import id2label, name2label
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image, ImageDraw

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
    # image, 3 gtFine files, disparity and camera per frame
    assert len(files_a) == 3 * 6
    for fa in files_a:
        fb = fa.replace(str(tmp_path / 'a'), str(tmp_path / 'b'))
        with open(fa, 'rb') as x, open(fb, 'rb') as y:
            assert x.read() == y.read(), fa
    img_a = np.asarray(Image.open(a['train'][0]))
    img_c = np.asarray(Image.open(c['train'][0]))
    rel = [osp.relpath(p, str(tmp_path / 'a')) for p in a['train']]
    assert rel == [osp.relpath(p, str(tmp_path / 'b')) for p in b['train']]
    assert not np.array_equal(img_a, img_c)


# ---- distribution='cityscapes' ---------------------------------------------
HUMANS = ('person', 'rider')
VEHICLES = ('car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
            'caravan', 'trailer')


def _area(polygon):
    x, y = np.asarray(polygon, float).T
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_cityscapes_distribution_matches_published_statistics():
    # Published figures, written out here rather than read from the
    # module: Cordts et al. 2016 (7.0 humans, 11.8 vehicles annotated per
    # frame, train + val), cityscapesscripts' average instance sizes
    # (person 3462, car 12794 px), persons and cars dominating their
    # groups. Visible instances are counted in cityscapesscripts' own
    # rendering of each scene, as annotated instances are in the real PNGs.
    from citymask.testing.mini_cityscapes import make_scene
    counts = {'humans': [], 'vehicles': []}
    sizes, vertices = {}, []
    for i in range(120):
        objs = make_scene(np.random.default_rng([7, i]), 2048, 1024,
                          distribution='cityscapes')
        ann = Annotation()
        ann.fromJsonText(json.dumps(dict(imgWidth=2048, imgHeight=1024,
                                         objects=objs)))
        inst = np.asarray(createInstanceImage(ann, 'ids'))
        ids, pixels = np.unique(inst[inst >= 1000], return_counts=True)
        labels = [id2label[int(i) // 1000].name for i in ids]
        counts['humans'].append(sum(lab in HUMANS for lab in labels))
        counts['vehicles'].append(sum(lab in VEHICLES for lab in labels))
        for lab, n in zip(labels, pixels):
            sizes.setdefault(lab, []).append(n)
        vertices += [len(o['polygon']) for o in objs
                     if o['label'] in HUMANS + VEHICLES and
                     _area(o['polygon']) > 1000]
    assert 7.0 * 0.8 < np.mean(counts['humans']) < 7.0 * 1.2
    assert 11.8 * 0.8 < np.mean(counts['vehicles']) < 11.8 * 1.2
    # frames differ: empty streets and crowds
    assert min(counts['humans']) == 0 and max(counts['humans']) >= 20
    n = {lab: len(v) for lab, v in sizes.items()}
    assert n['person'] > 5 * n['rider']
    assert n['car'] > 4 * (n['truck'] + n['bus'] + n['train'])
    assert n['bicycle'] > n['motorcycle']
    # long-tailed sizes: most small, from ~20 px to a few % of the frame
    everything = np.concatenate(list(sizes.values()))
    assert np.median(everything) < 3000
    assert (everything < 100).mean() > 0.15
    assert (everything > 0.02 * 2048 * 1024).mean() > 0.01
    assert 3462 * 0.7 < np.mean(sizes['person']) < 3462 * 1.3
    assert 12794 * 0.7 < np.mean(sizes['car']) < 12794 * 1.3
    # irregular hand-drawn-like outlines: many vertices
    assert np.median(vertices) >= 30


def test_cityscapes_distribution_files(tmp_path):
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    root = str(tmp_path)
    make_mini_cityscapes(root, dict(train=4, val=0, test=0), seed=1,
                         empty_every=0, distribution='cityscapes')
    sizes, lost, pieces = [], 0, 0
    for path in _gt_files(root, 'train'):
        ann = Annotation()
        ann.fromJsonFile(path)
        inst = np.asarray(Image.open(path[:-len('polygons.json')] +
                                     'instanceIds.png'))
        # the PNGs are cityscapesscripts' own rendering of the polygons
        np.testing.assert_array_equal(
            inst, np.asarray(createInstanceImage(ann, 'ids')))
        ids, counts = np.unique(inst[inst >= 1000], return_counts=True)
        sizes.extend(counts.tolist())
        # occlusion: instances that lose pixels to later polygons, some
        # split in pieces (poles, other things in front)
        seen = {}
        for obj in ann.objects:
            label = name2label[obj.label] if obj.label in name2label \
                else None
            if label is None or not label.hasInstances:
                continue  # a group or stuff
            inst_id = label.id * 1000 + seen.setdefault(label.id, 0)
            seen[label.id] += 1
            alone = Image.new('L', (ann.imgWidth, ann.imgHeight))
            ImageDraw.Draw(alone).polygon(obj.polygon, fill=1)
            visible = inst == inst_id
            lost += int(np.asarray(alone).sum() > visible.sum() > 0)
            n, _ = cv2.connectedComponents(visible.astype(np.uint8))
            pieces += int(n > 2)
    sizes = np.array(sizes)
    assert len(sizes) >= 30
    assert sizes.min() < 100 and sizes.max() > 10000
    assert lost >= 0.2 * len(sizes) and pieces > 0


def test_unknown_distribution_is_refused(tmp_path):
    with pytest.raises(ValueError, match='unknown distribution'):
        make_mini_cityscapes(str(tmp_path), dict(train=1), 64, 64,
                             distribution='kitti')
