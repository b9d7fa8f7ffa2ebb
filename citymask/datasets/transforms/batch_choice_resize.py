import numpy as np
from mmcv.transforms import RandomChoiceResize
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BatchChoiceResize(RandomChoiceResize):
    """mmcv's ``RandomChoiceResize`` (same arguments), one choice per batch
    of ``SeededBatchSampler`` (drawn from its seed: no padding, still a
    uniform choice); without a batch seed each image chooses on its own."""

    def transform(self, results: dict) -> dict:
        seed = getattr(results.get('sample_idx'), 'batch_seed', None)
        if seed is None:
            return super().transform(results)
        scale_idx = int(np.random.default_rng(seed).integers(len(self.scales)))
        self.resize.scale = self.scales[scale_idx]
        results = self.resize(results)
        results['scale_idx'] = scale_idx
        return results
