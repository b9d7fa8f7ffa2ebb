"""Checks the tools run before any work starts, each failing with one line
(not after an hour of training, or as the AP 0 of another model's weights).
"""
import json
import os
import os.path as osp
import tempfile
from types import SimpleNamespace
from typing import Any, Dict, Optional

from mmengine.config import Config

from .checkpoint import load_checkpoint_file, split_checkpoint, strip_prefix
from .config import dataset_of
from .errors import CitymaskError
from .fileio import check_writable, is_own_output


def _annotations(path: str, name: str) -> None:
    """Valid COCO-style JSON, for training with a non-crowd instance (mmdet
    drops the other images and would fail deep in the loader)."""
    try:
        with open(path, 'rb') as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise CitymaskError(
            f'annotation file {path} is not valid JSON ({e}): truncated or '
            'damaged? convert Cityscapes again with '
            '`python tools/dataset_converters/cityscapes.py ROOT`') from None
    if not isinstance(data, dict):
        raise CitymaskError(
            f'annotation file {path} is not a COCO-style annotation file '
            '(expected a JSON object with images and annotations)')
    if name == 'train_dataloader' and not any(
            not a.get('iscrowd', 0) for a in data.get('annotations') or []):
        raise CitymaskError(
            f'{path} has nothing to train on: '
            f'{len(data.get("images") or [])} images, none with a '
            'non-crowd instance (person, rider, car, truck, bus, train, '
            'motorcycle, bicycle); is data_root the right Cityscapes tree? '
            'convert it again with tools/dataset_converters/cityscapes.py')


def check_data(cfg: Config, *loaders: str) -> None:
    """Each named loader's annotation file (usable) and images must exist."""
    for name in loaders:
        if cfg.get(name) is None:
            continue
        ds = dataset_of(cfg.get(name))
        root = ds.get('data_root', '') or ''
        ann = osp.join(root, ds.get('ann_file', ''))
        if not osp.isfile(ann):
            root = root or 'ROOT'
            raise CitymaskError(
                f'{ann} not found ({name}): convert Cityscapes first with '
                f'`python tools/dataset_converters/cityscapes.py {root} '
                f'-o {osp.join(root, "annotations")}` or set '
                '--cfg-options data_root=YOUR/CITYSCAPES/')
        img_dir = osp.join(root, ds.get('data_prefix', {}).get('img', ''))
        if not osp.isdir(img_dir):
            raise CitymaskError(
                f'{img_dir} not found ({name}): expected Cityscapes images in '
                'DATA_ROOT/leftImg8bit/SPLIT/')
        _annotations(ann, name)


