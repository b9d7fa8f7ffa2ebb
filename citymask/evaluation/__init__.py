from .cityscapes_instance import evaluate, format_table, summarize
from .metrics import CityscapesInstanceMetric

__all__ = ['CityscapesInstanceMetric', 'evaluate', 'format_table',
           'summarize']
