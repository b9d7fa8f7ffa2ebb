"""Configs as the tools read them. ``--cfg-options`` are checked against what
the installed mmengine and mmdet take: mmengine merges a misspelt key or a
file variable (``max_iters``) silently, changing nothing."""
import difflib
import functools
import inspect
import os.path as osp
import re
import typing
from typing import Any, Dict, List, Optional

from mmengine.config import Config, ConfigDict

from .errors import CitymaskError

# top-level keys citymask and mmdet's tools read
_OWN_KEYS = {'data_root', 'test_split', 'runner_type'}
# values that must be > 0 (num_workers >= 0)
_POSITIVE = ('batch_size', 'base_batch_size', 'lr', 'max_iters', 'max_epochs',
             'val_interval')
# values of these keys are paths: given text is kept as is (commas too)
_PATH_SUFFIXES = ('root', 'dir', 'file', 'from', 'prefix', 'path')
_KINDS = ((bool, bool, 'True or False'), (int, int, 'an integer'),
          (float, (int, float), 'a number'), (str, str, 'a string'),
          ((list, tuple), (list, tuple), 'a list, e.g. [a,b]'),
          (dict, dict, 'a dict (or set its keys one by one)'))


def _replace_prefix(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return new + node[len(old):] if node.startswith(old) else node
    if isinstance(node, dict):
        node.update({k: _replace_prefix(v, old, new) for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(_replace_prefix(v, old, new) for v in node)
    return node


def resolve_config_path(path: str) -> str:
    """The file of a config path or ``mmdet::...`` name."""
    if '::' not in path:
        return path
    from mmengine.config.utils import _get_package_and_cfg_path
    from mmengine.utils import get_installed_path
    package, rel = _get_package_and_cfg_path(path)
    return osp.join(get_installed_path(package), '.mim', 'configs', rel)


def _registered(type_name: str) -> Any:
    """The class a ``type`` names in mmdet's (and mmengine's) registries."""
    import mmdet.registry as registries
    from mmengine.registry import Registry

    import citymask.register  # noqa: F401  (citymask's classes)
    for reg in vars(registries).values():
        try:  # (a registry whose modules can't import: not this one)
            found = isinstance(reg, Registry) and reg.get(type_name)
        except Exception:
            found = None
        if found:
            return found
    return None


@functools.lru_cache(maxsize=4)
def _runner(runner_type: str) -> tuple:
    """``(top-level keys, {section: what takes its keys})`` of the Runner,
    from its signature, annotations and source (``cfg.get('compile')``,
    ``**randomness``)."""
    cls = _registered(runner_type) or _registered('Runner')
    keys, targets = set(inspect.signature(cls).parameters), {}
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that can't be resolved here
        hints = {}
    for name, hint in hints.items():
        stack = [hint]
        while stack:
            t = stack.pop()
            stack += typing.get_args(t)
            if inspect.isclass(t) and t.__module__ != 'builtins':
                targets.setdefault(name, []).append(t)
    for module in {inspect.getmodule(c) for c in cls.__mro__[:-1]}:
        try:
            src = inspect.getsource(module)
        except (OSError, TypeError):  # no source: its arguments only
            continue
        keys |= set(re.findall(r"\bcfg(?:\.get\(|\[)\s*'(\w+)'", src))
        for func, section in re.findall(r'([\w.]+)\(\*\*(\w+)\)', src):
            head, *rest = func.split('.')
            obj = cls if head == 'self' else vars(module).get(head)
            for part in rest:
                obj = getattr(obj, part, None)
            if callable(obj):
                targets.setdefault(section, []).append(obj)
    return keys, targets


def _accepts(cfg: Config, path: str, node: dict, name: str) -> bool:
    """Whether what ``node`` at ``path`` builds takes ``name``; with
    ``**kwargs`` any name not a letter or two off a known one."""
    keys, targets = _runner(cfg.get('runner_type', 'Runner'))
    if not path:
        return name in keys | _OWN_KEYS
    found = targets.get(path, []) if '.' not in path else []
    if 'type' in node:
        found = [node['type'] if not isinstance(node['type'], str) else
                 _registered(node['type'])]
        if found[0] is None:
            return True  # unknown here: the build will say
    params = [p for t in found
              for p in inspect.signature(t).parameters.values()]
    names = {p.name for p in params} - {'self'}
    return name in names or any(p.kind == p.VAR_KEYWORD for p in params) \
        and not difflib.get_close_matches(name, [*names, *node], cutoff=0.8)


def _flat_keys(node: Any, prefix: str = '') -> Dict[str, Any]:
    """``{dotted key: value}`` of every key in a config (lists by index)."""
    out = {}
    items = (node.items() if isinstance(node, dict) else
             enumerate(node) if isinstance(node, (list, tuple)) else ())
    for k, v in items:
        out[f'{prefix}{k}'] = v
        out.update(_flat_keys(v, f'{prefix}{k}.'))
    return out


def _closest(key: str, flat: Dict[str, Any]) -> str:
    """`` (closest: KEY)`` for a missing key, or how to list the keys."""
    tails = {k.rpartition('.')[2]: k for k in reversed(list(flat))}
    for pool, word in (({k: k for k in flat}, key),
                       (tails, key.rpartition('.')[2])):
        match = difflib.get_close_matches(word, list(pool), n=1, cutoff=0.6)
        if match:
            return f' (closest: {pool[match[0]]})'
    return ('; its keys: `python -c "from mmengine import Config; '
            'print(Config.fromfile(CONFIG).pretty_text)"`')


def _uses(key: str, value: Any, flat: Dict[str, Any]) -> List[str]:
    """Keys named like a file variable, else keys holding its value."""
    named = [k for k in flat if '.' in k and k.rpartition('.')[2] == key]
    if named or isinstance(value, bool) or value in (None, 0, 1, '', [], {}):
        return named[:3]
    return [k for k, v in flat.items() if '.' in k and v == value][:3]


def _fits(old: Any, new: Any) -> Optional[str]:
    """None if ``new`` may replace ``old``, else what its key takes."""
    for kind, ok, takes in _KINDS if None not in (old, new) else ():
        if isinstance(old, kind):
            return None if isinstance(new, ok) and isinstance(
                new, bool) == isinstance(old, bool) else takes
    return None


def check_cfg_options(cfg: Config, cfg_options: dict) -> dict:
    """The ``--cfg-options`` to merge into ``cfg``, checked (CitymaskError):
    each key exists or is taken by what its section builds, is no file
    variable, and keeps its value's type; strings and paths keep the text
    given (:class:`citymask.cli.CfgOptions`)."""
    raw = getattr(cfg_options, 'raw', {})
    flat = _flat_keys(cfg._cfg_dict)
    keys = _runner(cfg.get('runner_type', 'Runner'))[0]
    out = {}
    for key, value in cfg_options.items():
        shown = f'--cfg-options {key}={raw.get(key, value)}'
        parts = key.split('.')
        if parts[0] in cfg and parts[0] not in keys | _OWN_KEYS:
            uses = _uses(parts[0], cfg[parts[0]], flat)
            raise CitymaskError(
                f'{shown}: {parts[0]} is a variable of the config file, read '
                'only while the file is parsed, so setting it changes '
                'nothing; ' + (f'set it where it is used: {", ".join(uses)}'
                               if uses else 'set the keys that use it'))
        at = max(i for i in range(len(parts))
                 if i == 0 or '.'.join(parts[:i]) in flat)
        node = flat.get('.'.join(parts[:at]), cfg._cfg_dict)
        if key not in flat and not (  # a new key, or one of a new section
                isinstance(node, dict) and at == len(parts) - 1
                and _accepts(cfg, '.'.join(parts[:at]), node, parts[-1])
                or at == 0 and len(parts) == 2 and parts[0] in keys
                and _accepts(cfg, parts[0], {}, parts[1])):
            raise CitymaskError(
                f'{shown}: the config has no {key}{_closest(key, flat)}')
        old, text = flat.get(key), raw.get(key)
        if text is not None and value is not None \
                and not text.lstrip().startswith(('[', '(')) and (
                    isinstance(old, str)
                    or old is None and parts[-1].endswith(_PATH_SUFFIXES)):
            value = text[1:-1] if len(text) > 1 and text[0] == text[-1] \
                and text[0] in '\'"' else text  # a string, as given
        takes = _fits(old, value)
        if takes:
            raise CitymaskError(f'{shown}: {key} takes {takes} (the config '
                                f'has {old!r}), got {value!r}')
        out[key] = value
    return out


def check_values(cfg: Config, path: str,
                 cfg_options: Optional[dict] = None) -> None:
    """Sizes and lr > 0, ``num_workers`` >= 0 (else torch fails deep
    inside, after the model is built)."""
    for key, value in _flat_keys(cfg._cfg_dict).items():
        name = key.rpartition('.')[2]
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and (name in _POSITIVE and value <= 0
                     or name == 'num_workers' and value < 0):
            raise CitymaskError(
                (f'--cfg-options {key}={value}' if key in (cfg_options or {})
                 else f'{path}: {key} = {value}') + f': {name} must be ' +
                ('0 or more' if name == 'num_workers' else 'greater than 0'))


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a ``.py`` / ``.yaml`` config (or ``mmdet::...``), apply checked
    ``--cfg-options`` (a new ``data_root`` moves every path under the old
    one) and check its values."""
    path = resolve_config_path(path)
    if not osp.isfile(path):
        raise CitymaskError(
            f'config {path} does not exist (the configs are under configs/, '
            'e.g. configs/maskrcnn_r50_fpn_cityscapes_ft.py)')
    if path.endswith('.json'):
        raise CitymaskError(
            f'config {path}: JSON has no tuples (mmengine writes them as '
            "lists, then mmcv's RandomChoiceResize refuses its scales); use "
            'the .py config, or a .yaml dump of it')
    # mmengine 0.10.7 re-imports pkg_resources for every _base_ file (warns)
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
        cfg.data_root = new_root = new_root.rstrip('/') + '/'
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                    'val_evaluator', 'test_evaluator'):
            if cfg.get(key) is not None:
                cfg[key] = _replace_prefix(cfg[key], old_root, new_root)
    check_values(cfg, path, cfg_options)
    return cfg


def dataset_of(loader: ConfigDict) -> ConfigDict:
    """The innermost dataset of a dataloader config (through wrappers)."""
    ds = loader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    return ds
