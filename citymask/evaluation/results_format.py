"""The official Cityscapes instance results format, read and written.

A results folder holds, per image, ``<city>_<seq>_<frame>*.txt`` with one
line per predicted instance, ``relative/mask.png labelID confidence``, and
the binary mask PNGs it names (what the benchmark server takes, zipped).
Results are read as untrusted input (:mod:`.untrusted`).
"""
import io
import math
import os
import os.path as osp
from collections import Counter
from glob import glob
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..classes import INSTANCE_IDS_SUFFIX, LABEL_IDS
from ..errors import CitymaskError
from ..fileio import atomic_path, write_bytes_atomic
from .crops import CropMask, FrameTask, decode_crop
from .mask_png import read_mask_crop
from .untrusted import (MAX_LINE_BYTES, MAX_PRED_BYTES, excerpt, inside,
                        read_regular)


def frame_key(path: str) -> str:
    """``city_seq_frame`` of a Cityscapes file name (``city_seq_frame.txt``
    too: the official script takes any ``city_seq_frame*.txt``)."""
    parts = osp.splitext(osp.basename(path))[0].split('_')
    if len(parts) < 3:
        raise CitymaskError(f'{path} is not named like a Cityscapes file '
                            '(CITY_SEQUENCE_FRAME_...)')
    return '_'.join(parts[:3])


def find_gt_files(gt_dir: str) -> List[str]:
    """Every ``*_gtFine_instanceIds.png`` under ``gt_dir``, sorted."""
    if not osp.isdir(gt_dir):
        raise CitymaskError(f'ground-truth folder {gt_dir} does not exist')
    files = sorted(glob(osp.join(gt_dir, '**', '*' + INSTANCE_IDS_SUFFIX),
                        recursive=True))
    if not files:
        raise CitymaskError(
            f'no *{INSTANCE_IDS_SUFFIX} under {gt_dir} (e.g. '
            'data/cityscapes/gtFine/val; the test split has no public '
            'ground truth)')
    return files


def pred_lines(data: bytes, path: str) -> List[str]:
    """The lines of a prediction file as the official script iterates
    them (universal newlines)."""
    try:
        return list(io.StringIO(data.decode('utf-8'), newline=None))
    except UnicodeDecodeError:
        raise CitymaskError(f'{path}: not a text file (not UTF-8)') from None


def parse_line(line: str) -> Tuple[str, int, float]:
    """``(relative mask path, label id, confidence)`` of a prediction line,
    split on single spaces as the official ``readPredInfo`` does;
    CitymaskError says why a line is refused (without file and line)."""
    if len(line) > MAX_LINE_BYTES:
        raise CitymaskError(f'a line of {len(line)} characters, more than '
                            f'{MAX_LINE_BYTES}: {excerpt(line)}')
    fields = line.rstrip('\n').split(' ')
    if len(fields) != 3:
        raise CitymaskError(
            'expected "relative/mask.png labelID confidence" (3 fields, '
            f'single spaces), got {excerpt(line.strip())}')
    rel, label, conf = fields
    if osp.isabs(rel):
        raise CitymaskError(f'mask path {excerpt(rel)} must be relative to '
                            'the prediction file')
    try:
        label_id, score = float(label), float(conf)
        if not math.isfinite(label_id):
            raise ValueError
    except ValueError:
        raise CitymaskError('label id and confidence must be numbers, got '
                            f'{excerpt(label + " " + conf)}') from None
    if label_id != int(label_id):
        raise CitymaskError(f'label id {excerpt(label)} is not an integer')
    if not 0 <= score <= 1:  # a NaN would rank above every other prediction
        what = 'outside [0, 1]' if math.isfinite(score) else \
            'not a finite number'
        raise CitymaskError(f'confidence {score} is {what}; write a score '
                            'in [0, 1]')
    return rel, int(label_id), score


def read_prediction_txt(path: str, root: Optional[str] = None,
                        max_bytes: int = MAX_PRED_BYTES
                        ) -> Tuple[List[int], List[float], List[str]]:
    """``(label ids, confidences, resolved mask paths)`` of a prediction
    file, parsed as the official script does (a later line naming the same
    mask replaces the earlier one, keeping its position). The file and its
    masks must resolve inside ``root`` (default: the file's folder).
    """
    folder = osp.dirname(osp.abspath(path))
    root = folder if root is None else root
    data = read_regular(inside(root, path), max_bytes)
    entries: Dict[str, Tuple[int, float, str]] = {}
    for n, line in enumerate(pred_lines(data, path), 1):
        if not line.strip():
            continue
        try:
            rel, label_id, score = parse_line(line)
            mask = osp.join(folder, rel)
            entries[osp.abspath(mask)] = (label_id, score, inside(root, mask))
        except CitymaskError as e:
            raise CitymaskError(f'{path}:{n}: {e}') from None
    return tuple(map(list, zip(*entries.values()))) or ([], [], [])


