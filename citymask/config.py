"""Configs as the tools read them: file names, ``--cfg-options``, data root.

``data_root=...`` reaches every path that started with the config's data
root (dataloaders and evaluators), not only the top-level variable.

``--cfg-options`` are checked before they are merged: mmengine merges any
key silently, so a misspelt key, or a config-file variable such as
``max_iters`` (read only while the file is parsed), would change nothing
and the run would go on with the old value.
"""
import difflib
import inspect
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

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


# Top-level keys read besides mmengine's Runner.__init__ arguments: by the
# Runner as self.cfg.get(...) (mmengine 0.10.7), by tools/train.py
# (runner_type) and by citymask (data_root rewrites every path under it;
# test_split: --split test).
_TOP_LEVEL_EXTRA = ('model_wrapper_cfg', 'sync_bn', 'find_unused_parameters',
                    'activation_checkpointing', 'efficient_conv_bn_eval',
                    'compile', 'runner_type', 'data_root', 'test_split')
# Untyped sections whose keys are arguments of a known callable.
_SECTIONS = {
    'randomness': ('mmengine.runner:Runner.set_randomness', ),
    'env_cfg': ('mmengine.utils.dl_utils:set_multi_processing',
                'mmengine.dist:init_dist'),
    'auto_scale_lr': (),
    'train_cfg': ('mmengine.runner:EpochBasedTrainLoop',
                  'mmengine.runner:IterBasedTrainLoop'),
    'val_cfg': ('mmengine.runner:ValLoop', ),
    'test_cfg': ('mmengine.runner:TestLoop', ),
    'train_dataloader': ('torch.utils.data:DataLoader', ),
    'val_dataloader': ('torch.utils.data:DataLoader', ),
    'test_dataloader': ('torch.utils.data:DataLoader', ),
}
_SECTION_EXTRA = {
    'env_cfg': {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'},
    'auto_scale_lr': {'enable', 'base_batch_size'},
    'train_cfg': {'type', 'by_epoch'},
    'val_cfg': {'type'},
    'test_cfg': {'type'},
}
# values of these keys are paths: given text is kept as is (commas too)
_PATH_SUFFIXES = ('root', 'dir', 'file', 'from', 'prefix', 'path')


def _params(target: Any) -> Tuple[set, bool]:
    """``(named keyword arguments, whether it also takes **kwargs)`` of a
    class or function."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return set(), True
    kinds = [p.kind for p in sig.parameters.values()]
    return (set(sig.parameters) - {'self'},
            inspect.Parameter.VAR_KEYWORD in kinds)


def _accepts(target: Any, name: str, siblings: Sequence[str]) -> bool:
    """Whether ``target`` takes keyword ``name``. With ``**kwargs`` any name
    might be meant for it, except one a letter or two off a named argument
    or an existing key (a typo: ``intervall``)."""
    named, var_kw = _params(target)
    if name in named:
        return True
    if not var_kw:
        return False
    return not difflib.get_close_matches(name, list(named) + list(siblings),
                                         n=1, cutoff=0.8)


def _import(spec: str) -> Any:
    import importlib
    module, _, attr = spec.partition(':')
    obj = importlib.import_module(module)
    for part in attr.split('.'):
        obj = getattr(obj, part)
    return obj


def _registered(type_name: str) -> Any:
    """The class a config's ``type`` names, from mmdet's (and mmengine's)
    registries; None if none has it."""
    import mmdet.registry as registries
    from mmengine.registry import Registry

    import citymask.register  # noqa: F401  (citymask's classes)
    for reg in vars(registries).values():
        if isinstance(reg, Registry):
            try:
                found = reg.get(type_name)
            except Exception:  # a registry whose modules can't import
                found = None
            if found is not None:
                return found
    return None


def _section_accepts(section: str, name: str,
                     siblings: Sequence[str] = ()) -> bool:
    """Whether ``section.name`` is meaningful for an untyped section that
    lacks it (``randomness.seed``, ``train_dataloader.pin_memory`` ...)."""
    if section not in _SECTIONS:
        return False
    if name in _SECTION_EXTRA.get(section, ()):
        return True
    return any(_accepts(_import(spec), name, siblings)
               for spec in _SECTIONS[section])


def _type_accepts(node: dict, name: str) -> bool:
    """Whether the class a ``type=...`` dict builds takes argument ``name``.
    """
    type_ = node.get('type')
    cls = type_ if not isinstance(type_, str) else _registered(type_)
    if cls is None:
        return True  # unknown here: the build will say
    return _accepts(cls, name, list(node))


def _flat_keys(node: Any, prefix: str = '') -> Dict[str, Any]:
    """``{dotted key: value}`` of every key in a config (lists by index)."""
    out = {}
    items = (node.items() if isinstance(node, dict) else
             enumerate(node) if isinstance(node, (list, tuple)) else ())
    for k, v in items:
        key = f'{prefix}{k}'
        out[key] = v
        out.update(_flat_keys(v, key + '.'))
    return out


def _closest(key: str, flat: Dict[str, Any]) -> str:
    """`` (closest: KEY)`` for a missing key, or ''."""
    parent, _, last = key.rpartition('.')
    siblings = [k for k in flat if k.rpartition('.')[0] == parent]
    for pool, word, tail in ((siblings, key, False), (list(flat), key, False),
                             (list(flat), last, True)):
        names = [k.rpartition('.')[2] for k in pool] if tail else pool
        match = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
        if match:
            if tail:
                match = [k for k in pool if k.rpartition('.')[2] == match[0]]
            return f' (closest: {match[0]})'
    return ''


def _uses(key: str, value: Any, flat: Dict[str, Any]) -> List[str]:
    """Where a config-file variable is used: keys with its name, else keys
    holding its value."""
    named = [k for k in flat if '.' in k and k.rpartition('.')[2] == key]
    if named:
        return named[:3]
    if isinstance(value, bool) or value in (None, 0, 1, '', [], {}):
        return []
    return [k for k, v in flat.items() if '.' in k and v == value][:3]


def _lookup(cfg: Config, key: str) -> Tuple[bool, Any, Any, List[str]]:
    """``(found, value, parent node, path)`` of a dotted key; when not
    found, ``parent`` is the deepest node reached and ``path`` the parts
    that reached it."""
    node: Any = cfg._cfg_dict
    parts = key.split('.')
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            child = node[part]
        elif (isinstance(node, (list, tuple)) and part.isdigit()
              and int(part) < len(node)):
            child = node[int(part)]
        else:
            return False, None, node, parts[:i]
        if i == len(parts) - 1:
            return True, child, node, parts[:i]
        node = child
    return False, None, node, []  # not reached


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return 'True or False'
    if isinstance(value, int):
        return 'an integer'
    if isinstance(value, float):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, (list, tuple)):
        return 'a list, e.g. [a,b]'
    if isinstance(value, dict):
        return 'a dict, e.g. "dict(a=1)" or set its keys one by one'
    return type(value).__name__


def _fits(old: Any, new: Any) -> bool:
    """Whether ``new`` may replace ``old`` (the config's value)."""
    if old is None or new is None:
        return True
    if isinstance(old, bool):
        return isinstance(new, bool)
    if isinstance(old, int):
        return isinstance(new, int) and not isinstance(new, bool)
    if isinstance(old, float):
        return isinstance(new, (int, float)) and not isinstance(new, bool)
    if isinstance(old, str):
        return isinstance(new, str)
    if isinstance(old, (list, tuple)):
        return isinstance(new, (list, tuple))
    if isinstance(old, dict):
        return isinstance(new, dict)
    return True


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in '\'"':
        return text[1:-1]
    return text


def check_cfg_options(cfg: Config, cfg_options: dict) -> dict:
    """Check ``--cfg-options`` against ``cfg`` before they are merged.

    A key must exist in the config, or be an argument of the class its
    section builds (``default_hooks.checkpoint.max_keep_ckpts``), of an
    untyped section (``randomness.seed``, ``train_dataloader.pin_memory``)
    or of mmengine's Runner (top level). A top-level variable of the file
    (``max_iters = 400``) is refused: it was read when the file was
    parsed, so setting it changes nothing; the message names where it is
    used. A value must have the type of the value it replaces.

    Values given as text (:class:`citymask.cli.CfgOptions`) are kept as
    the text where the config holds a string or a path (mmengine's
    ``DictAction`` would squeeze spaces and split at commas).

    Args:
        cfg: The loaded config.
        cfg_options: ``{dotted key: value}``.

    Returns:
        The options to merge.

    Raises:
        CitymaskError: an unknown key, a file variable, or a value of the
            wrong type; the message has the closest key or the right one.
    """
    raw = getattr(cfg_options, 'raw', {})
    flat = _flat_keys(cfg._cfg_dict)
    from mmengine.runner import Runner
    top_level = _params(Runner.__init__)[0] | set(_TOP_LEVEL_EXTRA)
    out = {}
    for key, value in cfg_options.items():
        shown = f'--cfg-options {key}={raw.get(key, value)}'
        found, old, parent, reached = _lookup(cfg, key)
        top = key.split('.')[0]
        if top not in top_level and top in cfg._cfg_dict:
            uses = _uses(top, cfg[top], flat)
            where = (f'set it where it is used: {", ".join(uses)}' if uses
                     else 'set the keys that use it')
            raise CitymaskError(
                f'{shown}: {top} is a variable of the config file, read only '
                f'while the file is parsed, so setting it changes nothing; '
                f'{where}')
        if not found:
            name = key.split('.')[len(reached)]
            leaf = len(reached) == len(key.split('.')) - 1
            allowed = False
            if not reached:
                allowed = name in top_level and (
                    '.' not in key or _section_accepts(
                        name, key.split('.')[1]))
            elif isinstance(parent, dict) and leaf:
                allowed = (_type_accepts(parent, name) if 'type' in parent
                           else len(reached) == 1 and _section_accepts(
                               reached[0], name, list(parent)))
            if not allowed:
                closest = _closest(key, flat)
                raise CitymaskError(
                    f'{shown}: the config has no {key}' + (closest or (
                        '; its keys: `python -c "from mmengine import '
                        'Config; print(Config.fromfile(CONFIG).pretty_text)"`'
                    )))
        text = raw.get(key)
        last = key.rpartition('.')[2]
        if text is not None and value is not None \
                and not text.lstrip().startswith(('[', '(')) \
                and (isinstance(old, str) or (old is None and (
                    last.endswith(_PATH_SUFFIXES) or last == 'load_from'))):
            value = _unquote(text)  # a string: as given (None stays None)
        if found and not _fits(old, value):
            raise CitymaskError(
                f'{shown}: {key} takes {_kind(old)} (the config has '
                f'{old!r}), got {value!r}')
        out[key] = value
    return out


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply ``--cfg-options`` (``data_root`` rewrites
    every path under the old root).

    Args:
        path: Config file, or ``mmdet::...`` for one of mmdet's.
        cfg_options: ``--cfg-options`` (:class:`citymask.cli.CfgOptions`,
            or a plain ``{key: value}``), checked by
            :func:`check_cfg_options`.
    """
    path = resolve_config_path(path)
    if not osp.isfile(path):
        raise CitymaskError(
            f'config {path} does not exist (the configs are under configs/, '
            'e.g. configs/maskrcnn_r50_fpn_cityscapes_ft.py)')
    # mmengine 0.10.7 re-imports pkg_resources for every _base_ file,
    # which warns on each tool's stderr before citymask.register can quiet it
    from .compat import quiet_known_warnings
    quiet_known_warnings()
    try:
        cfg = Config.fromfile(path)
    except Exception as e:
        raise CitymaskError(f'cannot read config {path}: {e}') from None
    old_root = cfg.get('data_root')
    if cfg_options:
        cfg.merge_from_dict(check_cfg_options(cfg, cfg_options))
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
