"""FiniteLossHook: a non-finite loss stops training with one line naming
the iteration and the loss terms, blaming the data, not the lr, when the
batch's boxes no longer fit its images."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from citymask.errors import CitymaskError
from citymask.hooks import FiniteLossHook


def _run(box=None, **losses):
    boxes = [[10, 10, 50, 60]] + ([box] if box else [])
    sample = DetDataSample(metainfo=dict(img_shape=(512, 1024),
                                         img_path='a/b_leftImg8bit.png'))
    sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes).float(),
                                       labels=torch.zeros(len(boxes)).long())
    FiniteLossHook().after_train_iter(
        SimpleNamespace(iter=6), 0, dict(data_samples=[sample]),
        {k: torch.tensor(float(v)) for k, v in losses.items()})


def test_nan_loss_names_iteration_and_terms():
    _run(loss=1.5, loss_cls=1.0)  # finite: passes
    with pytest.raises(CitymaskError) as e:
        _run(loss='nan', loss_cls='nan', loss_bbox=0.25)
    assert str(e.value).startswith(
        'loss is nan at iteration 7 (loss_cls=nan, loss_bbox=0.25); '
        'training stopped. Lower the lr')


@pytest.mark.parametrize('box', [
    [1024, 100, 1024, 200],  # collapsed on the right border (clipped)
    [100, 512, 300, 512],  # on the bottom border
    [2000, 100, 2100, 200],  # wholly right of the image
    [50, 50, 50, 80],  # no width
])
def test_boxes_off_the_image_blame_the_data(box):
    with pytest.raises(CitymaskError) as e:
        _run(box, loss='inf', loss_mask='inf')
    msg = str(e.value)
    assert ('1 of 2 ground-truth boxes of a/b_leftImg8bit.png lie outside '
            'its 1024x512 image or have no area') in msg
    assert 'no longer match their annotations' in msg
    assert 'lr' not in msg
