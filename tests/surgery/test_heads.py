"""Row / block / channel surgery (citymask.surgery.heads)."""
import pytest
import torch

from citymask.errors import CheckpointError
from citymask.surgery import coco_to_cityscapes
from .foreign_layouts import CLS, MASK, REG, assert_heads_from

RIDER = 1


def coco_heads(seed=0, agnostic=False):
    g, reg = torch.Generator().manual_seed(seed), 4 if agnostic else 320
    shapes = {CLS + '.weight': (81, 1024), CLS + '.bias': (81, ),
              REG + '.weight': (reg, 1024), REG + '.bias': (reg, ),
              MASK + '.weight': (80, 256, 1, 1), MASK + '.bias': (80, ),
              'backbone.conv1.weight': (64, 3, 7, 7)}
    return {k: torch.randn(v, generator=g) for k, v in shapes.items()}


def test_shared_rows_blocks_channels_copied_exactly():
    old = coco_heads()
    new, changed = coco_to_cityscapes(old)
    assert changed
    assert new[CLS + '.weight'].shape == (9, 1024)
    assert new[REG + '.weight'].shape == (32, 1024)
    assert new[MASK + '.weight'].shape == (8, 256, 1, 1)
    for param in ('weight', 'bias'):
        assert_heads_from(new, *(old[f'{k}.{param}'] for k in
                                 (CLS, REG, MASK)), param=param)
    # untouched elsewhere
    assert new['backbone.conv1.weight'] is old['backbone.conv1.weight']
    # idempotent
    twice, changed = coco_to_cityscapes(new)
    assert not changed
    assert all(torch.equal(new[k], twice[k]) for k in new)


def test_rider_random_init_statistics_seed_and_mask_fan_out():
    old = coco_heads()
    new, _ = coco_to_cityscapes(old, rider_init='random')
    assert abs(new[CLS + '.weight'][RIDER].std().item() - 0.01) < 0.002
    assert abs(new[REG + '.weight'][4:8].std().item() - 0.001) < 0.0002
    assert torch.all(new[CLS + '.bias'][RIDER] == 0)
    assert torch.all(new[REG + '.bias'][4:8] == 0)
    assert new[MASK + '.bias'][RIDER] == 0
    # reproducible: seeded, the global RNG plays no part
    torch.manual_seed(1)
    first, _ = coco_to_cityscapes(old)
    torch.manual_seed(2)
    again, _ = coco_to_cityscapes(old, seed=0)  # 0: the default seed
    other, _ = coco_to_cityscapes(old, seed=1)
    for key in first:
        assert torch.equal(first[key], again[key]), key
    for key in (CLS, REG, MASK):
        assert not torch.equal(first[key + '.weight'],
                               other[key + '.weight']), key
    # mmdet's FCNMaskHead: kaiming_normal_(mode='fan_out', relu) over the
    # new 8-class layer; torch computes the fan-out of a 3x3 kernel here
    old[MASK + '.weight'] = torch.randn(80, 256, 3, 3)
    rider = coco_to_cityscapes(old)[0][MASK + '.weight'][RIDER]
    _, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(
        torch.empty(8, 256, 3, 3))
    std = torch.nn.init.calculate_gain('relu') / fan_out**0.5
    assert abs(rider.std().item() - std) < 0.1 * std


def test_rider_person_copies_person():
    old = coco_heads()
    new, _ = coco_to_cityscapes(old, rider_init='person')
    for key, block in ((CLS, 1), (REG, 4), (MASK, 1)):
        for param in ('.weight', '.bias'):
            assert torch.equal(new[key + param][RIDER * block:
                                                (RIDER + 1) * block],
                               old[key + param][0:block])


def test_class_agnostic_regression_and_half_precision_pass_through():
    old = coco_heads(agnostic=True)
    new, _ = coco_to_cityscapes(old)
    assert torch.equal(new[REG + '.weight'], old[REG + '.weight'])
    old = {k: v.half() for k, v in coco_heads().items()}
    assert {k: v.dtype for k, v in coco_to_cityscapes(old)[0].items()} == {
        k: torch.float16 for k in old}


@pytest.mark.parametrize('key,shape,message', [
    ('roi_head.bbox_head.fc_cls.weight', (21, 1024),  # VOC
     'roi_head.bbox_head.fc_cls.weight has 21 rows (20 classes + '
     'background); expected 81 (COCO) or 9 (Cityscapes)'),
    ('roi_head.bbox_head.fc_reg.weight', (300, 1024),
     'roi_head.bbox_head.fc_reg.weight has 300 rows; expected 320 '
     '(class-specific) or 4 (class-agnostic)'),
    ('roi_head.mask_head.conv_logits.weight', (79, 256, 1, 1),
     'roi_head.mask_head.conv_logits.weight has 79 channels; expected 80'),
])
def test_mismatched_heads_are_named(key, shape, message):
    state = coco_heads()
    state[key] = torch.zeros(shape)
    with pytest.raises(CheckpointError) as e:
        coco_to_cityscapes(state)
    assert str(e.value) == message


def test_not_mask_rcnn_and_unknown_rider_init():
    for key in (CLS + '.weight', MASK + '.weight'):
        state = coco_heads()
        del state[key]
        with pytest.raises(CheckpointError) as e:
            coco_to_cityscapes(state)
        assert str(e.value) == (f'{key} is missing: not a Mask R-CNN '
                                'checkpoint in mmdet layout')
    from citymask.surgery import mapping_table
    for call in (lambda: coco_to_cityscapes(coco_heads(), rider_init='car'),
                 lambda: mapping_table('car')):
        with pytest.raises(CheckpointError) as e:
            call()
        assert str(e.value) == ("unknown rider init 'car'; use one of "
                                "('random', 'person')")


@pytest.mark.parametrize('rider_init', ['random', 'person'])
def test_mapping_table_rows(rider_init):
    from cityscapesscripts.helpers.labels import name2label
    from mmdet.datasets import CityscapesDataset, CocoDataset

    from citymask.surgery import mapping_table
    coco = CocoDataset.METAINFO['classes']
    expected = [['Cityscapes class', 'label id', 'from COCO']]
    for name in CityscapesDataset.METAINFO['classes']:
        if name in coco:
            source = f'{name} (class {coco.index(name)})'
        elif rider_init == 'person':
            source = f'copy of person (class {coco.index("person")})'
        else:
            source = 'new: random init'
        expected.append([name, str(name2label[name].id), source])
    expected.append(['background', '-', 'background'])
    rows = [[cell.strip() for cell in line.strip('|').split('|')]
            for line in mapping_table(rider_init).splitlines()
            if line.startswith('|')]
    assert rows == expected
    if rider_init == 'random':  # the default
        assert mapping_table() == mapping_table(rider_init)
