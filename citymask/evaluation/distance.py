"""Distance of ground-truth instances, for the distance-aware AP.

The server's AP 100m / 50m count instances of >= 1000 px within 100 / 50 m
with ``distConf >= 0.5``; cityscapesscripts never fills ``medDist`` /
``distConf``. Here: from ``disparity/<split>/<city>/<frame>_disparity.png``
(``p > 0``: ``d = (p - 1) / 256``; 0: none) and ``camera/.../*_camera.json``
(``extrinsic.baseline``, ``intrinsic.fx``), depth ``baseline * fx / d``;
``medDist`` the median over an instance's valid pixels, ``distConf`` their
share (none: the official ``-1``, ``0``). Unofficial: the server differs.
"""
import json
import os.path as osp
from typing import Optional, Sequence, Tuple

import numpy as np

from ..classes import INSTANCE_IDS_SUFFIX
from ..errors import CitymaskError
from .mask_png import read_gt

DISPARITY_SUFFIX = '_disparity.png'
CAMERA_SUFFIX = '_camera.json'
# the official Instance defaults: distance unknown
NO_DISTANCE = (-1.0, 0.0)
UNOFFICIAL_NOTE = (
    'AP 100m / AP 50m (allAp100m, allAp50m, allAp50%50m and the per-class '
    'ap100m, ap50m, ap50%50m) are unofficial: citymask fills the '
    'evaluator\'s medDist / distConf from disparity/ and camera/ (median '
    'depth over an instance\'s pixels with valid disparity), which the '
    'public cityscapesscripts never does; the benchmark server may differ.')


def stereo_paths(gt_path: str,
                 stereo_root: Optional[str] = None) -> Tuple[str, str]:
    """Disparity PNG and camera JSON of ``ROOT/gtFine/<split>/<city>/
    <frame>_gtFine_instanceIds.png`` under ``stereo_root`` (or ``ROOT``)."""
    city_dir = osp.dirname(osp.abspath(gt_path))
    split_dir = osp.dirname(city_dir)
    if stereo_root is None:
        stereo_root = osp.dirname(osp.dirname(split_dir))
    name = osp.basename(gt_path)
    if not name.endswith(INSTANCE_IDS_SUFFIX):
        raise CitymaskError(f'{gt_path}: not a *{INSTANCE_IDS_SUFFIX} file')
    stem = name[:-len(INSTANCE_IDS_SUFFIX)]
    rel = osp.join(osp.basename(split_dir), osp.basename(city_dir))
    return (osp.join(stereo_root, 'disparity', rel, stem + DISPARITY_SUFFIX),
            osp.join(stereo_root, 'camera', rel, stem + CAMERA_SUFFIX))


def check_stereo(gt_paths: Sequence[str],
                 stereo_root: Optional[str] = None) -> None:
    """Fail before any work if a frame's disparity or camera file is
    missing (one line naming the first and how many)."""
    missing = [p for g in gt_paths for p in stereo_paths(g, stereo_root)
               if not osp.isfile(p)]
    if missing:
        more = f' (and {len(missing) - 1} more files)' * (len(missing) > 1)
        raise CitymaskError(_missing(missing[0], more))


def read_camera(path: str) -> Tuple[float, float]:
    """``(baseline, fx)`` of a Cityscapes ``*_camera.json``."""
    try:
        with open(path) as f:
            cam = json.load(f)
        return (float(cam['extrinsic']['baseline']),
                float(cam['intrinsic']['fx']))
    except FileNotFoundError:
        raise CitymaskError(_missing(path)) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CitymaskError(
            f'{path}: not a Cityscapes camera file with extrinsic.baseline '
            f'and intrinsic.fx ({type(e).__name__}: {e})') from None


def read_disparity(path: str, shape: Tuple[int, int]) -> np.ndarray:
    """A 16-bit ``*_disparity.png`` as uint16, checked against the frame's
    ``(height, width)``."""
    if not osp.isfile(path):
        raise CitymaskError(_missing(path))
    try:
        disp = read_gt(path)
    except CitymaskError as e:
        raise CitymaskError(
            f'not a single-channel 16-bit disparity PNG: {e}') from None
    if disp.shape != tuple(shape):
        raise CitymaskError(
            f'{path} is {disp.shape[1]}x{disp.shape[0]}, its ground truth '
            f'{shape[1]}x{shape[0]}')
    return disp


def _missing(path: str, more: str = '') -> str:
    return (f'{path}{more} not found: the distance-aware AP needs '
            'Cityscapes\' disparity/ and camera/ folders '
            '(disparity_trainvaltest.zip, camera_trainvaltest.zip) next to '
            'gtFine/; evaluate without the distance option otherwise')


def instance_distances(codes: np.ndarray, n: int, sizes: np.ndarray,
                       disparity: np.ndarray, baseline: float,
                       fx: float) -> np.ndarray:
    """(n, 2) ``(medDist, distConf)`` of the regions ``0..n-1`` of
    ``codes`` (per pixel; others: none) of ``sizes`` pixels, from the
    16-bit ``disparity`` values, ``baseline`` (m) and ``fx`` (px)."""
    out = np.tile(NO_DISTANCE, (n, 1))  # float64
    if n == 0:
        return out
    sel = (codes < n) & (disparity > 0)
    # one sort of (region, disparity) keys: each region's values contiguous
    keys = np.sort(codes[sel].astype(np.int64) << 16 |
                   disparity[sel].astype(np.int64))
    regions, values = keys >> 16, keys & 0xFFFF
    valid = np.bincount(regions, minlength=n)
    starts = np.concatenate([[0], np.cumsum(valid)[:-1]])
    for g in np.flatnonzero(valid):
        k, s = int(valid[g]), int(starts[g])
        # the middle disparities are the middle depths; two are averaged
        # as np.median does
        mid = values[[s + (k - 1) // 2, s + k // 2]]
        with np.errstate(divide='ignore'):  # p == 1: d == 0, infinitely far
            depth = baseline * fx / ((mid.astype(np.float64) - 1) / 256.)
        out[g, 0] = (depth[0] + depth[1]) / 2 if k % 2 == 0 else depth[0]
        out[g, 1] = k / float(sizes[g])
    return out
