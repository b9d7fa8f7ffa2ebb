"""Checks the tools run before any work starts, each failing with one line.

Training for an hour and then finding the work dir unwritable, or testing a
checkpoint of another model and reading garbage AP, is what these prevent.
"""
import functools
import json
import os
import os.path as osp
from types import SimpleNamespace
from typing import Any, Dict, Optional, Tuple

from mmengine.config import Config

from .checkpoint import load_checkpoint_file, split_checkpoint, strip_prefix
from .config import dataset_of
from .errors import CitymaskError
from .fileio import check_writable, is_own_output


@functools.lru_cache(maxsize=8)
def _annotation_summary(path: str, mtime: float,
                        size: int) -> Tuple[int, int]:
    """``(images, images with a non-crowd instance)`` of a COCO-style
    annotation file (cached per file version: train and test read it
    once here)."""
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
    images = data.get('images') or []
    with_things = {a.get('image_id') for a in data.get('annotations') or []
                   if not a.get('iscrowd', 0)}
    return len(images), len(with_things)


def annotation_summary(path: str) -> Tuple[int, int]:
    """``(images, images with a non-crowd instance)`` of an annotation
    file.

    Raises:
        CitymaskError: not valid JSON (truncated, damaged), naming it.
    """
    st = os.stat(path)
    return _annotation_summary(osp.abspath(path), st.st_mtime, st.st_size)


def check_data(cfg: Config, *loaders: str) -> None:
    """Fail early, with the command to run, if a dataset's files are missing
    or its annotation file is not valid JSON.

    Args:
        cfg: The run's config.
        loaders: Names of the dataloaders to check (``train_dataloader``...).
    """
    for name in loaders:
        loader = cfg.get(name)
        if loader is None:
            continue
        ds = dataset_of(loader)
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
        annotation_summary(ann)


def check_training_set(cfg: Config) -> None:
    """A training set without instances fails now, with the file named.

    mmdet drops images without a non-crowd instance (``filter_empty_gt``),
    so such a set would leave nothing to train on and fail deep in the
    data loader.
    """
    loader = cfg.get('train_dataloader')
    if loader is None:
        return
    ds = dataset_of(loader)
    ann = osp.join(ds.get('data_root', '') or '', ds.get('ann_file', ''))
    images, with_things = annotation_summary(ann)
    if with_things == 0:
        raise CitymaskError(
            f'{ann} has nothing to train on: {images} images, none with a '
            'non-crowd instance (person, rider, car, truck, bus, train, '
            'motorcycle, bicycle); is data_root the right Cityscapes tree? '
            'convert it again with tools/dataset_converters/cityscapes.py')


def check_work_dir(work_dir: str) -> None:
    """An unwritable work dir fails now, not after an hour of training."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        probe = osp.join(work_dir, f'.citymask-write-test.{os.getpid()}')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as e:
        raise CitymaskError(
            f'cannot write to work dir {work_dir} ({e.strerror}); choose '
            'another with --work-dir') from None


def check_test_outputs(work_dir: str,
                       out: Optional[str] = None,
                       show_dir: Optional[str] = None,
                       outfile_prefix: Optional[str] = None,
                       overwrite: bool = False) -> None:
    """Every output of ``tools/test.py`` must be writable before the model
    runs (not found unwritable after the whole test set).

    Args:
        work_dir: The run's work dir.
        out: ``--out`` (a ``.pkl``).
        show_dir: ``--show-dir`` (under ``WORK_DIR/TIMESTAMP`` unless
            absolute).
        outfile_prefix: The ``--format-only`` results folder; its ``.zip``
            is written next to it.
        overwrite: ``--overwrite``: an earlier submission (folder and
            zip) may be replaced; nothing else ever is.
    """
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
    """``dist_train.sh CONFIG GPUS``: GPUS must exist on this machine.

    Without CUDA the processes run on CPU (gloo), so any count is allowed.
    """
    import torch
    try:
        n = int(wanted)
    except ValueError:
        n = 0
    if n < 1:
        raise CitymaskError(f'GPUS must be a positive integer, got {wanted!r}')
    if torch.cuda.is_available() and n > torch.cuda.device_count():
        have = torch.cuda.device_count()
        raise CitymaskError(
            f'asked for {n} GPUs but this machine has {have}; pass {have} or '
            'fewer (or set NNODES for several machines)')


def _as_loaded(cfg: Config, ckpt: dict, resume: bool) -> Dict[str, Any]:
    """The state dict the run will load: after the on-load conversion of
    the config's ``CocoToCityscapesHook`` (the hook itself), no other; a
    resumed one as it is (its optimizer state can't be converted)."""
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
    """A local checkpoint (``tools/test.py``'s, ``load_from``, ``--resume``;
    None and URLs pass) must load safely and fit the config's model.

    It is read with the weights-only loader the Runner uses, converted as
    the config converts it on load (:func:`_as_loaded`) and compared with
    the model the config builds on the meta device. mmengine loads
    non-strictly and only logs mismatches: a checkpoint of another model
    would test as AP 0, or end a resumed run in an optimizer traceback.
    With ``resume`` it must also hold a training state (optimizer,
    iteration), which a model file (COCO, surgery output) lacks.
    """
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
    check_state_dict({k: tuple(v.shape)
                      for k, v in model.state_dict().items()}, state, path,
                     cfg.filename)


def check_state_dict(expected: Dict[str, tuple], state: Dict[str, Any],
                     path: str, config: Optional[str] = None) -> None:
    """Fail with one line if ``state`` (a checkpoint's state dict, as it
    will be loaded) doesn't have exactly the keys and shapes of
    ``expected`` (the model's): the first key that doesn't fit with both
    shapes, the counts, and what to do; ``path`` and ``config`` name the
    files."""
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
