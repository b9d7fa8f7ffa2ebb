from typing import Iterator, List, Optional

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import BatchSampler, Sampler


class SeededIndex(int):
    """A dataset index that carries the random seed of its batch.

    mmengine's ``BaseDataset.get_data_info`` stores the index it was given
    as ``results['sample_idx']``, so the seed reaches the transforms in the
    dataloader workers with no other channel.
    """

    def __new__(cls, idx: int, batch_seed: int):
        obj = super().__new__(cls, idx)
        obj.batch_seed = batch_seed
        return obj

    def __reduce__(self):  # to the dataloader workers, seed included
        return SeededIndex, (int(self), self.batch_seed)


@DATA_SAMPLERS.register_module()
class SeededBatchSampler(BatchSampler):
    """torch's ``BatchSampler`` that gives every batch one random seed.

    Transforms that read it (citymask's ``BatchChoiceResize``) make the
    same random choice for all images of a batch. The seeds are drawn here,
    in the main process, so they do not depend on the number of workers;
    each rank draws its own.

    Args:
        sampler: The index sampler, e.g. mmengine's ``InfiniteSampler``.
        batch_size: Images per batch (on this rank).
        drop_last: Drop a last incomplete batch (finite samplers).
        seed: Seed of the batch seeds; default: the sampler's ``seed``
            (mmengine's runner seeds it), else one shared by all ranks.
    """

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
