"""Import to use citymask inside mmdet: applies the stack's workarounds and
registers citymask's transform, metric and hooks in mmdet's registries.

The configs import it with
``custom_imports = dict(imports=['citymask.register'])``.
"""
from . import compat

compat.apply()

from .datasets.samplers import SeededBatchSampler  # noqa: E402
from .datasets.transforms import LoadCityscapesImage  # noqa: E402
from .datasets.transforms.batch_choice_resize import \
    BatchChoiceResize  # noqa: E402
from .evaluation.metrics import CityscapesInstanceMetric  # noqa: E402
from .hooks import StopOnSignalHook  # noqa: E402
from .hooks import CocoToCityscapesHook, FiniteLossHook  # noqa: E402
from .models.box_mask_head import BoxMaskHead  # noqa: E402,F401

__all__ = [
    'BatchChoiceResize', 'CityscapesInstanceMetric', 'CocoToCityscapesHook',
    'FiniteLossHook', 'LoadCityscapesImage', 'SeededBatchSampler'
]
__all__ += ['StopOnSignalHook']
