"""Re-exports imported on first use (PEP 562): ``import citymask`` is light."""
import importlib
from typing import Callable, Dict


def lazy_exports(package: str, names: Dict[str, str]) -> Callable:
    """A module ``__getattr__`` importing ``attr`` from ``names[attr]``."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(names[name], package), name)

    return __getattr__
