"""What ``tools/train.py``'s and ``tools/test.py``'s flags do to the config
(as mmdet's tools), and the training run."""
import contextlib
import fcntl
import os
import os.path as osp
import pickle
import re
import signal
import socket
import sys
import time
from typing import Iterator, Optional, Union

from mmengine.config import Config, ConfigDict

from .checkpoint import latest_checkpoint
from .config import dataset_of
from .errors import CitymaskError


def _common(cfg: Config, config_path: str, work_dir: Optional[str],
            launcher: str) -> None:
    """Launcher; work dir (``--work-dir``, the config's, else mmdet's
    ``./work_dirs/CONFIG_NAME``); without CUDA, gloo and CPU DDP."""
    import torch
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(config_path))[0])
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', ConfigDict()).setdefault(
        'dist_cfg', ConfigDict()).backend = 'gloo'
    # DDP wants device_ids=None for CPU modules; mmengine passes LOCAL_RANK
    cfg.model_wrapper_cfg = ConfigDict(
        type='MMDistributedDataParallel', device_ids=None)


_AMP_DTYPES = {True: 'float16', 'fp16': 'float16', 'bf16': 'bfloat16'}


def setup_train(cfg: Config, config_path: str, *,
                work_dir: Optional[str] = None,
                amp: Union[None, bool, str] = None,
                auto_scale_lr: bool = False, resume: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Apply ``tools/train.py``'s flags to ``cfg`` (in place; returned).
    ``amp``: ``'fp16'`` (or True) / ``'bf16'``, GPU only; ``resume``: a
    checkpoint or ``'auto'`` (the work dir's latest)."""
    _common(cfg, config_path, work_dir, launcher)
    if amp:
        import torch
        if not torch.cuda.is_available():
            raise CitymaskError(
                '--amp needs a GPU (mmengine\'s AmpOptimWrapper refuses to '
                'run on CPU); train without --amp here')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = _AMP_DTYPES[amp]
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
    if resume is not None:  # mmengine resumes from load_from
        cfg.resume, cfg.load_from = True, resume
    return cfg


def use_tensorboard(cfg: Config) -> Config:
    """``--tensorboard`` (in place; returned): losses, lr, metrics and
    validation images to ``WORK_DIR/TIMESTAMP/vis_data`` too."""
    from importlib.util import find_spec
    if find_spec('tensorboard') is None:
        raise CitymaskError(
            'TensorBoard logging needs the tensorboard package: pip install '
            '-r requirements/tensorboard.txt')
    backends = cfg.visualizer.get('vis_backends') or []
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends = list(backends) + [dict(type='TensorboardVisBackend')]
    cfg.visualizer.vis_backends = backends
    cfg.default_hooks.visualization.draw = True
    return cfg


@contextlib.contextmanager
def work_dir_lock(work_dir: str, launcher: str = 'none') -> Iterator[None]:
    """One training run per work dir (else CitymaskError): rank 0 holds a
    ``flock`` on ``WORK_DIR/.train.lock`` (pid, host), dropped however the
    process ends (SIGKILL too): a lock file left behind blocks nothing."""
    # the global rank, before the process group exists
    var = {'pytorch': 'RANK', 'slurm': 'SLURM_PROCID',
           'mpi': 'OMPI_COMM_WORLD_RANK'}.get(launcher)
    if var and int(os.environ.get(var, 0)) != 0:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, '.train.lock')
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors='replace').strip()
            raise CitymaskError(
                f'work dir {work_dir} is in use by another training run '
                f'({holder or "its pid is not written yet"}); wait for it to '
                'end or stop it, or choose another --work-dir') from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()}\n'
                  .encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def train(cfg: Config, launcher: str = 'none') -> None:
    """Build the Runner and train, locked (:func:`work_dir_lock`). SIGTERM
    / SIGINT stop with a checkpoint, one line and exit 143 / 130."""
    from mmengine.dist import get_rank
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import citymask.register  # noqa: F401  (stack fixes, citymask modules)
    from .cli import end_distributed
    from .hooks.stop_on_signal_hook import StopOnSignalHook, TrainingStopped
    with work_dir_lock(cfg.work_dir, launcher):
        runner = (Runner.from_cfg(cfg)
                  if 'runner_type' not in cfg else RUNNERS.build(cfg))
        runner.register_hook(StopOnSignalHook())
        try:
            runner.train()
        except pickle.UnpicklingError as e:  # e.g. a downloaded load_from
            raise CitymaskError(
                'refused to load a checkpoint that could run code: '
                f'{str(e).strip().splitlines()[-1][:200]}') from None
        except TrainingStopped as e:
            if get_rank() == 0:
                print(f'stopped by {e.signum.name} after iteration '
                      f'{e.iteration} of {runner.max_iters}, saved '
                      f'{e.checkpoint}; to continue, run the same command '
                      'with --resume', file=sys.stderr)
            end_distributed()
            sys.exit(128 + e.signum)  # the shell's status for the signal
        except (RuntimeError, ConnectionError, EOFError) as e:
            # torch's SIGCHLD handler raises wherever it lands, in this
            # block too: from here on _dead_worker asks instead
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            worker = _dead_worker(e)
            if worker is None:
                raise
            raise CitymaskError(
                f'a data loader worker (pid {worker}) died (out of memory? '
                'see `dmesg`); lower train_dataloader.num_workers or '
                'batch_size, then continue with --resume') from None
    end_distributed()


