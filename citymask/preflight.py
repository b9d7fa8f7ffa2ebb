"""Checks the tools run before any work starts, each failing with one line.

Training for an hour and then finding the work dir unwritable, or testing a
checkpoint of another model and reading garbage AP, is what these prevent.
"""
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config

from .checkpoint import load_checkpoint_file, split_checkpoint, strip_prefix
from .config import dataset_of
from .errors import CheckpointError, CitymaskError


def check_data(cfg: Config, *loaders: str) -> None:
    """Fail early, with the command to run, if a dataset's files are missing.

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


def check_work_dir(work_dir: str) -> None:
    """An unwritable work dir fails now, not after an hour of training."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        probe = osp.join(work_dir, '.citymask-write-test')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as e:
        raise CitymaskError(
            f'cannot write to work dir {work_dir} ({e.strerror}); choose '
            'another with --work-dir') from None


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


def check_loadable(path: Optional[str]) -> None:
    """A local checkpoint given to --resume / load_from must be safe to load.

    Uses the weights-only loader the Runner will use, so a file that would
    run code, or is not a checkpoint, fails here with one line.
    """
    if not path or '://' in path:
        return
    if not osp.isfile(path):
        raise CitymaskError(f'checkpoint {path} not found')
    load_checkpoint_file(path)


def check_checkpoint(cfg: Config, path: str) -> None:
    """Fail with the offending keys if a checkpoint doesn't fit the model.

    mmengine loads non-strictly and only logs mismatches, so testing a
    checkpoint of another model would silently report garbage. COCO
    checkpoints that the config's surgery hook converts are compared after
    conversion. The model is built on the meta device: only shapes count.
    """
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from .surgery import convert_checkpoint
    ckpt = load_checkpoint_file(path)
    try:
        state = convert_checkpoint(ckpt)[0]['state_dict']
    except CheckpointError:
        state = strip_prefix(split_checkpoint(ckpt)[0])
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(getattr(v, 'shape', ())) for k, v in state.items()}
    missing = sorted(set(expected) - set(have))
    unexpected = sorted(set(have) - set(expected))
    shapes = sorted(k for k in set(expected) & set(have)
                    if expected[k] != have[k])
    problems = []
    for what, keys in (('missing', missing), ('unexpected', unexpected),
                       ('shape mismatch', shapes)):
        if keys:
            more = f' and {len(keys) - 3} more' if len(keys) > 3 else ''
            problems.append(f'{len(keys)} {what} ({", ".join(keys[:3])}'
                            f'{more})')
    if problems:
        raise CitymaskError(
            f'checkpoint {path} does not match the config\'s model: '
            + '; '.join(problems))
