"""COCO Mask R-CNN R-50-FPN checkpoints of mmdet, maskrcnn-benchmark
(``module.`` prefix, background first) and detectron2 renamed in full onto
mmdet's keys. What stays (fine-tuning absorbs it): Caffe2-style ResNets (the
``-caffe`` configs); maskrcnn-benchmark's BN without epsilon, RoIAlign not
pixel-aligned, +1 box widths, FPN levels a pixel off."""
import re
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch

from ..checkpoint import split_checkpoint, strip_prefix
from ..errors import CheckpointError
from . import FORMATS
from .heads import num_classes

Rule = Tuple[str, Union[str, Callable[[re.Match], str], None]]


def _shift(prefix: str, offset: int, suffix: str = '') -> Callable:
    """Rename with the first group shifted to mmdet's 0-based index."""
    return lambda m: f'{prefix}{int(m[1]) - offset}{suffix}{m[2]}'


def _renamed(modules: Dict[str, str]) -> List[Rule]:
    """Rules renaming whole modules, parameter names kept."""
    return [(rf'^{re.escape(src)}\.(.*)$', rf'{dst}.\1')
            for src, dst in modules.items()]


# (regex on the source key, mmdet key or None to drop). ``(.*)`` keeps the
# parameter name (weight, bias, running_mean, running_var).
MASKRCNN_BENCHMARK_RULES: List[Rule] = [
    (r'^backbone\.body\.stem\.conv1\.(weight)$', r'backbone.conv1.\1'),
    # bottleneck blocks share mmdet's names (conv1..3, bn1..3, downsample)
    (r'^backbone\.body\.(layer\d\.\d+\.(?:conv|bn)\d\..*)$', r'backbone.\1'),
    (r'^backbone\.body\.(layer\d\.\d+\.downsample\.[01]\..*)$',
     r'backbone.\1'),
    (r'^backbone\.fpn\.fpn_inner(\d)(\..*)$',
     _shift('neck.lateral_convs.', 1, '.conv')),
    (r'^backbone\.fpn\.fpn_layer(\d)(\..*)$',
     _shift('neck.fpn_convs.', 1, '.conv')),
    (r'^rpn\.anchor_generator\.cell_anchors\.\d+$', None),
    (r'^roi_heads\.mask\.feature_extractor\.mask_fcn(\d)(\..*)$',
     _shift('roi_head.mask_head.convs.', 1, '.conv')),
] + _renamed({
    'backbone.body.stem.bn1': 'backbone.bn1',
    'rpn.head.conv': 'rpn_head.rpn_conv',
    'rpn.head.cls_logits': 'rpn_head.rpn_cls',
    'rpn.head.bbox_pred': 'rpn_head.rpn_reg',
    'roi_heads.box.feature_extractor.fc6': 'roi_head.bbox_head.shared_fcs.0',
    'roi_heads.box.feature_extractor.fc7': 'roi_head.bbox_head.shared_fcs.1',
    'roi_heads.box.predictor.cls_score': 'roi_head.bbox_head.fc_cls',
    'roi_heads.box.predictor.bbox_pred': 'roi_head.bbox_head.fc_reg',
    'roi_heads.mask.predictor.conv5_mask': 'roi_head.mask_head.upsample',
    'roi_heads.mask.predictor.mask_fcn_logits':
    'roi_head.mask_head.conv_logits',
})

DETECTRON2_RULES: List[Rule] = [
    (r'^backbone\.bottom_up\.stem\.conv1\.weight$', 'backbone.conv1.weight'),
    # detectron2 res2..res5 are mmdet layer1..layer4
    (r'^backbone\.bottom_up\.res(\d)(\.\d+\.conv\d\.weight)$',
     _shift('backbone.layer', 1)),
    (r'^backbone\.bottom_up\.res(\d)(\.\d+)\.conv(\d)\.norm\.(.*)$',
     lambda m: f'backbone.layer{int(m[1]) - 1}{m[2]}.bn{m[3]}.{m[4]}'),
    (r'^backbone\.bottom_up\.res(\d)(\.\d+)\.shortcut\.weight$',
     lambda m: f'backbone.layer{int(m[1]) - 1}{m[2]}.downsample.0.weight'),
    (r'^backbone\.bottom_up\.res(\d)(\.\d+)\.shortcut\.norm\.(.*)$',
     lambda m: f'backbone.layer{int(m[1]) - 1}{m[2]}.downsample.1.{m[3]}'),
    (r'^backbone\.fpn_lateral(\d)(\..*)$',
     _shift('neck.lateral_convs.', 2, '.conv')),
    (r'^backbone\.fpn_output(\d)(\..*)$',
     _shift('neck.fpn_convs.', 2, '.conv')),
    (r'^roi_heads\.box_head\.fc(\d)(\..*)$',
     _shift('roi_head.bbox_head.shared_fcs.', 1)),
    (r'^roi_heads\.mask_head\.mask_fcn(\d)(\..*)$',
     _shift('roi_head.mask_head.convs.', 1, '.conv')),
] + _renamed({
    'backbone.bottom_up.stem.conv1.norm': 'backbone.bn1',
    'proposal_generator.rpn_head.conv': 'rpn_head.rpn_conv',
    'proposal_generator.rpn_head.objectness_logits': 'rpn_head.rpn_cls',
    'proposal_generator.rpn_head.anchor_deltas': 'rpn_head.rpn_reg',
    'roi_heads.box_predictor.cls_score': 'roi_head.bbox_head.fc_cls',
    'roi_heads.box_predictor.bbox_pred': 'roi_head.bbox_head.fc_reg',
    'roi_heads.mask_head.deconv': 'roi_head.mask_head.upsample',
    'roi_heads.mask_head.predictor': 'roi_head.mask_head.conv_logits',
})

