"""Package re-exports that import their module on first use (PEP 562).

``import citymask`` and its subpackages must stay light: the converter's
workers, the evaluation CLI and the plotting tools start in well under a
second only if they don't pull in torch, mmengine and mmdet, which the
registered classes need.
"""
import importlib
from typing import Callable, Dict


def lazy_exports(package: str, names: Dict[str, str]) -> Callable:
    """A module ``__getattr__`` that imports ``names[attr]`` (a module path
    relative to ``package``) when ``attr`` is first looked up.

    Args:
        package: The package's ``__name__``.
        names: Exported name -> relative module that defines it.
    """

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(names[name], package), name)

    return __getattr__
