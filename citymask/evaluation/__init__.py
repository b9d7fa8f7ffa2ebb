"""Official Cityscapes instance AP, exact and fast: the evaluator, the
results format and the mmengine metric."""
from .._lazy import lazy_exports

_EXPORTS = dict(FrameTask='.crops', evaluate='.cityscapes_instance',
                format_table='.cityscapes_instance',
                summarize='.cityscapes_instance',
                CityscapesInstanceMetric='.metrics')
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
