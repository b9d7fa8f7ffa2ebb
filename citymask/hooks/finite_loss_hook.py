import math
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..errors import CitymaskError


def _scalar(value) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else \
        float(value)


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first NaN / inf loss, saying where and what.

    mmdet's ``CheckInvalidLossHook`` raises a bare ``AssertionError``; this
    names the iteration and every loss term, so the user sees which head
    diverged.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
    """

    priority = 'VERY_HIGH'  # before the logger / checkpoint hooks

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        loss = _scalar(outputs['loss'])
        if math.isfinite(loss):
            return
        terms = ', '.join(f'{k}={_scalar(v):.4g}' for k, v in outputs.items()
                          if k.startswith('loss') and k != 'loss')
        raise CitymaskError(
            f'loss is {loss} at iteration {runner.iter + 1} ({terms}); '
            'training stopped. Lower the lr (--auto-scale-lr for fewer '
            'GPUs), clip gradients, or check the data; resume from the last '
            'checkpoint with --resume')
