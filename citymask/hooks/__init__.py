from .coco_to_cityscapes_hook import CocoToCityscapesHook
from .finite_loss_hook import FiniteLossHook

__all__ = ['CocoToCityscapesHook', 'FiniteLossHook']