def check_work_dir(work_dir: str) -> None:
    """An unwritable work dir fails now, not after an hour of training."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        tempfile.TemporaryFile(dir=work_dir).close()
    except OSError as e:
        raise CitymaskError(
            f'cannot write to work dir {work_dir} ({e.strerror}); choose '
            'another with --work-dir') from None


def check_test_outputs(work_dir: str, out: Optional[str] = None,
                       show_dir: Optional[str] = None,
                       outfile_prefix: Optional[str] = None,
                       overwrite: bool = False) -> None:
    """Every output of ``tools/test.py`` (``--show-dir`` under the work dir
    unless absolute) must be writable before the model runs; ``overwrite``
    lets only an earlier submission (folder and zip) be replaced."""
    if out:
        check_writable(out, what='--out')
    if show_dir:
        check_writable(osp.join(work_dir, show_dir), 'dir', what='--show-dir')
    if outfile_prefix:
        check_writable(outfile_prefix, 'dir', what='--outfile-prefix',
                       overwrite=overwrite)
        zip_path = outfile_prefix.rstrip('/') + '.zip'
        if osp.lexists(zip_path) and not (overwrite
                                          and is_own_output(outfile_prefix)):
            raise CitymaskError(
                f'submission zip {zip_path} exists' + (
                    '; pass --overwrite to replace it' if not overwrite else
                    ' and is not that of an earlier submission there, so it '
                    'is never replaced; choose another --outfile-prefix'))
        check_writable(zip_path, what='submission zip')


def check_gpu_count(wanted: str) -> None:
    """GPUS must exist here (any count without CUDA: CPU processes)."""
    import torch
    n = int(wanted) if wanted.strip().isdecimal() else 0
    if n < 1:
        raise CitymaskError(f'GPUS must be a positive integer, got {wanted!r}')
    if torch.cuda.is_available() and n > torch.cuda.device_count():
        have = torch.cuda.device_count()
        raise CitymaskError(
            f'asked for {n} GPUs but this machine has {have}; pass {have} or '
            'fewer (or set NNODES for several machines)')


def _as_loaded(cfg: Config, ckpt: dict, resume: bool) -> Dict[str, Any]:
    """The state dict the run loads (converted on load unless resumed)."""
    from mmdet.registry import HOOKS

    from .hooks.coco_to_cityscapes_hook import CocoToCityscapesHook
    quiet = SimpleNamespace(logger=SimpleNamespace(
        info=lambda *args: None, warning=lambda *args: None))
    for hook in [] if resume else cfg.get('custom_hooks') or []:
        cls = HOOKS.get(hook.get('type')) if isinstance(
            hook.get('type'), str) else hook.get('type')
        if isinstance(cls, type) and issubclass(cls, CocoToCityscapesHook):
            HOOKS.build(dict(hook)).after_load_checkpoint(quiet, ckpt)
    return strip_prefix(split_checkpoint(ckpt)[0])


def check_checkpoint(cfg: Config, path: Optional[str],
                     resume: bool = False) -> None:
    """A local checkpoint (None and URLs pass) must load safely and, as the
    config converts it on load, fit the config's model (built on the meta
    device; mmengine would only log mismatches). With ``resume`` it must
    hold a training state."""
    if not path or '://' in path:
        return
    if not osp.isfile(path):
        raise CitymaskError(f'checkpoint {path} not found')
    ckpt = load_checkpoint_file(path)
    if resume:
        meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
        if not (isinstance(meta, dict) and 'iter' in meta
                and 'optimizer' in ckpt):
            raise CitymaskError(
                f'--resume {path}: it holds model weights only, no training '
                'state (optimizer, iteration) to resume; to train from these '
                f'weights pass --cfg-options load_from={path} instead of '
                '--resume')
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401  (citymask's modules)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    state = _as_loaded(cfg, ckpt, resume)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    check_state_dict(model, state, path, cfg.filename)


def check_state_dict(model, state: Dict[str, Any], path: str,
                     config: Optional[str] = None) -> None:
    """Fail if ``state`` lacks the keys and shapes of ``model``'s: the first
    misfit with both shapes, the counts, the fix."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(getattr(v, 'shape', ())) for k, v in state.items()}
    missing = sorted(set(expected) - set(have))
    unexpected = sorted(set(have) - set(expected))
    shapes = sorted(k for k in set(expected) & set(have)
                    if expected[k] != have[k])
    if not (missing or unexpected or shapes):
        return
    first = (f'{shapes[0]} is {have[shapes[0]]} in it, '
             f'{expected[shapes[0]]} in the model' if shapes else
             f'{missing[0]} {expected[missing[0]]} is missing' if missing
             else f'{unexpected[0]} {have[unexpected[0]]} is not in the model')
    counts = []
    for what, keys in (('shape mismatch', shapes), ('missing', missing),
                       ('unexpected', unexpected)):
        if keys:
            more = f' and {len(keys) - 3} more' if len(keys) > 3 else ''
            counts.append(f'{len(keys)} {what} ({", ".join(keys[:3])}{more})')
    from .surgery import num_classes
    from .surgery.heads import NUM_COCO
    try:
        coco = num_classes(state) == NUM_COCO != num_classes(
            {k: SimpleNamespace(shape=v) for k, v in expected.items()})
    except CitymaskError:
        coco = False
    fix = (f'it has COCO heads ({NUM_COCO} classes) and nothing converts '
           f'them on load: convert it with `python tools/surgery.py {path} '
           'OUT.pth`, or use a config that converts on load '
           '(custom_hooks: CocoToCityscapesHook)' if coco else
           'use the config it was trained with, or a checkpoint of this '
           'config\'s model')
    name = f' ({osp.basename(config)})' if config else ''
    raise CitymaskError(
        f'checkpoint {path} does not match the config\'s model{name}: '
        f'{first}; {"; ".join(counts)}; {fix}')
