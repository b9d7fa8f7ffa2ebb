"""Cityscapes facts in one place: classes, label ids, files, instance ids.

Class order is mmdet's ``CityscapesDataset.METAINFO['classes']``; category
ids are Cityscapes label ids (24..33 without caravan 29 / trailer 30), as in
``instancesonly_filtered_*.json``; void ids from cityscapesscripts' label
table (``tests/test_classes.py`` checks all against cityscapesscripts, mmdet).
"""
from typing import Dict, Optional, Tuple, Union

import numpy as np
from cityscapesscripts.helpers.labels import labels as _CS_LABELS

# COCO's 80 classes in mmdet's order (a COCO Mask R-CNN's head rows)
COCO_CLASSES: Tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')

# (Cityscapes class, Cityscapes label id, the COCO class its head rows come
# from in surgery, or None: COCO has no rider)
CITYSCAPES_COCO_TABLE: Tuple[Tuple[str, int, Optional[str]], ...] = (
    ('person', 24, 'person'), ('rider', 25, None), ('car', 26, 'car'),
    ('truck', 27, 'truck'), ('bus', 28, 'bus'), ('train', 31, 'train'),
    ('motorcycle', 32, 'motorcycle'), ('bicycle', 33, 'bicycle'))

CLASSES: Tuple[str, ...] = tuple(row[0] for row in CITYSCAPES_COCO_TABLE)
LABEL_IDS: Tuple[int, ...] = tuple(row[1] for row in CITYSCAPES_COCO_TABLE)
NAME_TO_LABEL_ID: Dict[str, int] = dict(zip(CLASSES, LABEL_IDS))
# COCO row (80-class index) feeding each Cityscapes class; None = no source
COCO_INDEX: Tuple[Optional[int], ...] = tuple(
    None if coco is None else COCO_CLASSES.index(coco)
    for _, _, coco in CITYSCAPES_COCO_TABLE)

# void for the evaluator (``ignoreInEval``; license plate -1 is in no PNG)
VOID_IDS: Tuple[int, ...] = tuple(
    lb.id for lb in _CS_LABELS if lb.ignoreInEval and lb.id >= 0)

# File name endings of a Cityscapes frame ``CITY_SEQ_FRAME``.
IMG_SUFFIX = '_leftImg8bit.png'
POLYGONS_SUFFIX = '_gtFine_polygons.json'
INSTANCE_IDS_SUFFIX = '_gtFine_instanceIds.png'

# In ``*_instanceIds.png`` an instance is ``label_id * 1000 + k``; pixels of
# a class without instances (and of ``*group`` regions) hold the label id.
INSTANCE_ID_FACTOR = 1000

IntOrArray = Union[int, np.ndarray]


def label_of_instance_id(ids: IntOrArray) -> IntOrArray:
    """The Cityscapes label id of instance-id image values."""
    if isinstance(ids, np.ndarray):
        return np.where(ids >= INSTANCE_ID_FACTOR, ids // INSTANCE_ID_FACTOR,
                        ids)
    return ids // INSTANCE_ID_FACTOR if ids >= INSTANCE_ID_FACTOR else ids
