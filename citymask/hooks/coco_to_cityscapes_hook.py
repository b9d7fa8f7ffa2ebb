from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..errors import CheckpointError
from ..surgery import convert_checkpoint, mapping_table


@HOOKS.register_module()
class CocoToCityscapesHook(Hook):
    """Convert a COCO Mask R-CNN checkpoint (mmdet, maskrcnn-benchmark) to
    Cityscapes heads on load, keeping the shared classes' predictor rows
    (:mod:`citymask.surgery`); Cityscapes heads and checkpoints without RoI
    heads pass untouched. ``rider_init``: ``random`` or ``person``."""

    priority = 'VERY_HIGH'

    def __init__(self, rider_init: str = 'random') -> None:
        self.rider_init = rider_init

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        try:
            converted, info = convert_checkpoint(
                checkpoint, rider_init=self.rider_init)
        except CheckpointError as e:
            runner.logger.warning(f'COCO->Cityscapes surgery skipped: {e}')
            return
        if not info['changed'] and info['format'] == 'mmdet':
            return  # already Cityscapes heads: leave the dict as it was
        checkpoint.clear()
        checkpoint.update(converted)
        runner.logger.info(
            f'converted the {info["format"]} COCO checkpoint to Cityscapes '
            f'heads:\n{mapping_table(self.rider_init)}')
