"""Raw Cityscapes -> COCO JSON (citymask.datasets.cityscapes_converter)."""
import glob
import json
import os
import os.path as osp
import shutil

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from citymask.datasets.cityscapes_converter import convert_cityscapes
from ..conftest import run_tool

CATEGORY_IDS = [24, 25, 26, 27, 28, 31, 32, 33]
TOOL = 'tools/dataset_converters/cityscapes.py'


def _load(path):
    with open(path) as f:
        return json.load(f)


def _instance_png(root, split, image):
    stem = image['file_name'][:-len('leftImg8bit.png')]
    return np.asarray(Image.open(
        osp.join(root, 'gtFine', split, stem + 'gtFine_instanceIds.png')),
        np.int32)


def _by_image(coco):
    out = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        out[ann['image_id']].append(ann)
    return out


def _decode(ann, h, w):
    segm = ann['segmentation']
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    else:
        rle = dict(size=segm['size'], counts=segm['counts'].encode())
    return mask_utils.decode(rle).astype(bool)


@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_categories_and_images(mini_cityscapes, mini_coco, fmt):
    for split in ('train', 'val'):
        coco = _load(mini_coco[fmt][split])
        assert [c['id'] for c in coco['categories']] == CATEGORY_IDS
        assert [c['name'] for c in coco['categories']] == [
            'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
            'bicycle']
        names = sorted(osp.relpath(p, osp.join(mini_cityscapes, 'leftImg8bit',
                                               split))
                       for p in glob.glob(osp.join(
                           mini_cityscapes, 'leftImg8bit', split, '*',
                           '*.png')))
        assert sorted(i['file_name'] for i in coco['images']) == names
        for img in coco['images']:
            assert (img['width'], img['height']) == (2048, 1024)
        ids = [a['id'] for a in coco['annotations']]
        assert len(set(ids)) == len(ids)
        # caravan (29) / trailer (30) are never written
        assert {a['category_id'] for a in coco['annotations']} <= set(
            CATEGORY_IDS)


