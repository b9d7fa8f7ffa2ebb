"""A hand-made Cityscapes frame drawn by cityscapesscripts; checks that
converted annotations are the regions it draws."""
import json
import os
import os.path as osp

import numpy as np
import pycocotools.mask as mask_utils
from cityscapesscripts.evaluation.instance import Instance
from cityscapesscripts.helpers.labels import id2label
from PIL import Image

from citymask.testing.mini_cityscapes import render_gt

W, H = 320, 240
FRAME = 'lindau_000000_000019'


def box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


# What real frames have: occlusion, a thing cut by a pole, a person in a bus
# (a hole), a licence plate (not drawn), an erasing 'unlabeled' region, a
# group partly outside, things on the borders, a hidden thing, a deleted
# object, a caravan (drawn, not evaluated).
OBJECTS = [
    # first: a canvas starting at its colour would be it
    dict(label='train', polygon=[[0, 0], [40, 5], [45, 45], [0, 40]]),
    dict(label='road', polygon=box(0, 150, 319, 239)),
    dict(label='car', polygon=box(10, 120, 120, 180)),
    dict(label='unlabeled', polygon=box(20, 170, 50, 190)),
    dict(label='pole', polygon=box(60, 40, 66, 200)),  # cuts the car
    dict(label='license plate', polygon=box(20, 160, 40, 170)),
    dict(label='bus', polygon=[[150, 60], [300, 60], [300, 170], [150, 170],
                               [150, 60]]),
    dict(label='person', polygon=box(200, 90, 230, 150)),  # a hole in it
    dict(label='cargroup', polygon=box(260, 180, 340, 235)),  # leaves it
    dict(label='rider', polygon=box(0, 0, 50, 50), deleted=1),
    dict(label='truck', polygon=box(100, 10, 130, 40)),
    dict(label='building', polygon=box(90, 0, 140, 45)),  # hides it
    dict(label='caravan', polygon=box(20, 190, 80, 230)),
    dict(label='bicycle', polygon=[[70, 200], [110, 185], [120, 230],
                                   [75, 235]]),  # over the caravan
    dict(label='motorcycle', polygon=box(130, 225, 145, 239)),
    dict(label='persongroup', polygon=box(240, 20, 280, 50)),
]


def car(**change):
    """OBJECTS with the car's entries changed."""
    return [dict(o, **change) if o['label'] == 'car' else o for o in OBJECTS]


def write_frame(root, objects=OBJECTS, split='val', size=(W, H),
                render=True, copies=1):
    """``copies`` frames: image, polygons and (``render``) the instance PNG
    cityscapesscripts draws from them, which is returned."""
    poly = dict(imgWidth=size[0], imgHeight=size[1], objects=objects)
    inst = render_gt(poly)[0] if render else None
    for k in range(copies):
        img, gt = (osp.join(root, sub, split, 'lindau',
                            FRAME.replace('000000', f'{k:06d}'))
                   for sub in ('leftImg8bit', 'gtFine'))
        for path in (img, gt):
            os.makedirs(osp.dirname(path), exist_ok=True)
        Image.new('RGB', size).save(img + '_leftImg8bit.png')
        with open(gt + '_gtFine_polygons.json', 'w') as f:
            json.dump(poly, f)
        if render:
            Image.fromarray(inst).save(gt + '_gtFine_instanceIds.png')
    return None if inst is None else inst.astype(np.int32)


def to_mask(segm, h: int, w: int) -> np.ndarray:
    """A COCO ``segmentation``'s mask, as pycocotools (so mmdet) reads it."""
    if not segm:
        return np.zeros((h, w), bool)
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    else:
        rle = dict(size=segm['size'], counts=segm['counts'].encode())
    return mask_utils.decode(rle).astype(bool)


def check_regions(anns, inst):
    """The annotations by region id, checked against ``inst`` as
    cityscapesscripts' ``Instance`` sees it: label, iscrowd, area, box,
    a thing one whole annotation, a group the union of its annotations."""
    regions = {}
    for i in np.unique(inst):
        ref = Instance(inst, i)
        label = id2label[ref.labelID]
        if label.hasInstances and not label.ignoreInEval:
            regions[int(ref.instID)] = ref
    by_id, union = {}, {}
    for ann in anns:
        mask = to_mask(ann['segmentation'], *inst.shape)
        [inst_id] = np.unique(inst[mask])
        ref = regions[int(inst_id)]
        assert ann['category_id'] == ref.labelID
        assert ann['iscrowd'] == int(ref.instID < 1000)
        assert ann['area'] == mask.sum()
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert [x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max() + 1,
                                        ys.max() + 1]
        if ref.instID >= 1000:
            assert inst_id not in by_id and ann['area'] == ref.pixelCount
        by_id[int(inst_id)] = ann
        union[inst_id] = union.get(inst_id, False) | mask
    assert sorted(by_id) == sorted(regions)  # every region
    for inst_id, mask in union.items():
        np.testing.assert_array_equal(mask, inst == inst_id)
    return by_id
