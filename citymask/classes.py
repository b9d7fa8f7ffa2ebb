"""The one table of Cityscapes thing classes and their COCO counterparts.

Order is mmdet's ``CityscapesDataset.METAINFO['classes']`` order; the
category id of each class is its Cityscapes label id (24..33 without the
ignored caravan 29 / trailer 30), as in ``instancesonly_filtered_*.json``.
"""
from typing import Dict, Optional, Tuple

# (name, Cityscapes label id, COCO class index in the 80-class order or None)
CITYSCAPES_COCO_TABLE: Tuple[Tuple[str, int, Optional[int]], ...] = (
    ('person', 24, 0),
    ('rider', 25, None),  # COCO has no rider class
    ('car', 26, 2),
    ('truck', 27, 7),
    ('bus', 28, 5),
    ('train', 31, 6),
    ('motorcycle', 32, 3),
    ('bicycle', 33, 1),
)

CLASSES: Tuple[str, ...] = tuple(row[0] for row in CITYSCAPES_COCO_TABLE)
LABEL_IDS: Tuple[int, ...] = tuple(row[1] for row in CITYSCAPES_COCO_TABLE)
LABEL_ID_TO_CLASS: Dict[int, str] = dict(zip(LABEL_IDS, CLASSES))
