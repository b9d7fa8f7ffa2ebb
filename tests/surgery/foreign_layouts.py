"""Stand-ins for maskrcnn-benchmark's and detectron2's COCO Mask R-CNN
R-50-FPN checkpoints (the real files' names and shapes, ``tests/fixtures``;
random values), and the check that converted heads hold the source rows."""
import json
import os.path as osp

import torch

from ..conftest import shared_rows

CLS, REG, MASK = ('roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
                  'roi_head.mask_head.conv_logits')
FIXTURES = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                    'fixtures')


def random_state(name: str, seed: int = 0, numpy: bool = False):
    """The keys and shapes of ``FIXTURES/name``, distinct random values per
    tensor (so misplaced copies show)."""
    with open(osp.join(FIXTURES, name)) as f:
        shapes = json.load(f)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g).numpy() if numpy else
            torch.randn(shape, generator=g) for k, shape in shapes.items()}


def maskrcnn_benchmark_checkpoint(seed=0):
    """As the released file (keys with its ``module.`` prefix): model +
    optimizer/scheduler/iteration."""
    return dict(model=random_state('maskrcnn_benchmark_R50FPN_keys.json',
                                   seed), optimizer={}, scheduler={},
                iteration=90000)


def detectron2_pkl(seed=0):
    """As the model zoo .pkl: numpy arrays under 'model'."""
    return dict(model=random_state('detectron2_R50FPN_keys.json', seed,
                                   numpy=True),
                __author__='Detectron2 Model Zoo')


def assert_heads_from(state, cls, reg, mask, first=0, param='weight'):
    """The converted heads' ``param`` holds the shared classes' source rows
    (``cls``, ``reg``, ``mask``; by :func:`shared_rows`) and the background
    row. COCO class s is source row s + ``first`` (maskrcnn-benchmark: 1)."""
    for c, s in shared_rows():
        s += first
        assert torch.equal(state[f'{CLS}.{param}'][c], torch.as_tensor(cls[s]))
        # a whole (dx, dy, dw, dh) block per class
        assert torch.equal(state[f'{REG}.{param}'][4 * c:4 * c + 4],
                           torch.as_tensor(reg[4 * s:4 * s + 4]))
        assert torch.equal(state[f'{MASK}.{param}'][c],
                           torch.as_tensor(mask[s]))
    assert torch.equal(state[f'{CLS}.{param}'][8],
                       torch.as_tensor(cls[0 if first else 80]))
