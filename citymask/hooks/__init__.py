from .coco_to_cityscapes_hook import CocoToCityscapesHook
from .finite_loss_hook import FiniteLossHook
from .stop_on_signal_hook import StopOnSignalHook

__all__ = ['CocoToCityscapesHook', 'FiniteLossHook', 'StopOnSignalHook']
