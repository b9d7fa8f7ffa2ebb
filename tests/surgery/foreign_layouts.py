"""Stand-ins for the COCO Mask R-CNN R-50-FPN checkpoints of
maskrcnn-benchmark (``e2e_mask_rcnn_R_50_FPN_1x.pth``) and detectron2
(``model_final_f10217.pkl``): every tensor name and shape of the real files
(``tests/fixtures/*_keys.json``), random values; and the check that
converted heads hold the right source rows.
"""
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
                                   seed),
                optimizer={}, scheduler={}, iteration=90000)


def detectron2_pkl(seed=0):
    """As the model zoo .pkl: numpy arrays under 'model'."""
    return dict(model=random_state('detectron2_R50FPN_keys.json', seed,
                                   numpy=True),
                __author__='Detectron2 Model Zoo')


def assert_heads_from(state, cls, reg, mask, first=0, param='weight'):
    """The converted heads' ``param`` holds the source rows (``cls``,
    ``reg``, ``mask``) of the classes Cityscapes shares with COCO, matched
    by name in mmdet's class lists (an independent reference), and the
    background row. COCO class s is source row s + ``first`` (1:
    maskrcnn-benchmark puts the background first)."""
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
