"""Key names and shapes of the COCO Mask R-CNN R-50-FPN checkpoints of
maskrcnn-benchmark (``e2e_mask_rcnn_R_50_FPN_1x.pth``) and detectron2
(``model_final_f10217.pkl``), written from the two projects' model code:
ResNet-50 stage depths (3, 4, 6, 3), bottleneck widths 64..512, FPN on
C2..C5 with 256 channels, 3 anchors per location, 7x7x256 box features,
81 classes with background (first in maskrcnn-benchmark, last in
detectron2), and a 4-conv + deconv mask head.
"""
from typing import Dict, Tuple

import torch

DEPTHS = (3, 4, 6, 3)
WIDTHS = (64, 128, 256, 512)
FPN_IN = (256, 512, 1024, 2048)
Shapes = Dict[str, Tuple[int, ...]]


def _resnet(conv, bn, block, shortcut):
    """Generic R-50 walk; the callbacks name convs, norms, blocks."""
    shapes: Shapes = {}
    in_ch = 64
    for stage, (depth, width) in enumerate(zip(DEPTHS, WIDTHS)):
        out_ch = width * 4
        for b in range(depth):
            prefix = block(stage, b)
            if b == 0:
                shapes[shortcut(prefix, 'conv')] = (out_ch, in_ch, 1, 1)
                for p in ('weight', 'bias', 'running_mean', 'running_var'):
                    shapes[shortcut(prefix, p)] = (out_ch, )
            for k, (o, i, ks) in enumerate(
                    ((width, in_ch if b == 0 else out_ch, 1),
                     (width, width, 3), (out_ch, width, 1)), 1):
                shapes[conv(prefix, k)] = (o, i, ks, ks)
                for p in ('weight', 'bias', 'running_mean', 'running_var'):
                    shapes[bn(prefix, k, p)] = (o, )
        in_ch = out_ch
    return shapes


def maskrcnn_benchmark_shapes() -> Shapes:
    s: Shapes = {'backbone.body.stem.conv1.weight': (64, 3, 7, 7)}
    for p in ('weight', 'bias', 'running_mean', 'running_var'):
        s[f'backbone.body.stem.bn1.{p}'] = (64, )
    s.update(_resnet(
        conv=lambda pre, k: f'{pre}.conv{k}.weight',
        bn=lambda pre, k, p: f'{pre}.bn{k}.{p}',
        block=lambda st, b: f'backbone.body.layer{st + 1}.{b}',
        shortcut=lambda pre, p: (f'{pre}.downsample.0.weight' if p == 'conv'
                                 else f'{pre}.downsample.1.{p}')))
    for i, c in enumerate(FPN_IN, 1):
        s[f'backbone.fpn.fpn_inner{i}.weight'] = (256, c, 1, 1)
        s[f'backbone.fpn.fpn_inner{i}.bias'] = (256, )
        s[f'backbone.fpn.fpn_layer{i}.weight'] = (256, 256, 3, 3)
        s[f'backbone.fpn.fpn_layer{i}.bias'] = (256, )
    for i in range(5):
        s[f'rpn.anchor_generator.cell_anchors.{i}'] = (3, 4)
    s.update({
        'rpn.head.conv.weight': (256, 256, 3, 3),
        'rpn.head.conv.bias': (256, ),
        'rpn.head.cls_logits.weight': (3, 256, 1, 1),
        'rpn.head.cls_logits.bias': (3, ),
        'rpn.head.bbox_pred.weight': (12, 256, 1, 1),
        'rpn.head.bbox_pred.bias': (12, ),
        'roi_heads.box.feature_extractor.fc6.weight': (1024, 256 * 7 * 7),
        'roi_heads.box.feature_extractor.fc6.bias': (1024, ),
        'roi_heads.box.feature_extractor.fc7.weight': (1024, 1024),
        'roi_heads.box.feature_extractor.fc7.bias': (1024, ),
        'roi_heads.box.predictor.cls_score.weight': (81, 1024),
        'roi_heads.box.predictor.cls_score.bias': (81, ),
        'roi_heads.box.predictor.bbox_pred.weight': (81 * 4, 1024),
        'roi_heads.box.predictor.bbox_pred.bias': (81 * 4, ),
    })
    for i in range(1, 5):
        s[f'roi_heads.mask.feature_extractor.mask_fcn{i}.weight'] = (256, 256,
                                                                     3, 3)
        s[f'roi_heads.mask.feature_extractor.mask_fcn{i}.bias'] = (256, )
    s.update({
        'roi_heads.mask.predictor.conv5_mask.weight': (256, 256, 2, 2),
        'roi_heads.mask.predictor.conv5_mask.bias': (256, ),
        'roi_heads.mask.predictor.mask_fcn_logits.weight': (81, 256, 1, 1),
        'roi_heads.mask.predictor.mask_fcn_logits.bias': (81, ),
    })
    return {'module.' + k: v for k, v in s.items()}


