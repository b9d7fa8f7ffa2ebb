from .cityscapes_instance_metric import CityscapesInstanceMetric

__all__ = ['CityscapesInstanceMetric']
