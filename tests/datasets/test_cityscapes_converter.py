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
from .conftest import to_mask

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
    # Reference: cityscapesscripts reads the instance PNG (its Instance:
    # label id, pixel count) and its label table says which labels are
    # evaluated instances; ids below 1000 are regions drawn from a
    # "*group" polygon (json2instanceImg), i.e. COCO's iscrowd.
    from cityscapesscripts.evaluation.instance import Instance
    from cityscapesscripts.helpers.labels import id2label
    n_crowd = n_things = 0
    for split in ('train', 'val'):
        coco = _load(mini_coco['rle'][split])
        anns = _by_image(coco)
        for img in coco['images']:
            inst = _instance_png(mini_cityscapes, split, img)
            expected = {}
            for i in np.unique(inst):
                ref = Instance(inst, i)
                label = id2label[ref.labelID]
                if label.hasInstances and not label.ignoreInEval:
                    expected[ref.instID] = ref
            seen = set()
            for ann in anns[img['id']]:
                mask = to_mask(ann['segmentation'], img['height'],
                               img['width'])
                [inst_id] = np.unique(inst[mask])  # one region, whole
                ref = expected[inst_id]
                np.testing.assert_array_equal(mask, inst == inst_id)
                assert ann['category_id'] == ref.labelID
                assert ann['iscrowd'] == int(ref.instID < 1000)
                assert ann['area'] == ref.pixelCount
                x, y, w, h = ann['bbox']
                ys, xs = np.nonzero(mask)
                assert (x, y, x + w, y + h) == (xs.min(), ys.min(),
                                                xs.max() + 1, ys.max() + 1)
                seen.add(inst_id)
                n_crowd += ann['iscrowd']
                n_things += 1 - ann['iscrowd']
            assert seen == set(expected)  # every region, once
    assert n_crowd > 0 and n_things > 50


@pytest.fixture(scope='module')
def cityscapes_like(tmp_path_factory):
    """The second generator distribution (published Cityscapes statistics,
    irregular many-vertex outlines, long tail of small instances),
    converted with polygons: ``(root, {'train': json})``."""
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    root = str(tmp_path_factory.mktemp('cityscapes_like'))
    make_mini_cityscapes(root, dict(train=6), seed=2, empty_every=0,
                         distribution='cityscapes')
    out = convert_cityscapes(root, osp.join(root, 'ann'), ['train'],
                             progress=False)
    return root, out


