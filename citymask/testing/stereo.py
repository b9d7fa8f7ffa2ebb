"""Stereo files of generated scenes: ``disparity/`` and ``camera/``.

Real Cityscapes frames come with a 16-bit disparity PNG (``p > 0``:
disparity ``(p - 1) / 256`` pixels; ``p == 0``: no measurement) and a
camera JSON (``extrinsic.baseline`` in metres, ``intrinsic.fx`` in pixels,
...). The distance-aware AP needs both, so the mini-Cityscapes generator
writes them with this module.

The geometry is a flat road seen by a level camera ``CAMERA_HEIGHT`` above
it, the horizon at the bottom of the scene's sky: a road or sidewalk pixel
``y`` rows below the horizon is ``CAMERA_HEIGHT * fy / y`` metres away, and
a thing (or pole, sign) stands upright at the depth of the road where its
outline touches it (a rider at the depth of its bicycle). Buildings and
vegetation are facades at a random depth; sky and void regions have no
disparity. Polygons are drawn in the scene's order with PIL, as
cityscapesscripts draws the ground truth, so depth and labels agree pixel
for pixel. Upright things are turned a little (depth changes by up to
``TILT`` across their width), and like a real stereo matcher each region
loses a random share of its measurements (some most of theirs:
``distConf < 0.5``).
"""
import json
import os
import os.path as osp
import zlib
from typing import Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from ..evaluation.distance import stereo_paths

# A Cityscapes camera (2048x1024): baseline in metres, focal lengths in
# pixels, as in the dataset's camera/*.json files (approximate).
BASELINE = 0.209313
FX, FY = 2262.52, 2265.30
CAMERA_HEIGHT = 1.22
GROUND = ('road', 'sidewalk', 'parking', 'rail track', 'ground', 'terrain')
FACADES = ('building', 'vegetation', 'wall', 'fence')
NO_DISPARITY = ('sky', 'ego vehicle', 'rectification border', 'out of roi',
                'unlabeled')
# an upright thing's depth changes by up to this share across its width
TILT = 0.1


def camera(width: int, height: int, horizon: float) -> dict:
    """Camera JSON of a generated frame (the real files' fields), focal
    lengths scaled to the frame's size."""
    return {
        'extrinsic': {'baseline': BASELINE, 'pitch': 0.0, 'roll': 0.0,
                      'x': 1.7, 'y': 0.1, 'yaw': 0.0, 'z': CAMERA_HEIGHT},
        'intrinsic': {'fx': FX * width / 2048., 'fy': FY * height / 1024.,
                      'u0': width / 2., 'v0': float(horizon)},
    }


def _horizon(objs: Sequence[dict], height: int) -> float:
    for obj in objs:
        if obj['label'] == 'sky':
            return float(max(y for _, y in obj['polygon']))
    return 0.45 * height


def render_disparity(objs: Sequence[dict], width: int, height: int,
                     cam: dict, rng: np.random.Generator) -> np.ndarray:
    """The 16-bit disparity PNG values (uint16) of a scene.

    Args:
        objs: The scene's polygon objects, in drawing order.
        width: Frame width.
        height: Frame height.
        cam: Its :func:`camera`.
        rng: Random stream (facade depths, missing measurements, noise).
    """
    horizon = cam['intrinsic']['v0']
    fx, fy = cam['intrinsic']['fx'], cam['intrinsic']['fy']
    baseline = cam['extrinsic']['baseline']
    # per object: 0 no disparity, 1 road-like (depth by row), 2 upright
    # at a depth; index 0 is "nothing drawn"
    kind = np.zeros(len(objs) + 1, np.int8)
    depth = np.ones(len(objs) + 1)
    missing = np.zeros(len(objs) + 1)
    # depth = depth * (1 + tilt * (x - x_center) / width), per object
    tilt = np.zeros(len(objs) + 1)
    center = np.zeros(len(objs) + 1)
    span = np.ones(len(objs) + 1)
    index = Image.new('I', (width, height), 0)
    draw = ImageDraw.Draw(index)
    for k, obj in enumerate(objs, 1):
        draw.polygon([tuple(p) for p in obj['polygon']], fill=k)
        label = obj['label']
        if label in NO_DISPARITY:
            continue
        if label in GROUND:
            kind[k] = 1
        elif label in FACADES:
            kind[k], depth[k] = 2, rng.uniform(30., 150.)
        else:
            kind[k] = 2
            below = max(y for _, y in obj['polygon']) - horizon
            depth[k] = CAMERA_HEIGHT * fy / max(below, 0.5)
            if (label == 'rider' and k > 1 and
                    objs[k - 2]['label'] in ('bicycle', 'motorcycle')):
                depth[k] = depth[k - 1]  # sits on it
            xs = [x for x, _ in obj['polygon']]
            tilt[k] = rng.uniform(-TILT, TILT)
            center[k] = (min(xs) + max(xs)) / 2.
            span[k] = max(max(xs) - min(xs), 1)
        # most regions lose a few measurements, some most of them
        missing[k] = (rng.uniform(0.5, 1.0) if rng.random() < 0.15
                      else rng.uniform(0.0, 0.3))
    idx = np.asarray(index, np.int32)
    kinds = kind[idx]
    rows = np.arange(height, dtype=np.float32)
    below = (rows - np.float32(horizon))[:, None]
    road = CAMERA_HEIGHT * fy / np.maximum(below, 0.5)
    # upright: depth * (1 + tilt * (x - center) / span) = a + b * x
    slope = depth * tilt / span
    x = np.arange(width, dtype=np.float32)[None, :]
    upright = ((depth - slope * center).astype(np.float32)[idx] +
               slope.astype(np.float32)[idx] * x)
    z = np.where(kinds == 1, road, upright)
    valid = (kinds > 0) & ((kinds != 1) | (below > 0.5))
    valid &= (rng.random((height, width), dtype=np.float32) >=
              missing.astype(np.float32)[idx])
    d = np.float32(baseline * fx) / z
    # p = 256 d + 1; p >= 2 keeps every valid pixel at a finite depth
    p = np.clip(np.round(256 * d + 1), 2, 65535)
    return np.where(valid, p, 0).astype(np.uint16)


def write_stereo(gt_path: str, objs: Sequence[dict], width: int,
                 height: int) -> Tuple[str, str]:
    """Write the disparity PNG and camera JSON of a generated frame where
    Cityscapes keeps them (beside ``gtFine/``, see
    :func:`citymask.evaluation.distance.stereo_paths`).

    Args:
        gt_path: The frame's ``*_gtFine_instanceIds.png`` path.
        objs: Its scene (every object, also for the test split).
        width: Frame width.
        height: Frame height.

    Returns:
        ``(disparity_path, camera_path)``.
    """
    # seeded by the scene itself: the generator's random stream is left
    # untouched, so frames stay what they were without stereo files
    text = json.dumps(list(objs), sort_keys=True)
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    cam = camera(width, height, _horizon(objs, height))
    disparity = render_disparity(objs, width, height, cam, rng)
    disparity_path, camera_path = stereo_paths(gt_path)
    for path in (disparity_path, camera_path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(disparity).save(disparity_path, compress_level=1)
    with open(camera_path, 'w') as f:
        json.dump(cam, f, indent=1)
    return disparity_path, camera_path
