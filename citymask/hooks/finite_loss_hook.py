import math
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..errors import CitymaskError


def _scalar(value) -> float:
    # float() of a tensor that requires grad warns (torch 2.13)
    return float(value.detach() if isinstance(value, torch.Tensor) else value)


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first NaN / inf loss with one line naming the
    iteration and every loss term (mmdet's ``CheckInvalidLossHook`` raises
    a bare ``AssertionError``); checks every ``interval`` iterations."""

    priority = 'VERY_HIGH'  # before the logger / checkpoint hooks

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        loss = _scalar(outputs['loss'])
        if math.isfinite(loss):
            return
        terms = ', '.join(f'{k}={_scalar(v):.4g}' for k, v in outputs.items()
                          if k.startswith('loss') and k != 'loss')
        where = f'loss is {loss} at iteration {runner.iter + 1} ({terms})'
        off = _boxes_off_image(data_batch)
        if off:  # the lr is not to blame
            raise CitymaskError(
                f'{where}: {off}; the images no longer match their '
                'annotations (replaced or resized after conversion?): '
                're-run tools/dataset_converters/cityscapes.py on the data')
        raise CitymaskError(
            f'{where}; training stopped. Lower the lr (--auto-scale-lr for '
            'fewer GPUs), clip gradients, or check the data; resume from the '
            'last checkpoint with --resume')


def _boxes_off_image(data_batch: Optional[dict]) -> str:
    """Which image of the batch has ground-truth boxes of no area or
    outside it (clipped boxes of a larger image collapse on its border),
    as a phrase; '' if none."""
    for sample in (data_batch or {}).get('data_samples', []):
        gt = getattr(sample, 'gt_instances', None)
        if gt is None or 'bboxes' not in gt or not len(gt.bboxes):
            continue
        b = torch.as_tensor(gt.bboxes.tensor if hasattr(
            gt.bboxes, 'tensor') else gt.bboxes).float()
        h, w = sample.img_shape[:2]
        bad = ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]) | (b[:, 0] >= w)
               | (b[:, 1] >= h) | (b[:, 2] <= 0) | (b[:, 3] <= 0))
        if bad.any():
            return (f'{int(bad.sum())} of {len(b)} ground-truth boxes of '
                    f'{sample.img_path} lie outside its {w}x{h} image or '
                    'have no area')
    return ''
