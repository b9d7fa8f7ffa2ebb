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

from citymask.testing.mini_cityscapes import make_mini_cityscapes, make_scene
from ..conftest import run_tool

NAME = re.compile(r'^([a-z]+)_\d{6}_\d{6}_(?=leftImg8bit\.png$)')
HUMANS = ('person', 'rider')
VEHICLES = ('car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
            'caravan', 'trailer')
VOID = {'ego vehicle', 'rectification border', 'out of roi'}


def test_layout_pngs_and_content_cityscapes_like(mini_cityscapes):
    """The official layout, PNGs as cityscapesscripts renders them; scenes
    with every class, void, groups, empty and busy frames, occlusion."""
    size = (2048, 1024)
    labels, n_things, tiny, lost = set(), [], 0, 0
    for split, n in (('train', 10), ('val', 5), ('test', 2)):
        images = sorted(glob.glob(
            osp.join(mini_cityscapes, 'leftImg8bit', split, '*', '*.png')))
        assert len(images) == n
        for img in images:
            m = NAME.match(osp.basename(img))
            assert m and m.group(1) == osp.basename(osp.dirname(img))
            stem = osp.join(mini_cityscapes, 'gtFine', split, m.group(1),
                            m.group(0) + 'gtFine_')
            ann = Annotation()
            ann.fromJsonFile(stem + 'polygons.json')
            pngs = [Image.open(p) for p in (img, stem + 'instanceIds.png',
                                            stem + 'labelIds.png')]
            assert [(im.mode, im.size) for im in pngs] == [
                ('RGB', size), ('I;16', size), ('L', size)]
            assert (ann.imgWidth, ann.imgHeight) == size
            # independent reference: cityscapesscripts renders the polygons
            inst = np.asarray(pngs[1])
            np.testing.assert_array_equal(
                inst, np.asarray(createInstanceImage(ann, 'ids')))
            np.testing.assert_array_equal(
                np.asarray(pngs[2]), np.asarray(createLabelImage(ann, 'ids')))
            if split == 'test':  # no public ground truth
                assert {o.label for o in ann.objects} <= VOID
                assert inst.max() < 1000
                continue
            labels |= {o.label for o in ann.objects}
            ids, counts = np.unique(inst[inst >= 1000], return_counts=True)
            n_things.append(len(ids))
            tiny += int((counts < 100).sum())
            # things drawn alone: some lose pixels to later polygons
            ann.objects = [o for o in ann.objects
                           if not o.label.endswith('group')
                           and name2label[o.label].hasInstances]
            full = np.asarray(createInstanceImage(ann, 'ids'))
            for i in np.unique(full[full >= 1000]):
                lost += int((full == i).sum() > (inst == i).sum())
    assert set(HUMANS + VEHICLES) <= labels, set(HUMANS + VEHICLES) - labels
    assert VOID - {'out of roi'} <= labels
    assert any(lab.endswith('group') for lab in labels)
    assert {'road', 'sky', 'building'} <= labels
    assert 0 in n_things and max(n_things) >= 5  # empty and busy frames
    assert tiny > 0  # things under the 100-pixel evaluation limit
    assert lost > 0


def test_deterministic_for_a_seed(tmp_path):
    trees = []
    for name, seed in (('a', 5), ('b', 5), ('c', 6)):
        root = tmp_path / name
        written = make_mini_cityscapes(str(root), dict(train=2, val=1), 512,
                                       256, seed=seed)
        trees.append(({str(p.relative_to(root)): p.read_bytes()
                       for p in root.rglob('*.*')},
                      [osp.relpath(p, root) for p in written['train']]))
    (a, rel_a), (b, rel_b), _ = trees
    assert len(a) == 3 * 6  # image, 3 gtFine, disparity, camera per frame
    assert a == b and rel_a == rel_b
    assert not np.array_equal(*(np.asarray(Image.open(tmp_path / s / rel_a[0]))
                                for s in 'ac'))


def test_cityscapes_distribution_matches_published_statistics():
    # Published figures written out, not read from the module: Cordts et
    # al. 2016 (7.0 humans, 11.8 vehicles per frame), cityscapesscripts'
    # average sizes (person 3462, car 12794 px); visible instances counted
    # in cityscapesscripts' rendering.
    counts, sizes, vertices = {'humans': [], 'vehicles': []}, {}, []
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
                     if o['label'] in HUMANS + VEHICLES and cv2.contourArea(
                         np.array(o['polygon'], np.float32)) > 1000]
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
    make_mini_cityscapes(str(tmp_path), dict(train=4, val=0, test=0),
                         seed=1, empty_every=0, distribution='cityscapes')
    sizes, lost, pieces = [], 0, 0
    for path in sorted(tmp_path.glob('gtFine/train/*/*_gtFine_polygons.json')):
        ann = Annotation()
        ann.fromJsonFile(str(path))
        inst = np.asarray(Image.open(str(path).replace('polygons.json',
                                                       'instanceIds.png')))
        # the PNGs are cityscapesscripts' own rendering of the polygons
        np.testing.assert_array_equal(
            inst, np.asarray(createInstanceImage(ann, 'ids')))
        sizes += np.unique(inst[inst >= 1000], return_counts=True)[1].tolist()
        # occlusion: pixels lost to later polygons, some split in pieces
        seen = {}
        for obj in ann.objects:
            label = name2label.get(obj.label)
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
    assert len(sizes) >= 30 and min(sizes) < 100 and max(sizes) > 10000
    assert lost >= 0.2 * len(sizes) and pieces > 0


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match='unknown distribution'):
        make_mini_cityscapes(str(tmp_path), dict(train=1), 64, 64,
                             distribution='kitti')
    tool, out = 'tools/dataset_converters/make_mini_cityscapes.py', str(
        tmp_path / 'out')
    res = run_tool(tool, out, '--width', '32')
    assert (res.returncode, res.stderr) == (
        2, 'error: image counts must be >= 0 and --height/--width >= 64\n')
    assert not osp.exists(out)
    assert run_tool(tool, out, '--train', '1', '--val', '0', '--test', '0',
                    '--width', '64', '--height', '64').returncode == 0
    res = run_tool(tool, out)
    assert (res.returncode, res.stderr.splitlines()) == (2, [
        f'error: {out} already holds a Cityscapes tree; choose a new folder '
        '(nothing was overwritten)'])
