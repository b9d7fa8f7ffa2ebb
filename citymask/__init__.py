"""citymask: Mask R-CNN R-50-FPN on Cityscapes, an MMDetection 3.x project.
``import citymask`` is light (no torch); configs import citymask.register.
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
