import os
import os.path as osp
import signal

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, barrier, is_distributed
from mmengine.hooks import CheckpointHook, Hook


class TrainingStopped(Exception):
    """Training stopped at an iteration boundary on a signal; the
    checkpoint of that iteration is written.

    Attributes:
        signum: The signal (``signal.SIGTERM``, ``signal.SIGINT``).
        iteration: The last iteration trained.
        checkpoint: Its checkpoint.
    """

    def __init__(self, signum: int, iteration: int, checkpoint: str):
        self.signum = signal.Signals(signum)
        self.iteration = iteration
        self.checkpoint = checkpoint
        super().__init__(f'{self.signum.name} at iteration {iteration}')


@HOOKS.register_module()
class StopOnSignalHook(Hook):
    """Stop training on SIGTERM or SIGINT at the next iteration boundary,
    with a checkpoint of that iteration, so ``--resume`` continues exactly.

    SIGTERM is what Slurm, Kubernetes and torchrun send before they kill a
    job; without this hook it ends the process wherever it is, and the
    work since the last interval checkpoint is lost. The handlers only
    note the signal; after every training iteration the ranks agree on it
    with an all-reduce (a validation in progress ends first), so all of
    them stop at the same boundary (a rank leaving early would leave the
    others blocked in the next collective). Rank 0 writes the checkpoint
    through the config's ``CheckpointHook`` (one of mmengine's default
    hooks: its file names, ``max_keep_ckpts`` and ``last_checkpoint``),
    then every rank raises :class:`TrainingStopped`.
    Repeated signals do not escalate: torchrun forwards the signal the
    workers already got from the terminal or the scheduler.
    ``tools/train.py`` registers it for every run.
    """

    priority = 'LOWEST'  # after the scheduler step and the regular save

    def __init__(self) -> None:
        self.signum = 0
        self._previous = {}
        self._pid = os.getpid()

    def _note(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            # a forked child (a metric's process pool, a data loader
            # worker) does what it would without this hook, or a pool
            # ending its workers with SIGTERM would wait for them forever
            previous = self._previous.get(signum, signal.SIG_DFL)
            signal.signal(signum, previous)
            if callable(previous):
                return previous(signum, frame)
            os.kill(os.getpid(), signum)
            return
        self.signum = self.signum or signum

    def before_train(self, runner) -> None:
        self._pid = os.getpid()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._note)

    def after_train(self, runner) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch=None, outputs=None) -> None:
        iteration = runner.iter + 1
        flag = torch.tensor([self.signum])
        if is_distributed():
            all_reduce(flag, op='max')
        signum = int(flag)
        if not signum:
            return
        [saver] = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        path = osp.join(saver.out_dir, saver.filename_tmpl.format(iteration))
        if saver.last_ckpt != path:  # not saved at this iteration already
            runner.logger.info(
                f'{signal.Signals(signum).name}: saving checkpoint at '
                f'{iteration} iterations')
            saver._save_checkpoint_with_step(
                runner, iteration, meta=dict(epoch=runner.epoch,
                                             iter=iteration))
        if is_distributed():
            barrier()  # the others wait until rank 0's checkpoint is written
        raise TrainingStopped(signum, iteration, path)