def detectron2_shapes() -> Shapes:
    s: Shapes = {}
    for i, c in enumerate(FPN_IN, 2):
        s[f'backbone.fpn_lateral{i}.weight'] = (256, c, 1, 1)
        s[f'backbone.fpn_lateral{i}.bias'] = (256, )
        s[f'backbone.fpn_output{i}.weight'] = (256, 256, 3, 3)
        s[f'backbone.fpn_output{i}.bias'] = (256, )
    s['backbone.bottom_up.stem.conv1.weight'] = (64, 3, 7, 7)
    for p in ('weight', 'bias', 'running_mean', 'running_var'):
        s[f'backbone.bottom_up.stem.conv1.norm.{p}'] = (64, )
    s.update(_resnet(
        conv=lambda pre, k: f'{pre}.conv{k}.weight',
        bn=lambda pre, k, p: f'{pre}.conv{k}.norm.{p}',
        block=lambda st, b: f'backbone.bottom_up.res{st + 2}.{b}',
        shortcut=lambda pre, p: (f'{pre}.shortcut.weight' if p == 'conv'
                                 else f'{pre}.shortcut.norm.{p}')))
    s.update({
        'proposal_generator.rpn_head.conv.weight': (256, 256, 3, 3),
        'proposal_generator.rpn_head.conv.bias': (256, ),
        'proposal_generator.rpn_head.objectness_logits.weight': (3, 256, 1,
                                                                 1),
        'proposal_generator.rpn_head.objectness_logits.bias': (3, ),
        'proposal_generator.rpn_head.anchor_deltas.weight': (12, 256, 1, 1),
        'proposal_generator.rpn_head.anchor_deltas.bias': (12, ),
        'roi_heads.box_head.fc1.weight': (1024, 256 * 7 * 7),
        'roi_heads.box_head.fc1.bias': (1024, ),
        'roi_heads.box_head.fc2.weight': (1024, 1024),
        'roi_heads.box_head.fc2.bias': (1024, ),
        'roi_heads.box_predictor.cls_score.weight': (81, 1024),
        'roi_heads.box_predictor.cls_score.bias': (81, ),
        'roi_heads.box_predictor.bbox_pred.weight': (80 * 4, 1024),
        'roi_heads.box_predictor.bbox_pred.bias': (80 * 4, ),
    })
    for i in range(1, 5):
        s[f'roi_heads.mask_head.mask_fcn{i}.weight'] = (256, 256, 3, 3)
        s[f'roi_heads.mask_head.mask_fcn{i}.bias'] = (256, )
    s.update({
        'roi_heads.mask_head.deconv.weight': (256, 256, 2, 2),
        'roi_heads.mask_head.deconv.bias': (256, ),
        'roi_heads.mask_head.predictor.weight': (80, 256, 1, 1),
        'roi_heads.mask_head.predictor.bias': (80, ),
    })
    return s


def random_state(shapes: Shapes, seed: int = 0, numpy: bool = False):
    """Distinct random values per tensor, so misplaced copies show."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        t = torch.randn(shape, generator=g)
        out[k] = t.numpy() if numpy else t
    return out


def maskrcnn_benchmark_checkpoint(seed=0):
    """As the released file: model + optimizer/scheduler/iteration."""
    return dict(model=random_state(maskrcnn_benchmark_shapes(), seed),
                optimizer={}, scheduler={}, iteration=90000)


def detectron2_pkl(seed=0):
    """As the model zoo .pkl: numpy arrays under 'model'."""
    return dict(model=random_state(detectron2_shapes(), seed, numpy=True),
                __author__='Detectron2 Model Zoo')
