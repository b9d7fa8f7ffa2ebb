"""The official Cityscapes instance results format, read and written.

A results folder holds, per image, ``<city>_<seq>_<frame>*.txt`` with one
line per predicted instance, ``relative/mask.png labelID confidence``, and
the binary mask PNGs it names (what the benchmark server takes, zipped).
"""
import os
import os.path as osp
import zipfile
from glob import glob
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..classes import INSTANCE_IDS_SUFFIX
from ..errors import CitymaskError
from ..fileio import atomic_path
from .crops import CropMask, decode_crop

def frame_key(path: str) -> str:
    """``city_seq_frame`` of a Cityscapes file name."""
    parts = osp.basename(path).split('_')
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
            f'no *{INSTANCE_IDS_SUFFIX} under {gt_dir} (e.g. data/cityscapes/gtFine/val'
            '; the test split has no public ground truth)')
    return files


def read_prediction_txt(path: str) -> Tuple[List[int], List[float],
                                            List[str]]:
    """Parse one prediction file as the official script does: later lines
    naming the same mask replace earlier ones, keeping the first position.
    """
    entries: Dict[str, Tuple[int, float]] = {}
    root = osp.dirname(osp.abspath(path))
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip('\n').split(' ')
            if len(parts) != 3:
                raise CitymaskError(
                    f'{path}:{n}: expected "relative/mask.png labelID '
                    f'confidence", got {line.strip()!r}')
            if osp.isabs(parts[0]):
                raise CitymaskError(
                    f'{path}:{n}: mask paths must be relative to the file')
            mask = osp.abspath(osp.join(root, parts[0]))
            try:
                entries[mask] = (int(float(parts[1])), float(parts[2]))
            except ValueError:
                raise CitymaskError(
                    f'{path}:{n}: label id and confidence must be numbers'
                ) from None
    masks = list(entries)
    return ([entries[m][0] for m in masks], [entries[m][1] for m in masks],
            masks)


def read_results(gt_files: Sequence[str],
                 results_dir: str) -> Tuple[List[tuple], List[str]]:
    """Evaluation tasks for :func:`evaluate` from a results folder.

    Returns:
        ``(tasks, missing)``: one task per ground-truth file, and the
        frames that had no prediction file (evaluated as no predictions).
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
            tasks.append((gt, [], [], []))
            continue
        label_ids, scores, masks = read_prediction_txt(found[0])
        tasks.append((gt, label_ids, scores, masks))
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
    for i, (label_id, score, mask) in enumerate(
            zip(label_ids, scores, masks)):
        full = np.zeros((h, w), np.uint8)
        if mask is not None:
            x0, y0, crop = decode_crop(mask)
            full[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop * 255
        png = f'{base}_{i}_{class_names[int(label_id)]}.png'
        cv2.imwrite(osp.join(out_dir, png), full)
        lines.append(f'{png} {int(label_id)} {float(score)}\n')
    with open(txt, 'w') as f:
        f.writelines(lines)
    return txt


def zip_results(folder: str) -> str:
    """``folder.zip`` with the folder's files at its top level, ready for
    the Cityscapes benchmark server."""
    path = folder.rstrip('/') + '.zip'
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(os.listdir(folder)):
                zf.write(osp.join(folder, name), name)
    return path
