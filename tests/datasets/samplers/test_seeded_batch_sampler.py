"""SeededBatchSampler: mmengine's InfiniteSampler batched, one seed a batch
(ranks' own seeds: tests/configs/test_gpu_counts.py)."""
import io
import itertools
import pickle

from mmengine.dataset import InfiniteSampler

from citymask.datasets.samplers import SeededBatchSampler, SeededIndex


def _batches(n, **kwargs):
    sampler = SeededBatchSampler(InfiniteSampler(range(10), seed=3), 4,
                                 **kwargs)
    return list(itertools.islice(sampler, n))


def test_batches_are_the_infinite_samplers_indices_with_one_seed_each():
    batches = _batches(8)
    stream = list(itertools.islice(InfiniteSampler(range(10), seed=3), 32))
    assert [int(i) for b in batches for i in b] == stream
    seeds = [{i.batch_seed for i in b} for b in batches]
    assert all(len(s) == 1 for s in seeds)
    assert len(set.union(*seeds)) == len(batches)
    # the seed comes from the index sampler's (mmengine's runner sets it)
    assert [[i.batch_seed for i in b] for b in batches] == \
        [[i.batch_seed for i in b] for b in _batches(8)]
    assert [b[0].batch_seed for b in _batches(8, seed=4)] != \
        [b[0].batch_seed for b in batches]


def test_a_new_iteration_goes_on_with_new_seeds():
    # the runner iterates again after an epoch (finite samplers)
    sampler = SeededBatchSampler(range(6), 4)
    first, second = list(sampler), list(sampler)
    assert [len(b) for b in first] == [4, 2] and len(sampler) == 2
    assert first[0][0].batch_seed != second[0][0].batch_seed
    assert [len(b) for b in SeededBatchSampler(range(6), 4, True)] == [4]


class _OnlySeededIndex(pickle.Unpickler):
    """A data loader worker's unpickling, admitting no other class."""

    def find_class(self, module, name):
        assert (module, name) == (SeededIndex.__module__, 'SeededIndex')
        return SeededIndex


def test_index_survives_pickling():
    data = pickle.dumps(SeededIndex(7, 2**62))
    idx = _OnlySeededIndex(io.BytesIO(data)).load()
    assert (type(idx), idx, idx.batch_seed) == (SeededIndex, 7, 2**62)
    assert [10, 11, 12][SeededIndex(1, 0)] == 11
