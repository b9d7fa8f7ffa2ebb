"""Imported by the configs' ``custom_imports``: applies the stack's
workarounds and registers citymask's modules in mmdet's registries."""
from . import compat

compat.apply()

from .datasets.samplers import SeededBatchSampler  # noqa: E402,F401
from .datasets.transforms import LoadCityscapesImage  # noqa: E402,F401
from .datasets.transforms.batch_choice_resize import \
    BatchChoiceResize  # noqa: E402,F401
from .evaluation.metrics import CityscapesInstanceMetric  # noqa: E402,F401
from .hooks import (CocoToCityscapesHook, FiniteLossHook,  # noqa: E402,F401
                    StopOnSignalHook)
from .models.box_mask_head import BoxMaskHead  # noqa: E402,F401