# A key each format's Mask R-CNN has, to recognise it.
_MARKERS = {
    'mmdet': 'roi_head.bbox_head.fc_cls.weight',
    'maskrcnn-benchmark': 'roi_heads.box.predictor.cls_score.weight',
    'detectron2': 'roi_heads.box_predictor.cls_score.weight',
}


def detect_format(state: Dict[str, torch.Tensor]) -> str:
    """Which layout a (prefix-stripped) state dict has."""
    for fmt, marker in _MARKERS.items():
        if marker in state:
            return fmt
    raise CheckpointError(
        'not a Mask R-CNN checkpoint: none of the mmdet, maskrcnn-benchmark '
        'or detectron2 box-classifier keys is present')


def _to_tensor(v) -> torch.Tensor:
    try:  # detectron2's .pkl holds numpy arrays
        return torch.as_tensor(v)
    except Exception:
        raise CheckpointError(f'checkpoint value of type {type(v).__name__}'
                              ' is not an array') from None


def rename(state: Dict[str, torch.Tensor], rules: List[Rule],
           fmt: str) -> Dict[str, torch.Tensor]:
    """Rename every key by ``rules``; a key no rule matches is an error."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for pattern, repl in rules:
            m = re.match(pattern, key)
            if m and repl:
                out[repl(m) if callable(repl) else m.expand(repl)] = \
                    _to_tensor(value)
            if m:
                break
        else:
            raise CheckpointError(
                f'unexpected key {key!r} for a {fmt} Mask R-CNN R-50-FPN '
                'checkpoint')
    # mmdet's BatchNorm layers carry a step counter the others don't store
    for key in list(out):
        if key.endswith('.running_var'):
            out.setdefault(key[:-len('running_var')] + 'num_batches_tracked',
                           torch.tensor(0, dtype=torch.long))
    return out


def _background_first_to_last(state: Dict[str, torch.Tensor]) -> None:
    """maskrcnn-benchmark's background is class 0 (also in bbox_pred and
    the mask logits); mmdet's is fc_cls's last row, absent elsewhere."""
    for name in ('weight', 'bias'):
        cls = f'roi_head.bbox_head.fc_cls.{name}'
        state[cls] = torch.cat([state[cls][1:], state[cls][:1]])
        for key, rows in (('bbox_head.fc_reg', 4),
                          ('mask_head.conv_logits', 1)):
            key = f'roi_head.{key}.{name}'
            state[key] = state[key][rows:]


def to_mmdet_layout(ckpt: dict, src_format: Optional[str] = None
                    ) -> Tuple[Dict[str, torch.Tensor], dict, str]:
    """``(state_dict, rest, format)`` of a checkpoint in ``src_format``
    (None: detected); ``rest``: mmdet's non-weight entries (meta, ...)."""
    state, rest = split_checkpoint(ckpt)
    state = strip_prefix(state)
    fmt = src_format or detect_format(state)
    if fmt not in FORMATS:
        raise CheckpointError(f'unknown format {fmt!r}; use one of {FORMATS}')
    if _MARKERS[fmt] not in state:
        raise CheckpointError(
            f'not a {fmt} Mask R-CNN checkpoint: {_MARKERS[fmt]} is missing')
    if fmt == 'mmdet':
        return {k: _to_tensor(v) for k, v in state.items()}, rest, fmt
    out = rename(state, DETECTRON2_RULES if fmt == 'detectron2' else
                 MASKRCNN_BENCHMARK_RULES, fmt)
    num_classes(out)  # box and mask predictors must both be there
    if fmt == 'maskrcnn-benchmark':
        _background_first_to_last(out)
    return out, {}, fmt