def _dead_worker(error: BaseException) -> Optional[str]:
    """The pid(s) of the dead data loader worker ``error`` shows, else None.
    A worker killed mid-read can first show as a reset connection or EOF:
    torch's check is asked again until it reports it (10 s at most)."""
    from torch.utils.data._utils.signal_handling import \
        _error_if_any_worker_fails
    try:
        for _ in range(0 if isinstance(error, RuntimeError) else 1000):
            _error_if_any_worker_fails()
            time.sleep(0.01)
    except RuntimeError as e:
        error = e
    worker = re.search(r'DataLoader worker \(pids?(?:\(s\))? ([\d, ]+)\)',
                       str(error))
    return worker and worker.group(1)


def is_test_split(cfg: Config) -> bool:
    """Whether the test dataloader reads the declared ``test_split``."""
    split = cfg.get('test_split')
    return split is not None and dataset_of(
        cfg.test_dataloader).get('ann_file') == split.ann_file


def setup_test(cfg: Config, config_path: str, checkpoint: str, *,
               work_dir: Optional[str] = None, out: Optional[str] = None,
               show_dir: Optional[str] = None, format_only: bool = False,
               outfile_prefix: Optional[str] = None, split: str = 'val',
               launcher: str = 'none') -> Config:
    """Apply ``tools/test.py``'s flags to ``cfg`` (in place; returned): the
    Cityscapes metric writes to ``WORK_DIR/cityscapes``, ``format_only``
    the submission to ``outfile_prefix``."""
    if not osp.isfile(checkpoint):
        raise CitymaskError(f'checkpoint {checkpoint} not found')
    _common(cfg, config_path, work_dir, launcher)
    cfg.load_from = checkpoint
    if split == 'test':
        if cfg.get('test_split') is None:
            raise CitymaskError(
                'this config declares no test_split (annotation file and '
                'image folder of the test images); --split test needs one, '
                'see configs/_base_/datasets/cityscapes_instance.py')
        ds = dataset_of(cfg.test_dataloader)
        ds.ann_file = cfg.test_split.ann_file
        ds.data_prefix = ConfigDict(cfg.test_split.data_prefix)
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
                ev.setdefault('plot_ap', True)
        if out:
            if not out.endswith(('.pkl', '.pickle')):
                raise CitymaskError('--out must end with .pkl')
            evaluators.append(dict(type='DumpDetResults', out_file_path=out))
        cfg.test_evaluator = evaluators
    if show_dir:
        # mmdet's visualization hook, in the dataset's Cityscapes palette
        vis = cfg.default_hooks.visualization
        vis.draw, vis.test_out_dir = True, show_dir
    return cfg


@contextlib.contextmanager
def show_dir_written_whole(runner, show_dir: Optional[str]) -> Iterator:
    """``--show-dir`` whole or absent: drawn into a hidden sibling of
    ``WORK_DIR/TIMESTAMP/SHOW_DIR``, renamed when the block ends (after all
    ranks are done), deleted on an error or Ctrl-C."""
    if not show_dir:
        yield
        return
    from mmdet.engine.hooks import DetVisualizationHook
    from mmengine.dist import get_rank

    from .fileio import atomic_dir
    final = osp.join(runner.work_dir, runner.timestamp, show_dir)
    with atomic_dir(final, what='--show-dir',
                    owner=get_rank() == 0) as partial:
        for hook in runner.hooks:
            if isinstance(hook, DetVisualizationHook):
                hook.test_out_dir = partial
        yield
