"""Configs as the tools use them: loading, overrides, train/test set-up.

``tools/train.py`` and ``tools/test.py`` are argparse shells over these
functions, which follow mmdet's tools (same flags, same meaning) and add
what a Cityscapes user needs: ``data_root`` overrides that reach every
path, data checks that name the converter command, and the test split.
"""
import argparse
import glob
import os
import os.path as osp
from typing import Any, Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction

from .errors import CitymaskError


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank``: the flags
    mmdet's train and test tools share."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value '
                        '(e.g. data_root=/data/cityscapes/)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, and give mmengine the rank ``torch.distributed.launch``
    passes as a flag (``torchrun`` sets ``LOCAL_RANK`` itself)."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def end_distributed() -> None:
    """Leave a distributed run in step: all ranks reach a barrier, then the
    process group is closed. Without it a gloo rank can abort (SIGABRT) at
    exit when its peer has already gone."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


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
    """Read a config and apply ``--cfg-options``.

    ``data_root=...`` rewrites every path that started with the config's
    data root (dataloaders and evaluators), not only the top-level variable.
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


def _datasets(loader: ConfigDict):
    ds = loader.dataset
    while 'dataset' in ds:  # RepeatDataset / ClassBalancedDataset wrappers
        ds = ds.dataset
    return ds


def check_data(cfg: Config, *loaders: str) -> None:
    """Fail early, with the command to run, if a dataset's files are missing.
    """
    for name in loaders:
        loader = cfg.get(name)
        if loader is None:
            continue
        ds = _datasets(loader)
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


def _default_work_dir(cfg: Config, config_path: str,
                      work_dir: Optional[str]) -> str:
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir') is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def _cpu_distributed(cfg: Config, launcher: str) -> None:
    """On machines without CUDA, distributed runs use gloo and CPU DDP."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    # DDP wants device_ids=None for CPU modules; mmengine passes LOCAL_RANK
    cfg.model_wrapper_cfg = ConfigDict(
        type='MMDistributedDataParallel', device_ids=None)


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from.

    ``last_checkpoint`` names it; if that file is empty or names a missing
    file (a job killed at the wrong moment), the newest ``iter_*.pth`` is
    used: checkpoints are written atomically, so every one is complete.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
    found = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    if not found:
        return None
    return max(found, key=lambda p: int(osp.basename(p)[5:-4]))


def check_gpu_count(wanted: str) -> None:
    """``dist_train.sh CONFIG GPUS``: GPUS must exist on this machine.

    Without CUDA the processes run on CPU (gloo), so any count is allowed.
    """
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
    from .surgery import load_checkpoint_file
    load_checkpoint_file(path)


def check_checkpoint(cfg: Config, path: str) -> None:
    """Fail with the offending keys if a checkpoint doesn't fit the model.

    mmengine loads non-strictly and only logs mismatches, so testing a
    checkpoint of another model would silently report garbage. COCO
    checkpoints that the config's surgery hook converts are compared after
    conversion.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from .surgery import (CheckpointError, convert_checkpoint,
                          load_checkpoint_file)
    from .surgery.layouts import split_checkpoint, strip_prefix
    ckpt = load_checkpoint_file(path)
    try:
        state = convert_checkpoint(ckpt)[0]['state_dict']
    except CheckpointError:
        state = strip_prefix(split_checkpoint(ckpt)[0])
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    expected = {k: tuple(v.shape)
                for k, v in MODELS.build(cfg.model).state_dict().items()}
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


def setup_train(cfg: Config,
                config_path: str,
                work_dir: Optional[str] = None,
                amp: bool = False,
                auto_scale_lr: bool = False,
                resume: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Apply ``tools/train.py``'s flags, as mmdet's tools/train.py does."""
    cfg.launcher = launcher
    cfg.work_dir = _default_work_dir(cfg, config_path, work_dir)
    if amp:
        if not torch.cuda.is_available():
            raise CitymaskError(
                '--amp needs a GPU (mmengine\'s AmpOptimWrapper refuses to '
                'run on CPU); train without --amp here')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise CitymaskError(
                f'{config_path} has no auto_scale_lr.base_batch_size; '
                '--auto-scale-lr needs it')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        resume = latest_checkpoint(cfg.work_dir)
        if resume is None:  # mmengine would silently start from scratch
            raise CitymaskError(
                f'--resume: no checkpoint in {cfg.work_dir} to resume from; '
                'train without --resume, or pass --resume CHECKPOINT')
    elif resume is not None and not osp.isfile(resume):
        raise CitymaskError(f'--resume checkpoint {resume} not found')
    if resume is not None:
        # an explicit path: mmengine resumes from load_from
        cfg.resume = True
        cfg.load_from = resume
    _cpu_distributed(cfg, launcher)
    return cfg


def _use_test_split(cfg: Config) -> None:
    ds = _datasets(cfg.test_dataloader)
    ds.ann_file = ds.ann_file.replace('gtFine_val', 'gtFine_test')
    ds.data_prefix.img = ds.data_prefix.img.replace('/val', '/test')


def is_test_split(cfg: Config) -> bool:
    """Whether the test dataloader reads Cityscapes' test split."""
    ds = _datasets(cfg.test_dataloader)
    return 'gtFine_test' in ds.get('ann_file', '') or \
        '/test' in ds.get('data_prefix', {}).get('img', '')


def setup_test(cfg: Config,
               config_path: str,
               checkpoint: str,
               work_dir: Optional[str] = None,
               out: Optional[str] = None,
               show_dir: Optional[str] = None,
               format_only: bool = False,
               outfile_prefix: Optional[str] = None,
               split: str = 'val',
               launcher: str = 'none') -> Config:
    """Apply ``tools/test.py``'s flags, as mmdet's tools/test.py does.

    The Cityscapes metric writes its result JSON and per-class AP chart to
    ``WORK_DIR/cityscapes``; ``--format-only`` writes the benchmark
    submission to ``outfile_prefix`` instead.
    """
    if not osp.isfile(checkpoint):
        raise CitymaskError(f'checkpoint {checkpoint} not found')
    cfg.launcher = launcher
    cfg.work_dir = _default_work_dir(cfg, config_path, work_dir)
    cfg.load_from = checkpoint
    if split == 'test':
        _use_test_split(cfg)
    if format_only:
        if not outfile_prefix:
            raise CitymaskError(
                '--format-only needs --outfile-prefix DIR, the folder that '
                'receives the Cityscapes submission')
        cfg.test_evaluator = dict(type='CityscapesInstanceMetric',
                                  format_only=True,
                                  outfile_prefix=outfile_prefix)
    elif is_test_split(cfg):
        raise CitymaskError(
            'the Cityscapes test split has no public ground truth, so no AP '
            'can be computed here; write a submission for the benchmark '
            'server with --format-only --outfile-prefix DIR')
    else:
        evaluators = cfg.test_evaluator
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for ev in evaluators:
            if ev.get('type') == 'CityscapesInstanceMetric':
                ev.setdefault('outfile_prefix',
                              osp.join(cfg.work_dir, 'cityscapes'))
        if out:
            if not out.endswith(('.pkl', '.pickle')):
                raise CitymaskError('--out must end with .pkl')
            evaluators.append(dict(type='DumpDetResults', out_file_path=out))
        cfg.test_evaluator = evaluators
    if show_dir:
        # mmdet's visualization hook, in the dataset's Cityscapes palette
        vis = cfg.default_hooks.visualization
        vis.draw = True
        vis.test_out_dir = show_dir
    _cpu_distributed(cfg, launcher)
    return cfg
