"""A hook that holds training at an iteration until a test lets it go, so a
test can signal, kill or inspect a real run at a known point without
waiting on time (two FIFOs made by :func:`paused_config`)."""
import os
import os.path as osp
import threading

from mmdet.registry import HOOKS
from mmengine.config import Config
from mmengine.dist import get_rank
from mmengine.hooks import Hook


@HOOKS.register_module()
class PauseAtIterHook(Hook):
    """After iteration ``iteration`` (1-based) rank 0 opens the FIFO
    ``fifo_dir/at`` (blocks until the test opens it too), then reads a
    byte of ``fifo_dir/go`` (until the test writes it); a signal sent in
    between is handled before the hook returns."""

    priority = 'HIGHEST'

    def __init__(self, iteration: int, fifo_dir: str) -> None:
        self.iteration, self.fifo_dir = iteration, fifo_dir

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 != self.iteration or get_rank() != 0:
            return
        open(osp.join(self.fifo_dir, 'at'), 'w').close()
        with open(osp.join(self.fifo_dir, 'go'), 'rb') as go:
            go.read(1)


def paused_config(base: str, folder: str, iteration: int) -> str:
    """Write ``folder/paused.py`` (``base`` + :class:`PauseAtIterHook` at
    ``iteration``) and FIFOs ``folder/at``, ``folder/go``; returns its path."""
    base_cfg = Config.fromfile(base)
    hooks = [dict(h) for h in base_cfg.get('custom_hooks', [])]
    hooks.append(dict(type='PauseAtIterHook', iteration=iteration,
                      fifo_dir=folder))
    imports = list(base_cfg.custom_imports.imports) + [__name__]
    path = osp.join(folder, 'paused.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {osp.abspath(base)!r}\n'
                f'custom_imports = dict(imports={imports!r})\n'
                f'custom_hooks = {hooks!r}\n')
    for name in ('at', 'go'):
        os.mkfifo(osp.join(folder, name))
    return path


def wait_until_paused(proc, folder: str) -> bool:
    """Block until the run ``proc`` (a ``subprocess.Popen``) is held by the
    hook (True) or has ended without getting there (False)."""
    at = osp.join(folder, 'at')
    # when the run ends, meet the reader below if it still waits (the
    # watcher of a run that got there stays blocked: a daemon thread)
    threading.Thread(target=lambda: (proc.wait(), open(at, 'w').close()),
                     daemon=True).start()
    open(at).close()
    return proc.poll() is None


def release(folder: str) -> None:
    """Let the held run go on."""
    with open(osp.join(folder, 'go'), 'wb') as go:
        go.write(b'x')
