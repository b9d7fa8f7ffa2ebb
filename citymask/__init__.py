"""citymask: Mask R-CNN R-50-FPN on Cityscapes, as an MMDetection 3.x project.

``import citymask`` is light (no torch, no mmengine); the configs import
:mod:`citymask.register` for the workarounds and registered modules.
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
