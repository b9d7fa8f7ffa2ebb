"""Package re-exports imported on first use (PEP 562): ``import citymask``
and its subpackages must not pull in torch, mmengine and mmdet."""
import importlib
from typing import Callable, Dict


def lazy_exports(package: str, names: Dict[str, str]) -> Callable:
    """A module ``__getattr__`` importing ``names[attr]`` (a module
    relative to ``package``) when ``attr`` is first looked up."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(names[name], package), name)

    return __getattr__