def read_masks(paths: Sequence[str], label_ids: Sequence[int],
               shape: Tuple[int, int]) -> List[Optional[CropMask]]:
    """A frame's predicted mask PNGs as crops, checked against the ground
    truth's ``(height, width)``; as the official script, only masks of
    evaluated labels are read (others: None)."""
    masks = []
    for label_id, path in zip(label_ids, paths):
        if int(label_id) not in LABEL_IDS:
            masks.append(None)
            continue
        size, crop = read_mask_crop(path)
        if size != tuple(shape):
            raise CitymaskError(
                f'{path} is {size[1]}x{size[0]}, its ground truth '
                f'{shape[1]}x{shape[0]}: masks must have the image\'s size')
        masks.append(crop)
    return masks


def label_id_hint(ids: Iterable[int]) -> str:
    """Why label ids outside the 8 classes may be there: train ids or
    class indices in their place (then the mapping to label ids), or ''.
    """
    from cityscapesscripts.helpers.labels import id2label
    ids = set(ids)
    for what, to_label, source in (
            ('train ids', {id2label[i].trainId: i for i in LABEL_IDS},
             "cityscapesscripts' labels, "),
            ('class indices', dict(enumerate(LABEL_IDS)), '')):
        if ids <= set(to_label):
            pairs = ', '.join(f'{k}->{i}' for k, i in sorted(to_label.items()))
            return (f'; they look like {what}: the results format wants '
                    f'label ids ({source}{pairs})')
    return ''


def label_id_report(tasks: Sequence[FrameTask]) -> Optional[str]:
    """A warning saying how many predictions have label ids outside the 8
    classes (the official evaluator ignores them silently), with
    :func:`label_id_hint`; None if there are none. CitymaskError if no
    prediction has one of the 8: the AP would be 0, not for the model.
    """
    counts = Counter(int(i) for t in tasks for i in t.label_ids)
    outside = {i: c for i, c in counts.items() if i not in LABEL_IDS}
    if not outside:
        return None
    n, total = sum(outside.values()), sum(counts.values())
    ids = ', '.join(str(i) for i in sorted(outside)[:8])
    msg = (f'{n} of {total} predictions have label ids outside the 8 '
           f'instance classes {LABEL_IDS} (ids {ids}), which the '
           f'evaluation ignores{label_id_hint(outside)}')
    if n == total:
        raise CitymaskError(msg + '; nothing left to evaluate')
    return msg


def read_results(gt_files: Sequence[str],
                 results_dir: str) -> Tuple[List[FrameTask], List[str]]:
    """``(tasks, missing)`` from a results folder: one task per
    ground-truth file, and those without prediction file (no predictions).
    """
    if not osp.isdir(results_dir):
        raise CitymaskError(f'results folder {results_dir} does not exist')
    txts: Dict[str, List[str]] = {}
    for root, _, files in os.walk(results_dir):
        for name in files:
            if name.endswith('.txt') and name.count('_') >= 2:
                txts.setdefault(frame_key(name), []).append(
                    osp.join(root, name))
    tasks, missing = [], []
    for gt in gt_files:
        found = txts.get(frame_key(gt), [])
        if len(found) > 1:
            raise CitymaskError(
                f'several prediction files for {gt}: {sorted(found)}')
        if not found:
            missing.append(gt)
            tasks.append(FrameTask(gt, [], []))
            continue
        label_ids, scores, paths = read_prediction_txt(found[0], results_dir)
        tasks.append(FrameTask(gt, label_ids, scores, mask_paths=paths))
    return tasks, missing


def write_frame(out_dir: str, img_path: str, image_size: Tuple[int, int],
                label_ids: Sequence[int], scores: Sequence[float],
                masks: Sequence[Optional[CropMask]],
                class_names: Dict[int, str]) -> str:
    """Write one frame's predictions in the official format; returns the
    ``*_pred.txt`` path. Masks are 0/255 PNGs of the full image size."""
    os.makedirs(out_dir, exist_ok=True)
    base = osp.splitext(osp.basename(img_path))[0]
    txt = osp.join(out_dir, base + '_pred.txt')
    h, w = image_size
    lines = []
    for i, (label_id, score, mask) in enumerate(zip(label_ids, scores, masks)):
        full = np.zeros((h, w), np.uint8)
        if mask is not None:
            x0, y0, crop = decode_crop(mask)
            full[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop * 255
        png = f'{base}_{i}_{class_names[int(label_id)]}.png'
        write_bytes_atomic(cv2.imencode('.png', full)[1].tobytes(),
                           osp.join(out_dir, png))
        lines.append(f'{png} {int(label_id)} {float(score)}\n')
    # last: a prediction file exists only once all its masks do
    with atomic_path(txt) as tmp, open(tmp, 'w') as f:
        f.writelines(lines)
    return txt
