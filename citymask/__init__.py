"""citymask: Mask R-CNN R-50-FPN on Cityscapes, as an MMDetection 3.x project.

Importing the package applies the pinned stack's workarounds
(:mod:`citymask.compat`) and registers citymask's modules in mmdet's
registries, which is what ``custom_imports = dict(imports=['citymask'])``
in the configs relies on.
"""
from . import compat

compat.apply()

from .datasets import LoadCityscapesImage  # noqa: E402
from .evaluation import CityscapesInstanceMetric  # noqa: E402
from .hooks import CocoToCityscapesHook, FiniteLossHook  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = [
    '__version__', 'CityscapesInstanceMetric', 'CocoToCityscapesHook',
    'FiniteLossHook', 'LoadCityscapesImage'
]