def _polygon_fidelity(root, ann_files):
    """Per ground-truth instance of ``*_instanceIds.png`` (the reference,
    drawn by cityscapesscripts): its IoU with the best polygon annotation
    of its label (0 if none) and its area. Also checks that every
    annotation is one PNG region and that each label's crowd region is
    the union of its group annotations, pixel for pixel."""
    ious, areas, n_crowd = [], [], 0
    for split, path in ann_files.items():
        coco = _load(path)
        anns = _by_image(coco)
        for img in coco['images']:
            inst = _instance_png(root, split, img)
            h, w = img['height'], img['width']
            labels = np.where(inst >= 1000, inst // 1000, inst)
            gts = {int(i): mask_utils.encode(np.asfortranarray(
                (inst == i).astype(np.uint8)))
                for i in np.unique(inst[np.isin(labels, CATEGORY_IDS)])}
            polys = [(a, mask_utils.merge(mask_utils.frPyObjects(
                a['segmentation'], h, w))) for a in anns[img['id']]]
            for crowd in {i for i in gts if i < 1000}:
                union = mask_utils.merge([r for a, r in polys
                                          if a['iscrowd'] and
                                          a['category_id'] == crowd])
                assert union['counts'] == gts[crowd]['counts']
                n_crowd += 1
            things = [(a, r) for a, r in polys if not a['iscrowd']]
            ids = [i for i in gts if i >= 1000]
            if not ids:
                assert not things
                continue
            iou = np.zeros((len(things), len(ids)))
            if things:
                iou = np.asarray(mask_utils.iou(
                    [r for _, r in things], [gts[i] for i in ids],
                    [0] * len(ids)))
                same = (np.array([a['category_id'] for a, _ in things])
                        [:, None] == np.array(ids)[None] // 1000)
                iou = np.where(same, iou, 0.0)
                # each annotation is exactly one region of the PNG
                assert (iou.max(axis=1) == 1.0).all()
            ious += iou.max(axis=0, initial=0.0).tolist()
            areas += [int(mask_utils.area(gts[i])) for i in ids]
    return np.array(ious), np.array(areas), n_crowd


@pytest.mark.parametrize('distribution', ['simple', 'cityscapes'])
def test_polygons_agree_with_instance_png(request, distribution):
    # Required on both generator distributions: mean IoU >=
    # 0.97, area-weighted >= 0.99, no instance >= 1000 px below 0.95.
    # The polygons are traced from the pixels the PNGs are drawn with, so
    # they reproduce them exactly.
    if distribution == 'simple':
        root = request.getfixturevalue('mini_cityscapes')
        files = request.getfixturevalue('mini_coco')['polygon']
        files = {s: files[s] for s in ('train', 'val')}
    else:
        root, files = request.getfixturevalue('cityscapes_like')
    ious, areas, n_crowd = _polygon_fidelity(root, files)
    assert len(ious) > 50 and n_crowd > 0
    assert (areas < 100).sum() > 0  # small ones are in the test
    assert ious.mean() >= 0.97
    assert (ious * areas).sum() / areas.sum() >= 0.99
    assert ious[areas >= 1000].min() >= 0.95
    assert ious.min() == 1.0  # in fact: pixel for pixel


def test_polygon_masks_give_the_bitmap_training_targets(cityscapes_like):
    # mmdet's own mask classes (what the pipeline and mask head use): the
    # 28x28 mask-head targets of polygon annotations equal those of the
    # same instances as bitmaps from the PNG, up to the two resamplings
    # (polygons are rasterised at 28x28, bitmaps are RoI-aligned and
    # thresholded). Proposals: the instances' boxes, 2 px larger.
    from mmdet.structures.mask import BitmapMasks, PolygonMasks
    root, files = cityscapes_like
    coco = _load(files['train'])
    anns = _by_image(coco)
    ious = []
    for img in coco['images'][:4]:
        h, w = img['height'], img['width']
        inst = _instance_png(root, 'train', img)
        things = [a for a in anns[img['id']] if not a['iscrowd']]
        polys = PolygonMasks([[np.array(p) for p in a['segmentation']]
                              for a in things], h, w)
        # the PNG region each annotation covers (checked exactly above)
        ids = [np.bincount(inst[to_mask(a['segmentation'], h, w)]).argmax()
               for a in things]
        bitmaps = BitmapMasks(np.stack([inst == i for i in ids]), h, w)
        boxes = np.array([[x - 2, y - 2, x + bw + 2, y + bh + 2]
                          for x, y, bw, bh in (a['bbox'] for a in things)],
                         np.float32)
        idx = np.arange(len(things))
        tp = polys.crop_and_resize(boxes, (28, 28), idx).to_ndarray()
        tb = bitmaps.crop_and_resize(boxes, (28, 28), idx).to_ndarray()
        inter = (tp & tb).sum((1, 2))
        union = (tp | tb).sum((1, 2))
        ious.extend((inter[union > 0] / union[union > 0]).tolist())
    assert len(ious) > 25
    # (polygons taken from the JSON vertices, half a pixel
    # thinner than the PNGs, measured 0.92 here: small instances lost)
    assert np.mean(ious) >= 0.95


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
    mask = to_mask(bus['segmentation'], 128, 256)
    gt = inst == 28000
    assert not mask[60, 100]  # the hole stays a hole
    np.testing.assert_array_equal(mask, gt)  # pixel for pixel
    assert len(bus['segmentation']) >= 2  # cut into pieces


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


def test_nproc_4_writes_what_nproc_1_writes(mini_cityscapes, mini_coco,
                                            tmp_path):
    from citymask.datasets.cityscapes_converter import available_cores
    res = run_tool(TOOL, mini_cityscapes, '-o', str(tmp_path), '--nproc', '4')
    assert res.returncode == 0, res.stderr
    # mini_coco: every split converted in this process (nproc=1)
    for split, path in mini_coco['polygon'].items():
        with open(path, 'rb') as a, \
                open(tmp_path / osp.basename(path), 'rb') as b:
            assert a.read() == b.read(), split
    # more workers than cores is capped, with a note
    capped = available_cores() < 4
    assert ('note: --nproc 4 is more than the' in res.stderr) == capped


def test_workers_import_no_torch_mmengine_mmdet():
    from citymask.datasets.cityscapes_converter import worker_pool
    pool = worker_pool(1)
    try:
        modules = set(pool.submit(
            eval, 'list(__import__("sys").modules)').result())
    finally:
        pool.shutdown()
    # the worker is ready to convert ...
    assert 'citymask.datasets.cityscapes_converter' in modules
    # ... and loaded nothing heavy
    assert not {'torch', 'mmengine', 'mmdet', 'mmcv'} & modules


def test_cli_writes_all_splits(mini_cityscapes, mini_coco, tmp_path):
    res = run_tool(TOOL, mini_cityscapes, '-o', str(tmp_path), '--splits',
                   'val', 'test', '--mask-format', 'rle')
    assert res.returncode == 0, res.stderr
    assert 'test ground truth is not public' in res.stdout
    assert sorted(os.listdir(tmp_path)) == [
        'instancesonly_filtered_gtFine_test.json',
        'instancesonly_filtered_gtFine_val.json']
    val = _load(tmp_path / 'instancesonly_filtered_gtFine_val.json')
    # --mask-format rle reached the converter: RLE masks (checked against
    # the instance PNGs above), not polygons
    assert val['annotations']
    for ann in val['annotations']:
        assert isinstance(ann['segmentation'], dict)
        assert set(ann['segmentation']) == {'size', 'counts'}
    assert val == _load(mini_coco['rle']['val'])
    test = _load(tmp_path / 'instancesonly_filtered_gtFine_test.json')
    assert test == _load(mini_coco['polygon']['test'])


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


def _break_unknown_label(root):
    path = _first(root, '*_gtFine_polygons.json')
    data = _load(path)
    data['objects'][0]['label'] = 'spaceship'
    with open(path, 'w') as f:
        json.dump(data, f)
    return "unknown label 'spaceship'"


# each case in-process: test_converter_units.py; here, the tool's end
@pytest.mark.parametrize('breaker',
                         [_break_missing_root, _break_unknown_label])
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
