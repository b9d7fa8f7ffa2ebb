import numpy as np
from mmcv.transforms import RandomChoiceResize
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BatchChoiceResize(RandomChoiceResize):
    """mmcv's ``RandomChoiceResize`` with one choice per batch.

    With citymask's ``SeededBatchSampler`` as the train dataloader's
    ``batch_sampler``, every image of a batch draws its scale from the
    batch's seed: frames of one size (Cityscapes') come out of one size and
    the batch holds no padding, while each image still sees a uniform choice
    among ``scales``. Without a batch seed (another sampler) each image
    chooses on its own, as in ``RandomChoiceResize``. Same arguments.
    """

    def transform(self, results: dict) -> dict:
        seed = getattr(results.get('sample_idx'), 'batch_seed', None)
        if seed is None:
            return super().transform(results)
        scale_idx = int(np.random.default_rng(seed).integers(len(self.scales)))
        self.resize.scale = self.scales[scale_idx]
        results = self.resize(results)
        results['scale_idx'] = scale_idx
        return results
