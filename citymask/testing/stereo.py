"""Stereo files of generated scenes, as Cityscapes has them: a 16-bit
disparity PNG (``p > 0``: ``(p - 1) / 256`` px; 0: none) and a camera JSON.
A level camera ``CAMERA_HEIGHT`` above a flat road, horizon at the sky's
bottom: a road pixel ``y`` rows below is ``CAMERA_HEIGHT * fy / y`` m away;
things stand upright where they touch the road (a rider at its bicycle),
turned a little (``TILT``); facades at random depths; sky and void none.
Each region loses a random share of pixels (some most: ``distConf < 0.5``).
"""
import json
import os
import os.path as osp
import zlib

import numpy as np
from PIL import Image, ImageDraw

from ..evaluation.distance import stereo_paths

# a Cityscapes camera (2048x1024) as in its camera/*.json (approximate)
BASELINE = 0.209313
FX, FY = 2262.52, 2265.30
CAMERA_HEIGHT = 1.22
GROUND = ('road', 'sidewalk', 'parking', 'rail track', 'ground', 'terrain')
FACADES = ('building', 'vegetation', 'wall', 'fence')
NO_DISPARITY = ('sky', 'ego vehicle', 'rectification border', 'out of roi',
                'unlabeled')
TILT = 0.1


def render_disparity(objs, width: int, height: int, cam: dict,
                     rng: np.random.Generator) -> np.ndarray:
    """The disparity PNG values (uint16) of a scene's polygons (in drawing
    order) seen by camera ``cam``; ``rng`` draws depths and gaps."""
    horizon = cam['intrinsic']['v0']
    fx, fy = cam['intrinsic']['fx'], cam['intrinsic']['fy']
    # per object (0: nothing drawn): kind 0 no disparity, 1 road-like
    # (depth by row), 2 upright at depth * (1 + tilt * (x - center) / span)
    n = len(objs) + 1
    kind, missing, tilt, center = np.zeros(n, np.int8), *np.zeros((3, n))
    depth, span = np.ones(n), np.ones(n)
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
        missing[k] = (rng.uniform(0.5, 1.0) if rng.random() < 0.15
                      else rng.uniform(0.0, 0.3))
    idx = np.asarray(index, np.int32)
    kinds = kind[idx]
    below = (np.arange(height, dtype=np.float32) - np.float32(horizon))[
        :, None]
    road = CAMERA_HEIGHT * fy / np.maximum(below, 0.5)
    slope = depth * tilt / span  # upright depth = a + slope * x
    x = np.arange(width, dtype=np.float32)[None, :]
    upright = ((depth - slope * center).astype(np.float32)[idx] +
               slope.astype(np.float32)[idx] * x)
    z = np.where(kinds == 1, road, upright)
    valid = (kinds > 0) & ((kinds != 1) | (below > 0.5))
    valid &= (rng.random((height, width), dtype=np.float32) >=
              missing.astype(np.float32)[idx])
    d = np.float32(cam['extrinsic']['baseline'] * fx) / z
    # p = 256 d + 1; p >= 2 keeps every valid pixel at a finite depth
    p = np.clip(np.round(256 * d + 1), 2, 65535)
    return np.where(valid, p, 0).astype(np.uint16)


def write_stereo(gt_path: str, objs, width: int, height: int):
    """Write (where Cityscapes keeps them) and return the disparity PNG and
    camera JSON of the frame of ``gt_path`` (all objects, test split too)."""
    # seeded by the scene itself, leaving the generator's stream untouched
    text = json.dumps(list(objs), sort_keys=True)
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    horizon = next((float(max(y for _, y in o['polygon'])) for o in objs
                    if o['label'] == 'sky'), 0.45 * height)
    cam = {  # focal lengths scaled to the frame's size
        'extrinsic': {'baseline': BASELINE, 'pitch': 0.0, 'roll': 0.0,
                      'x': 1.7, 'y': 0.1, 'yaw': 0.0, 'z': CAMERA_HEIGHT},
        'intrinsic': {'fx': FX * width / 2048., 'fy': FY * height / 1024.,
                      'u0': width / 2., 'v0': float(horizon)}}
    paths = stereo_paths(gt_path)
    for path in paths:
        os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(render_disparity(objs, width, height, cam, rng)).save(
        paths[0], compress_level=1)
    with open(paths[1], 'w') as f:
        json.dump(cam, f, indent=1)
    return paths
