from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..errors import CheckpointError
from ..surgery import convert_checkpoint, mapping_table


@HOOKS.register_module()
class CocoToCityscapesHook(Hook):
    """Convert a COCO Mask R-CNN checkpoint to Cityscapes heads on load.

    With ``load_from`` pointing at a COCO checkpoint (mmdet, or a
    maskrcnn-benchmark ``.pth``), the shared classes' predictor rows are
    kept instead of dropped (see :mod:`citymask.surgery`). A checkpoint that
    already has Cityscapes heads (``--resume``, ``tools/test.py``) and one
    without RoI heads pass through untouched.

    Args:
        rider_init (str): ``random`` or ``person``. Defaults to ``random``.
    """

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
