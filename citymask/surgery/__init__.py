"""COCO -> Cityscapes Mask R-CNN weight surgery. The options are defined
here, so ``tools/surgery.py --help`` needs no torch; the rest loads lazily.
"""
from .._lazy import lazy_exports

# checkpoint layouts read (layouts.py)
FORMATS = ('mmdet', 'maskrcnn-benchmark', 'detectron2')
# rider has no COCO class: random init or a copy of person (heads.py)
RIDER_INITS = ('random', 'person')

_EXPORTS = dict(coco_to_cityscapes='.heads', mapping_table='.heads',
                num_classes='.heads', convert_checkpoint='.convert',
                convert_file='.convert', to_mmdet_layout='.layouts')
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = ['FORMATS', 'RIDER_INITS', *_EXPORTS]
