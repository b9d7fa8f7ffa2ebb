"""Foreign checkpoint layouts -> mmdet (citymask.surgery.layouts)."""
import pytest
import torch

from citymask.errors import CheckpointError
from citymask.surgery import convert_checkpoint
from ..conftest import build_model
from .foreign_layouts import (CLS, assert_heads_from, detectron2_pkl,
                              maskrcnn_benchmark_checkpoint)

MBM_CFG = 'maskrcnn_r50_caffe_fpn_cityscapes_ft_maskrcnn_benchmark.py'
D2_CFG = 'maskrcnn_r50_caffe_fpn_cityscapes_ft_detectron2.py'


def _check_body(src, out, spot):
    """Every non-predictor tensor lands once, unchanged; ``spot`` where it
    must (shape alone would not tell; strict loading checks the rest)."""
    heads = ('cls_score', 'bbox_pred', 'mask_fcn_logits', 'predictor.w',
             'predictor.b')
    assert spot.keys() <= src.keys()
    for k, v in src.items():
        if 'anchors' in k or any(h in k for h in heads) and 'rpn' not in k:
            continue
        hits = [n for n, t in out.items() if t.shape == v.shape and
                torch.equal(t, torch.as_tensor(v))]
        assert len(hits) == 1 and hits[0] == spot.get(k, hits[0]), (k, hits)


def test_maskrcnn_benchmark_full_conversion():
    ckpt = maskrcnn_benchmark_checkpoint()
    src = ckpt['model']
    out, info = convert_checkpoint(ckpt, rider_init='person')
    assert info == dict(format='maskrcnn-benchmark', changed=True)
    state = out['state_dict']
    _check_body(src, state, {
        'module.backbone.body.stem.conv1.weight': 'backbone.conv1.weight',
        'module.backbone.body.layer3.5.conv2.weight':
        'backbone.layer3.5.conv2.weight',
        'module.backbone.body.layer4.2.bn3.running_var':
        'backbone.layer4.2.bn3.running_var',
        'module.backbone.fpn.fpn_inner1.weight':
        'neck.lateral_convs.0.conv.weight',
        'module.backbone.fpn.fpn_layer4.bias': 'neck.fpn_convs.3.conv.bias',
        'module.rpn.head.cls_logits.weight': 'rpn_head.rpn_cls.weight',
        'module.roi_heads.box.feature_extractor.fc7.bias':
        'roi_head.bbox_head.shared_fcs.1.bias',
        'module.roi_heads.mask.feature_extractor.mask_fcn4.weight':
        'roi_head.mask_head.convs.3.conv.weight',
        'module.roi_heads.mask.predictor.conv5_mask.weight':
        'roi_head.mask_head.upsample.weight',
    })
    # background first -> last; COCO class s is row s + 1 there
    for param in ('weight', 'bias'):
        assert_heads_from(state, *(src[f'module.roi_heads.{k}.{param}'] for k
                                   in ('box.predictor.cls_score',
                                       'box.predictor.bbox_pred',
                                       'mask.predictor.mask_fcn_logits')),
                          first=1, param=param)
    # rider = person (COCO 0 = row 1 there)
    person = src['module.roi_heads.box.predictor.cls_score.weight'][1]
    assert torch.equal(state[CLS + '.weight'][1], person)
    # no missing, unexpected or misshapen key
    build_model(MBM_CFG).load_state_dict(state, strict=True)


def test_detectron2_full_conversion():
    ckpt = detectron2_pkl()
    src = ckpt['model']
    out, info = convert_checkpoint(ckpt)
    assert info['format'] == 'detectron2'
    state = out['state_dict']
    _check_body(src, state, {
        'backbone.bottom_up.stem.conv1.norm.bias': 'backbone.bn1.bias',
        'backbone.bottom_up.res2.0.shortcut.weight':
        'backbone.layer1.0.downsample.0.weight',
        'backbone.bottom_up.res2.0.shortcut.norm.running_var':
        'backbone.layer1.0.downsample.1.running_var',
        'backbone.bottom_up.res4.5.conv2.norm.weight':
        'backbone.layer3.5.bn2.weight',
        'backbone.bottom_up.res5.2.conv3.weight':
        'backbone.layer4.2.conv3.weight',
        'backbone.fpn_lateral2.weight': 'neck.lateral_convs.0.conv.weight',
        'backbone.fpn_output5.bias': 'neck.fpn_convs.3.conv.bias',
        'proposal_generator.rpn_head.anchor_deltas.weight':
        'rpn_head.rpn_reg.weight',
        'roi_heads.box_head.fc2.weight':
        'roi_head.bbox_head.shared_fcs.1.weight',
        'roi_heads.mask_head.mask_fcn1.bias':
        'roi_head.mask_head.convs.0.conv.bias',
        'roi_heads.mask_head.deconv.weight':
        'roi_head.mask_head.upsample.weight',
    })
    assert_heads_from(state, *(src[f'roi_heads.{k}.weight'] for k in (
        'box_predictor.cls_score', 'box_predictor.bbox_pred',
        'mask_head.predictor')))
    build_model(D2_CFG).load_state_dict(state, strict=True)


def test_not_mask_rcnn():
    faster = maskrcnn_benchmark_checkpoint()
    faster['model'] = {k: v for k, v in faster['model'].items()
                       if '.mask.' not in k}
    with pytest.raises(CheckpointError, match='conv_logits.weight is missing'):
        convert_checkpoint(faster)
    with pytest.raises(CheckpointError, match='not a Mask R-CNN checkpoint'):
        convert_checkpoint({'state_dict': {'fc.weight': torch.zeros(2, 2)}})
