"""citymask: Mask R-CNN R-50-FPN on Cityscapes, as an MMDetection 3.x project.

Importing ``citymask`` is light (no torch, no mmengine). Importing
:mod:`citymask.register` applies the stack's workarounds
(:mod:`citymask.compat`) and registers citymask's modules in mmdet's
registries; the configs do that through
``custom_imports = dict(imports=['citymask.register'])``.
"""
from ._lazy import lazy_exports
from .version import __version__

_EXPORTS = {
    name: '.register'
    for name in ('CityscapesInstanceMetric', 'CocoToCityscapesHook',
                 'FiniteLossHook', 'LoadCityscapesImage')
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = ['__version__', *_EXPORTS]
