"""Row / block / channel surgery (citymask.surgery.heads)."""
import pytest
import torch

from citymask.errors import CheckpointError
from citymask.surgery import coco_to_cityscapes
from ..conftest import shared_rows

SHARED = shared_rows()
RIDER = 1


def coco_heads(seed=0, agnostic=False):
    g = torch.Generator().manual_seed(seed)
    return {
        'roi_head.bbox_head.fc_cls.weight': torch.randn(81, 1024, generator=g),
        'roi_head.bbox_head.fc_cls.bias': torch.randn(81, generator=g),
        'roi_head.bbox_head.fc_reg.weight': torch.randn(
            4 if agnostic else 320, 1024, generator=g),
        'roi_head.bbox_head.fc_reg.bias': torch.randn(
            4 if agnostic else 320, generator=g),
        'roi_head.mask_head.conv_logits.weight': torch.randn(
            80, 256, 1, 1, generator=g),
        'roi_head.mask_head.conv_logits.bias': torch.randn(80, generator=g),
        'backbone.conv1.weight': torch.randn(64, 3, 7, 7, generator=g),
    }


def test_shared_rows_blocks_channels_copied_exactly():
    old = coco_heads()
    new, changed = coco_to_cityscapes(old)
    assert changed
    cls_w, cls_b = (new['roi_head.bbox_head.fc_cls.weight'],
                    new['roi_head.bbox_head.fc_cls.bias'])
    reg_w, reg_b = (new['roi_head.bbox_head.fc_reg.weight'],
                    new['roi_head.bbox_head.fc_reg.bias'])
    mask_w = new['roi_head.mask_head.conv_logits.weight']
    assert cls_w.shape == (9, 1024) and reg_w.shape == (32, 1024)
    assert mask_w.shape == (8, 256, 1, 1)
    for c, s in SHARED:
        assert torch.equal(cls_w[c],
                           old['roi_head.bbox_head.fc_cls.weight'][s])
        assert cls_b[c] == old['roi_head.bbox_head.fc_cls.bias'][s]
        # a whole (dx, dy, dw, dh) block per class
        assert torch.equal(reg_w[4 * c:4 * c + 4],
                           old['roi_head.bbox_head.fc_reg.weight'][4 * s:4 *
                                                                   s + 4])
        assert torch.equal(reg_b[4 * c:4 * c + 4],
                           old['roi_head.bbox_head.fc_reg.bias'][4 * s:4 * s +
                                                                 4])
        assert torch.equal(mask_w[c],
                           old['roi_head.mask_head.conv_logits.weight'][s])
    # background: COCO's last row becomes Cityscapes' last row
    assert torch.equal(cls_w[8], old['roi_head.bbox_head.fc_cls.weight'][80])
    # untouched elsewhere
    assert new['backbone.conv1.weight'] is old['backbone.conv1.weight']


def test_seed_single_row_bug_would_be_caught():
    # The seed indexed single rows of bbox_pred (rows s, not block 4s..4s+3).
    old = coco_heads()
    new, _ = coco_to_cityscapes(old)
    reg = old['roi_head.bbox_head.fc_reg.weight']
    buggy = torch.stack([reg[s] for _, s in SHARED])
    right = torch.stack([new['roi_head.bbox_head.fc_reg.weight'][4 * c]
                         for c, _ in SHARED])
    assert not torch.equal(buggy, right)


def test_rider_random_init_statistics():
    new, _ = coco_to_cityscapes(coco_heads(), rider_init='random')
    cls = new['roi_head.bbox_head.fc_cls.weight'][RIDER]
    reg = new['roi_head.bbox_head.fc_reg.weight'][4:8]
    mask = new['roi_head.mask_head.conv_logits.weight'][RIDER]
    assert abs(cls.std().item() - 0.01) < 0.002
    assert abs(reg.std().item() - 0.001) < 0.0002
    assert abs(mask.std().item() - 0.5) < 0.1  # kaiming fan_out = 8 * 1 * 1
    for name in ('fc_cls.bias', 'fc_reg.bias'):
        b = new['roi_head.bbox_head.' + name]
        rows = b[RIDER] if name == 'fc_cls.bias' else b[4:8]
        assert torch.all(rows == 0)
    assert new['roi_head.mask_head.conv_logits.bias'][RIDER] == 0
    # reproducible
    again, _ = coco_to_cityscapes(coco_heads(), rider_init='random')
    assert torch.equal(again['roi_head.bbox_head.fc_cls.weight'],
                       new['roi_head.bbox_head.fc_cls.weight'])


def test_rider_person_copies_person():
    old = coco_heads()
    new, _ = coco_to_cityscapes(old, rider_init='person')
    for key, block in (('roi_head.bbox_head.fc_cls.weight', 1),
                       ('roi_head.bbox_head.fc_reg.weight', 4),
                       ('roi_head.mask_head.conv_logits.weight', 1)):
        assert torch.equal(new[key][RIDER * block:(RIDER + 1) * block],
                           old[key][0:block])


def test_class_agnostic_regression_passes_through():
    old = coco_heads(agnostic=True)
    new, _ = coco_to_cityscapes(old)
    assert torch.equal(new['roi_head.bbox_head.fc_reg.weight'],
                       old['roi_head.bbox_head.fc_reg.weight'])


def test_idempotent():
    once, _ = coco_to_cityscapes(coco_heads())
    twice, changed = coco_to_cityscapes(once)
    assert not changed
    assert all(torch.equal(once[k], twice[k]) for k in once)


def test_unexpected_class_count():
    voc = coco_heads()
    voc['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(21, 1024)
    with pytest.raises(CheckpointError, match='has 21 rows'):
        coco_to_cityscapes(voc)
