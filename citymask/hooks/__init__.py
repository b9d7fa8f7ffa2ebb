from .coco_to_cityscapes_hook import CocoToCityscapesHook

__all__ = ['CocoToCityscapesHook']
