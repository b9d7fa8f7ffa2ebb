from .seeded_batch_sampler import SeededBatchSampler, SeededIndex

__all__ = ['SeededBatchSampler', 'SeededIndex']
