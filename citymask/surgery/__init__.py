"""COCO Mask R-CNN -> Cityscapes Mask R-CNN weight surgery (state dicts)."""
from .convert import convert_checkpoint, convert_file
from .heads import RIDER_INITS, coco_to_cityscapes, mapping_table, num_classes
from .layouts import FORMATS, to_mmdet_layout

__all__ = [
    'FORMATS', 'RIDER_INITS', 'coco_to_cityscapes', 'convert_checkpoint',
    'convert_file', 'mapping_table', 'num_classes', 'to_mmdet_layout'
]