def test_rle_is_bit_identical_to_instance_png(mini_cityscapes, mini_coco):
    for split in ('train', 'val'):
        coco = _load(mini_coco['rle'][split])
        anns = _by_image(coco)
        for img in coco['images']:
            inst = _instance_png(mini_cityscapes, split, img)
            expected = [i for i in np.unique(inst)
                        if (i // 1000 if i >= 1000 else i) in CATEGORY_IDS]
            assert len(anns[img['id']]) == len(expected)
            for ann, inst_id in zip(anns[img['id']], expected):
                label = inst_id // 1000 if inst_id >= 1000 else inst_id
                assert ann['category_id'] == label
                assert ann['iscrowd'] == int(inst_id < 1000)
                mask = _decode(ann, img['height'], img['width'])
                np.testing.assert_array_equal(mask, inst == inst_id)
                assert ann['area'] == mask.sum()
                x, y, w, h = ann['bbox']
                ys, xs = np.nonzero(mask)
                assert (x, y, x + w, y + h) == (xs.min(), ys.min(),
                                                xs.max() + 1, ys.max() + 1)


def test_polygons_agree_with_instance_png(mini_cityscapes, mini_coco):
    ious, areas = [], []
    n_crowd = 0
    for split in ('train', 'val'):
        coco = _load(mini_coco['polygon'][split])
        anns = _by_image(coco)
        for img in coco['images']:
            inst = _instance_png(mini_cityscapes, split, img)
            things = [a for a in anns[img['id']] if not a['iscrowd']]
            crowd = [a for a in anns[img['id']] if a['iscrowd']]
            n_crowd += len(crowd)
            # instances appear in drawing order: k-th of a label = id*1000+k
            seen = {}
            gt_ids = [i for i in np.unique(inst) if i >= 1000
                      and i // 1000 in CATEGORY_IDS]
            for ann in things:
                mask = _decode(ann, img['height'], img['width'])
                lab = ann['category_id']
                cand = [i for i in gt_ids if i // 1000 == lab and
                        i not in seen]
                if not cand:  # a sliver of a thing the PNG hides fully
                    ious.append(0.0)
                    areas.append(0)
                    continue
                # pick the GT instance it overlaps most (ids skip instances
                # fully occluded in the PNG)
                best = max(cand, key=lambda i: (mask & (inst == i)).sum())
                seen[best] = True
                gt = inst == best
                ious.append((mask & gt).sum() / (mask | gt).sum())
                areas.append(gt.sum())
            for ann in crowd:
                gt = inst == ann['category_id']
                mask = _decode(ann, img['height'], img['width'])
                assert (mask & gt).sum() / (mask | gt).sum() > 0.9
    ious, areas = np.array(ious), np.array(areas)
    assert len(ious) > 50 and n_crowd > 0
    assert (ious * areas).sum() / areas.sum() >= 0.97
    assert ious.mean() >= 0.93
    assert ious[areas >= 1000].min() >= 0.9


def test_polygons_cut_around_a_hole(tmp_path):
    # A person fully inside a bus outline: the bus's visible region has a
    # hole, which COCO polygons cannot express; the converter cuts it.
    from citymask.testing.mini_cityscapes import render_gt, sample_paths
    objs = [dict(label='bus', polygon=[[10, 10], [200, 10], [200, 120],
                                       [10, 120]]),
            dict(label='person', polygon=[[80, 40], [120, 40], [120, 100],
                                          [80, 100]])]
    paths = sample_paths(str(tmp_path), 'val', 'lindau', 0, 19)
    for p in paths.values():
        os.makedirs(osp.dirname(p), exist_ok=True)
    poly = dict(imgWidth=256, imgHeight=128, objects=objs)
    inst, label = render_gt(poly)
    Image.fromarray(inst).save(paths['instanceIds'])
    Image.fromarray(label).save(paths['labelIds'])
    Image.new('RGB', (256, 128)).save(paths['image'])
    with open(paths['polygons'], 'w') as f:
        json.dump(poly, f)
    out = convert_cityscapes(str(tmp_path), str(tmp_path / 'ann'), ['val'],
                             progress=False)
    coco = _load(out['val'])
    bus = [a for a in coco['annotations'] if a['category_id'] == 28][0]
    mask = _decode(bus, 128, 256)
    gt = inst == 28000
    assert (mask & gt).sum() / (mask | gt).sum() > 0.98
    assert not mask[60, 100]  # the hole stays a hole


def test_mmdet_cityscapes_dataset_loads_it(mini_cityscapes, mini_coco):
    # Independent reference: mmdet's own dataset class parses the files.
    from mmdet.datasets import CityscapesDataset

    import citymask.register  # noqa: F401
    for fmt in ('polygon', 'rle'):
        coco = _load(mini_coco[fmt]['train'])
        ds = CityscapesDataset(
            data_root=mini_cityscapes, ann_file=mini_coco[fmt]['train'],
            data_prefix=dict(img='leftImg8bit/train/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=[], lazy_init=False)
        assert ds.metainfo['classes'][0] == 'person'
        with_things = {a['image_id'] for a in coco['annotations']
                       if not a['iscrowd']}
        assert len(ds) == len(with_things) > 0
        info = ds[0]
        assert osp.isfile(info['img_path'])
        labels = {i['bbox_label'] for i in info['instances']}
        assert labels <= set(range(8))
        n_ignored = sum(i['ignore_flag'] for d in range(len(ds))
                        for i in ds[d]['instances'])
        assert n_ignored == sum(
            a['iscrowd'] for a in coco['annotations']
            if a['image_id'] in with_things)


def test_test_split_is_an_image_list(mini_coco):
    coco = _load(mini_coco['polygon']['test'])
    assert len(coco['images']) == 2 and coco['annotations'] == []


def test_nproc_gives_the_same_output(mini_cityscapes, mini_coco, tmp_path):
    out = convert_cityscapes(mini_cityscapes, str(tmp_path), ['val'],
                             nproc=2, progress=False)
    assert _load(out['val']) == _load(mini_coco['polygon']['val'])


def test_cli_writes_all_splits(mini_cityscapes, tmp_path):
    res = run_tool(TOOL, mini_cityscapes, '-o', str(tmp_path), '--splits',
                   'val', 'test', '--mask-format', 'rle')
    assert res.returncode == 0, res.stderr
    assert 'test ground truth is not public' in res.stdout
    assert sorted(os.listdir(tmp_path)) == [
        'instancesonly_filtered_gtFine_test.json',
        'instancesonly_filtered_gtFine_val.json']


# ---- bad input: one line, non-zero exit, nothing written -----------------
def _copy_val(src, dst):
    for sub in ('leftImg8bit', 'gtFine'):
        shutil.copytree(osp.join(src, sub, 'val'), osp.join(dst, sub, 'val'))
    return dst


def _first(root, pattern):
    return sorted(glob.glob(osp.join(root, '**', pattern),
                            recursive=True))[0]


def _break_missing_root(root):
    shutil.rmtree(root)
    return 'does not exist'


def _break_no_leftimg(root):
    shutil.rmtree(osp.join(root, 'leftImg8bit'))
    return 'leftImg8bit is missing'


def _break_no_gtfine(root):
    shutil.rmtree(osp.join(root, 'gtFine'))
    return 'gtFine is missing'


def _break_image_without_annotation(root):
    os.remove(_first(root, '*_gtFine_polygons.json'))
    return 'has no annotation: expected'


def _break_annotation_without_image(root):
    os.remove(_first(root, '*_leftImg8bit.png'))
    return 'has no image: expected'


def _break_unreadable_png(root):
    with open(_first(root, '*_leftImg8bit.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\nnot really')
    return 'cannot read image'


def _break_bad_json(root):
    with open(_first(root, '*_gtFine_polygons.json'), 'w') as f:
        f.write('{"imgWidth": 2048, "objects": [')
    return 'is not a Cityscapes polygon file'


def _break_unknown_label(root):
    path = _first(root, '*_gtFine_polygons.json')
    data = _load(path)
    data['objects'][0]['label'] = 'spaceship'
    with open(path, 'w') as f:
        json.dump(data, f)
    return "unknown label 'spaceship'"


@pytest.mark.parametrize('breaker', [
    _break_missing_root, _break_no_leftimg, _break_no_gtfine,
    _break_image_without_annotation, _break_annotation_without_image,
    _break_unreadable_png, _break_bad_json, _break_unknown_label
])
def test_bad_input_one_clear_line(mini_cityscapes, tmp_path, breaker):
    root = _copy_val(mini_cityscapes, str(tmp_path / 'cs'))
    expected = breaker(root)
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    res = run_tool(TOOL, root, '-o', str(out_dir), '--splits', 'val')
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    assert expected in lines[0]
    assert 'Traceback' not in res.stderr
    assert os.listdir(out_dir) == []  # no JSON, no temp file


def test_bad_instance_png_in_rle_mode(mini_cityscapes, tmp_path):
    root = _copy_val(mini_cityscapes, str(tmp_path / 'cs'))
    with open(_first(root, '*_gtFine_instanceIds.png'), 'wb') as f:
        f.write(b'garbage')
    res = run_tool(TOOL, root, '-o', str(tmp_path / 'out'), '--splits',
                   'val', '--mask-format', 'rle')
    assert res.returncode == 2 and 'cannot read PNG' in res.stderr
    assert not osp.exists(tmp_path / 'out')
