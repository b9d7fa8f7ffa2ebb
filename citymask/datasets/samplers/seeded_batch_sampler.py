from typing import Iterator, List, Optional

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import BatchSampler, Sampler


class SeededIndex(int):
    """A dataset index carrying its batch's seed: mmengine stores the index
    as ``results['sample_idx']``, which takes it to the transforms in the
    dataloader workers."""

    def __new__(cls, idx: int, batch_seed: int):
        obj = super().__new__(cls, idx)
        obj.batch_seed = batch_seed
        return obj

    def __reduce__(self):  # to the dataloader workers, seed included
        return SeededIndex, (int(self), self.batch_seed)


@DATA_SAMPLERS.register_module()
class SeededBatchSampler(BatchSampler):
    """torch's ``BatchSampler`` giving every batch one random seed, so
    ``BatchChoiceResize`` chooses alike for its images; drawn in the main
    process (any number of workers), per rank, from ``seed`` (default: the
    sampler's, set by mmengine's runner, else one shared by all ranks)."""

    def __init__(self, sampler: Sampler, batch_size: int,
                 drop_last: bool = False, seed: Optional[int] = None):
        super().__init__(sampler, batch_size, drop_last)
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        if seed is None:
            seed = sync_random_seed()
        rank, _ = get_dist_info()
        self._rng = np.random.default_rng([seed, rank])

    def __iter__(self) -> Iterator[List[SeededIndex]]:
        for batch in super().__iter__():
            seed = int(self._rng.integers(2**63))
            yield [SeededIndex(i, seed) for i in batch]
