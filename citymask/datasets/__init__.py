"""Cityscapes data: the raw-tree converter and the image loading transform."""
from .._lazy import lazy_exports

_EXPORTS = dict(LoadCityscapesImage='.transforms',
                convert_cityscapes='.cityscapes_converter')
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
