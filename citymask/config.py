"""Configs as the tools read them: file names, ``--cfg-options``, data root.

``data_root=...`` reaches every path that started with the config's data
root (dataloaders and evaluators), not only the top-level variable.
"""
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config, ConfigDict

from .errors import CitymaskError


def _replace_prefix(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return new + node[len(old):] if node.startswith(old) else node
    if isinstance(node, dict):
        for k in list(node.keys()):
            node[k] = _replace_prefix(node[k], old, new)
        return node
    if isinstance(node, (list, tuple)):
        return type(node)(_replace_prefix(v, old, new) for v in node)
    return node


def resolve_config_path(path: str) -> str:
    """A file path for ``mmdet::...`` names as well as plain paths (for
    reading a package's config directly, e.g. mmdet's stock ones)."""
    if '::' not in path:
        return path
    from mmengine.config.utils import _get_package_and_cfg_path
    from mmengine.utils import get_installed_path
    package, rel = _get_package_and_cfg_path(path)
    return osp.join(get_installed_path(package), '.mim', 'configs', rel)


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply ``--cfg-options`` (``data_root`` rewrites
    every path under the old root).

    Args:
        path: Config file, or ``mmdet::...`` for one of mmdet's.
        cfg_options: ``--cfg-options`` as mmengine's ``DictAction`` parsed
            them.
    """
    path = resolve_config_path(path)
    if not osp.isfile(path):
        raise CitymaskError(
            f'config {path} does not exist (the configs are under configs/, '
            'e.g. configs/maskrcnn_r50_fpn_cityscapes_ft.py)')
    try:
        cfg = Config.fromfile(path)
    except Exception as e:
        raise CitymaskError(f'cannot read config {path}: {e}') from None
    old_root = cfg.get('data_root')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    new_root = cfg.get('data_root')
    if old_root and new_root and new_root != old_root:
        new_root = new_root.rstrip('/') + '/'
        cfg.data_root = new_root
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                    'val_evaluator', 'test_evaluator'):
            if cfg.get(key) is not None:
                cfg[key] = _replace_prefix(cfg[key], old_root, new_root)
    return cfg


def dataset_of(loader: ConfigDict) -> ConfigDict:
    """The innermost dataset of a dataloader config (through
    ``RepeatDataset`` / ``ClassBalancedDataset`` wrappers)."""
    ds = loader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    return ds
