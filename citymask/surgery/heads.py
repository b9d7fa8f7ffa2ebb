"""COCO (80 classes) to Cityscapes (8 classes) box and mask predictors: the
shared classes' rows are kept (the paper; mmdet and detectron2 drop them),
``fc_reg`` as 4-row blocks (class-agnostic passes), the background row too;
rider, not in COCO: fresh init or a copy of person's."""
import math
from typing import Dict, List, Optional, Tuple

import torch
from terminaltables import AsciiTable

from ..classes import CITYSCAPES_COCO_TABLE, COCO_CLASSES, COCO_INDEX
from ..errors import CheckpointError
from . import RIDER_INITS

FC_CLS = 'roi_head.bbox_head.fc_cls'
FC_REG = 'roi_head.bbox_head.fc_reg'
MASK_LOGITS = 'roi_head.mask_head.conv_logits'
NUM_COCO = len(COCO_CLASSES)
NUM_CITYSCAPES = len(CITYSCAPES_COCO_TABLE)


def num_classes(state: Dict[str, torch.Tensor]) -> int:
    """Foreground classes of a state dict's box classifier."""
    for key in (FC_CLS + '.weight', MASK_LOGITS + '.weight'):
        if key not in state:
            raise CheckpointError(
                f'{key} is missing: not a Mask R-CNN checkpoint in mmdet '
                'layout')
    return state[FC_CLS + '.weight'].shape[0] - 1


def _sources(rider_init: str) -> List[Optional[int]]:
    """COCO row feeding each Cityscapes class; None = fresh init."""
    if rider_init not in RIDER_INITS:
        raise CheckpointError(
            f'unknown rider init {rider_init!r}; use one of {RIDER_INITS}')
    person = COCO_CLASSES.index('person')
    return [coco if coco is not None else
            (person if rider_init == 'person' else None)
            for coco in COCO_INDEX]


def mapping_table(rider_init: str = 'random') -> str:
    """The class mapping as a printable table."""
    rows = [['Cityscapes class', 'label id', 'from COCO']]
    for (name, label_id, coco), src in zip(CITYSCAPES_COCO_TABLE,
                                           _sources(rider_init)):
        rows.append([name, str(label_id), f'{coco} (class {src})' if coco
                     else f'copy of person (class {src})' if src is not None
                     else 'new: random init'])
    rows.append(['background', '-', 'background'])
    return AsciiTable(rows).table


def _new_rows(shape: Tuple[int, ...], kind: str,
              generator: torch.Generator) -> torch.Tensor:
    """A new class's rows as mmdet initialises new heads: normal, std 0.01
    (cls) / 0.001 (reg), kaiming normal (fan_out) for the mask, zero bias.
    """
    if kind == 'bias':
        return torch.zeros(shape)
    std = {'cls': 0.01, 'reg': 0.001}.get(kind) or math.sqrt(2.0) / math.sqrt(
        NUM_CITYSCAPES * math.prod(shape[2:]))
    return torch.randn(shape, generator=generator) * std


def _select(tensor: torch.Tensor, sources: List[Optional[int]], block: int,
            kind: str, generator: torch.Generator) -> List[torch.Tensor]:
    """Rows ``[src*block, (src+1)*block)`` of ``tensor`` per class."""
    return [tensor[src * block:(src + 1) * block].clone() if src is not None
            else _new_rows((block, *tensor.shape[1:]), kind,
                           generator).to(tensor.dtype) for src in sources]


def coco_to_cityscapes(state: Dict[str, torch.Tensor],
                       rider_init: str = 'random',
                       seed: int = 0) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Turn an mmdet-layout state's COCO box/mask predictors into
    Cityscapes ones; ``rider_init``: ``random`` (mmdet's new-head init,
    ``seed``ed) or ``person``. Returns ``(new_state, changed)``; not
    changed: already Cityscapes heads, returned as is."""
    sources = _sources(rider_init)  # checks rider_init first
    n = num_classes(state)
    if n == NUM_CITYSCAPES:
        return state, False
    if n != NUM_COCO:
        raise CheckpointError(
            f'{FC_CLS}.weight has {n + 1} rows ({n} classes + background); '
            f'expected {NUM_COCO + 1} (COCO) or {NUM_CITYSCAPES + 1} '
            '(Cityscapes)')
    gen = torch.Generator().manual_seed(seed)
    new = dict(state)
    for param in ('weight', 'bias'):
        kind = 'bias' if param == 'bias' else None
        cls = state[f'{FC_CLS}.{param}']
        new[f'{FC_CLS}.{param}'] = torch.cat(
            _select(cls, sources, 1, kind or 'cls', gen) + [cls[NUM_COCO:]])
        reg = state[f'{FC_REG}.{param}']
        if reg.shape[0] == 4 * NUM_COCO:  # class-specific: 4-row blocks
            new[f'{FC_REG}.{param}'] = torch.cat(
                _select(reg, sources, 4, kind or 'reg', gen))
        elif reg.shape[0] != 4:
            raise CheckpointError(
                f'{FC_REG}.{param} has {reg.shape[0]} rows; expected '
                f'{4 * NUM_COCO} (class-specific) or 4 (class-agnostic)')
        mask = state[f'{MASK_LOGITS}.{param}']
        if mask.shape[0] != NUM_COCO:
            raise CheckpointError(
                f'{MASK_LOGITS}.{param} has {mask.shape[0]} channels; '
                f'expected {NUM_COCO}')
        new[f'{MASK_LOGITS}.{param}'] = torch.cat(
            _select(mask, sources, 1, kind or 'mask', gen))
    return new, True
