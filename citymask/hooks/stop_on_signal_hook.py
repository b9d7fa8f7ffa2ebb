import os
import os.path as osp
import signal

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, barrier, is_distributed
from mmengine.hooks import CheckpointHook, Hook


class TrainingStopped(Exception):
    """Stopped by ``signum`` after ``iteration``, ``checkpoint`` written."""

    def __init__(self, signum: int, iteration: int, checkpoint: str):
        self.signum, self.iteration = signal.Signals(signum), iteration
        self.checkpoint = checkpoint
        super().__init__(f'{self.signum.name} at iteration {iteration}')


@HOOKS.register_module()
class StopOnSignalHook(Hook):
    """Stop on SIGTERM or SIGINT at the next iteration boundary with its
    checkpoint, so ``--resume`` continues exactly. The handlers only note
    the signal; an all-reduce after each iteration makes all ranks stop at
    the same one, the config's ``CheckpointHook`` saves, every rank raises
    :class:`TrainingStopped`. Repeated signals do not escalate."""

    priority = 'LOWEST'  # after the scheduler step and the regular save

    def __init__(self) -> None:
        self.signum = 0
        self._previous = {}
        self._pid = os.getpid()

    def _note(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            # a forked child (a pool's, a data loader's worker) does what it
            # would without the hook: its pool would wait for it forever
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
