"""Mini-Cityscapes: generated street scenes in the exact official layout.

Scenes are labelled polygons (``gtFine_polygons.json``); cityscapesscripts
renders the ground-truth PNGs from them and the image is drawn from the
same polygons in the same order, so both agree pixel for pixel. ``simple``
(default): 3-23 hand-made 6-14-vertex silhouettes per frame. ``cityscapes``:
approximations of published Cityscapes statistics (sources next to the
numbers), irregular outlines, occlusion by parked rows, crowds and poles;
independent of the converter and evaluator, to check them.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image, ImageDraw

from .stereo import CAMERA_HEIGHT, write_stereo

# three real city names per split, so file names look like the real ones
CITIES = {'train': ('aachen', 'bochum', 'bremen'),
          'val': ('frankfurt', 'lindau', 'munster'),
          'test': ('berlin', 'bielefeld', 'bonn')}
# the simple distribution's things and shares (caravan, trailer: not evaluated)
THING_WEIGHTS = {
    'car': 0.34, 'person': 0.26, 'bicycle': 0.07, 'rider': 0.08,
    'motorcycle': 0.05, 'truck': 0.06, 'bus': 0.05, 'train': 0.03,
    'caravan': 0.03, 'trailer': 0.03}
# RGB colour per class (jittered per instance) a detector can learn
APPEARANCE = {
    'person': (190, 60, 70), 'rider': (235, 130, 30), 'car': (40, 70, 170),
    'truck': (30, 125, 120), 'bus': (210, 200, 40), 'train': (150, 50, 160),
    'motorcycle': (40, 185, 70), 'bicycle': (225, 225, 225),
    'caravan': (60, 130, 110), 'trailer': (45, 110, 130),
    'sky': (150, 190, 230), 'building': (120, 100, 90),
    'road': (100, 100, 105), 'sidewalk': (170, 140, 160),
    'vegetation': (70, 120, 40), 'pole': (140, 140, 140),
    'traffic sign': (220, 210, 20), 'traffic light': (60, 60, 50),
    'ego vehicle': (20, 20, 20), 'out of roi': (0, 0, 0),
    'rectification border': (0, 0, 0)}
DISTRIBUTIONS = ('simple', 'cityscapes')
VOID = ('ego vehicle', 'rectification border', 'out of roi')
# real-world height relative to a person's (simple distribution)
_HEIGHT = {'person': 1.0, 'rider': 1.0, 'bicycle': 0.55, 'motorcycle': 0.65,
           'car': 0.8, 'truck': 1.8, 'caravan': 1.5, 'trailer': 1.3,
           'bus': 1.9, 'train': 2.2}

# ---- distribution='cityscapes' (approximate) -------------------------------
# Annotated instances per frame: approximately Cordts et al., "The
# Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016,
# table of instance counts (fine train + val: ~24.4k humans, 7.0 per frame;
# ~41.0k vehicles, 11.8 per frame); not re-counted on the dataset.
HUMANS_PER_FRAME, VEHICLES_PER_FRAME = 7.0, 11.8
# more are drawn, as nearer things hide some completely (calibrated on 200
# frames rendered by cityscapesscripts; tested)
DRAWN_PER_VISIBLE = {'humans': 1.65, 'vehicles': 2.2}
# negative-binomial shape of the counts per frame (our choice; variance =
# mean + mean^2 / shape): empty side streets and crowded squares
COUNT_SHAPE = 1.5
# class shares: approximations of the fine train split's instance counts
# (thousands), not counted on the dataset; caravan / trailer guessed
HUMAN_SHARES = {'person': 17.9, 'rider': 1.8}
VEHICLE_SHARES = {'car': 27.0, 'bicycle': 3.7, 'motorcycle': 0.7,
                  'truck': 0.5, 'bus': 0.4, 'train': 0.2, 'caravan': 0.07,
                  'trailer': 0.07}
# mean instance size in pixels (2048x1024): cityscapesscripts 2.3.0's
# avgClassSize (evaluation/evalPixelLevelSemanticLabeling.py)
AVG_INSTANCE_SIZE = {
    'bicycle': 4672.3, 'caravan': 36771.8, 'motorcycle': 6298.7,
    'rider': 3930.5, 'bus': 35732.2, 'train': 67583.7, 'car': 12794.0,
    'person': 3462.5, 'truck': 27855.1, 'trailer': 16927.0}
# areas log-uniform from MIN_AREA to a per-class limit giving the mean
# above (our modelling choice: most small and distant, a long tail)
MIN_AREA = 20.0
# typical real heights in metres (our assumption): a thing of image height
# h stands at row horizon + h * CAMERA_HEIGHT / height (stereo's camera)
REAL_HEIGHT = {
    'person': 1.7, 'rider': 1.75, 'car': 1.5, 'truck': 3.2, 'bus': 3.1,
    'train': 3.8, 'motorcycle': 1.2, 'bicycle': 1.05, 'caravan': 2.7,
    'trailer': 2.2}


def add_scene_args(parser, distribution: bool = True) -> None:
    """The ``--width``, ``--height`` (and ``--distribution``) options."""
    for name, default in (('width', 2048), ('height', 1024)):
        parser.add_argument(f'--{name}', type=int, default=default,
                            help=f'frame {name} (default: {default})')
    if distribution:
        parser.add_argument('--distribution', default='simple',
                            choices=DISTRIBUTIONS, help='scene distribution: '
                            'simple (default) or cityscapes (approximate '
                            'published Cityscapes statistics)')


def _obj(label: str, points) -> dict:
    return {'label': label, 'polygon': np.round(points).astype(int).tolist()}


def _box(x0, y0, x1, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def _crowd(x, yb, w, h) -> np.ndarray:
    return np.array([[x, yb], [x + 0.1 * w, yb - h], [x + 0.5 * w,
                     yb - 1.2 * h], [x + 0.9 * w, yb - h], [x + w, yb]])


def _choice(rng, weights: dict, n):
    values = np.array(list(weights.values())) / sum(weights.values())
    return rng.choice(list(weights), size=n, p=values)


# Thing outlines: vertex (a, b, c) of a thing standing at (x, yb) with
# height h is (x + a * w, yb + b * h + c * k); per class the width w / h
# (a range: drawn per thing) and k / h (humans: head; trucks: cab height).
_OUTLINES = {
    'human': ((-.12, -1, 1), (-.15, -1, .4), (0, -1, 0), (.15, -1, .4),
              (.12, -1, 1), (.5, -1, 1.4), (.42, -.45, 0), (.3, 0, 0),
              (.08, 0, 0), (0, -.35, 0), (-.08, 0, 0), (-.3, 0, 0),
              (-.42, -.45, 0), (-.5, -1, 1.4)),
    'bike': ((-.5, -.1, 0), (-.45, -.5, 0), (-.2, -.6, 0), (-.1, -1, 0),
             (.2, -.95, 0), (.45, -.55, 0), (.5, -.1, 0), (.3, 0, 0),
             (0, -.2, 0), (-.3, 0, 0)),
    'car': ((-.5, 0, 0), (-.5, -.55, 0), (-.3, -.6, 0), (-.2, -1, 0),
            (.25, -1, 0), (.38, -.6, 0), (.5, -.5, 0), (.5, 0, 0)),
    'box': ((-.5, 0, 0), (-.5, -1, 0), (.2, -1, 0), (.2, 0, -1),
            (.5, 0, -1), (.5, 0, 0)),
    'long': ((-.5, 0, 0), (-.5, -.95, 0), (-.45, -1, 0), (.45, -1, 0),
             (.5, -.9, 0), (.5, 0, 0))}
_SHAPE = {  # label: (outline, w / h, k / h)
    'person': ('human', .36, .16), 'rider': ('human', .36, .16),
    'bicycle': ('bike', 1.5, 0), 'motorcycle': ('bike', 1.7, 0),
    'car': ('car', (1.8, 2.4), 0), 'truck': ('box', (1.6, 2.4), .7),
    'caravan': ('box', (1.6, 2.4), 1.), 'trailer': ('box', (1.6, 2.4), 1.),
    'bus': ('long', (2.2, 3.0), 0), 'train': ('long', (3.5, 5.0), 0)}


def _thing_outline(label: str, x: float, yb: float, h: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Outline of one thing standing at (x, yb) with height h, in pixels."""
    outline, w, k = _SHAPE[label]
    w = (rng.uniform(*w) if isinstance(w, tuple) else w) * h
    a, b, c = np.array(_OUTLINES[outline], float).T
    return np.stack([x + a * w, yb + b * h + c * (k * h)], 1)


def _group(label, x, yb, h, rng, p_bicycle, shape) -> List[dict]:
    """A thing's objects; a rider sits on a bicycle or motorcycle (its own
    vehicle instance). ``shape(outline, size)`` finishes each outline."""
    if label != 'rider':
        return [_obj(label, shape(_thing_outline(label, x, yb, h, rng), h))]
    bike = 'bicycle' if rng.random() < p_bicycle else 'motorcycle'
    bh = h * _HEIGHT[bike]
    return [_obj(bike, shape(_thing_outline(bike, x, yb, bh, rng), bh)),
            _obj('rider', shape(_thing_outline(
                'rider', x, yb - 0.45 * bh, 0.85 * h, rng), h))]


def _log_uniform_max(mean: float, low: float) -> float:
    """``b`` giving log-uniform ``[low, b]`` the mean ``mean`` (bisection)."""
    lo, hi = low * 1.0001, mean * 100.0
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        lo, hi = ((mid, hi) if (mid - low) / np.log(mid / low) < mean else
                  (lo, mid))
    return float(lo)


def _count(rng: np.random.Generator, mean: float) -> int:
    return int(rng.negative_binomial(COUNT_SHAPE,
                                     COUNT_SHAPE / (COUNT_SHAPE + mean)))


def _irregular(outline: np.ndarray, rng: np.random.Generator,
               size: float) -> np.ndarray:
    """The outline resampled every ~4 px (8-150 vertices, like hand-drawn
    polygons), moved along its normal by a smooth random profile (~4 % of
    ``size``) plus sub-pixel jitter, rounded as in the real JSONs."""
    closed = np.vstack([outline, outline[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    perimeter = float(seg.sum())
    n = int(np.clip(perimeter / 4.0, 8, 150))
    at = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.sort(rng.uniform(0, perimeter, n))
    pts = np.stack([np.interp(t, at, closed[:, 0]),
                    np.interp(t, at, closed[:, 1])], 1)
    tangent = np.roll(pts, -1, 0) - np.roll(pts, 1, 0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal /= np.maximum(np.hypot(*normal.T), 1e-9)[:, None]
    phase = 2 * np.pi * t / perimeter
    profile = np.zeros(n)
    for k in range(1, 7):
        profile += rng.normal(0, 1.0 / k) * np.sin(
            k * phase + rng.uniform(0, 2 * np.pi))
    profile *= 0.04 * size / 1.5
    pts = pts + normal * profile[:, None] + rng.uniform(-0.5, 0.5, pts.shape)
    pts = np.round(pts)
    keep = np.any(pts != np.roll(pts, 1, 0), axis=1)  # no repeated vertex
    return pts[keep] if keep.sum() >= 3 else np.round(outline)


def _road_edges(y, W, H, horizon, vx) -> Tuple[float, float]:
    """x of the road's left and right border at image row y."""
    t = np.clip((y - horizon) / (H - 1 - horizon), 0.0, 1.0)
    return ((vx - 0.02 * W) * (1 - t),
            vx + 0.02 * W + (W - 1 - vx - 0.02 * W) * t)


def _cityscapes_things(rng, W, H, horizon, vx):
    """Things, crowds and poles of one frame as ``(row, objects)``, the row
    where each stands on the road (drawn far to near)."""
    frame_scale = W * H / (2048.0 * 1024.0)
    low = max(4.0, MIN_AREA * frame_scale)
    labels = list(_choice(rng, HUMAN_SHARES, _count(
        rng, HUMANS_PER_FRAME * DRAWN_PER_VISIBLE['humans'])))
    # each rider brings a vehicle instance (its bicycle / motorcycle)
    riders = HUMANS_PER_FRAME * HUMAN_SHARES['rider'] / sum(
        HUMAN_SHARES.values())
    labels += list(_choice(rng, VEHICLE_SHARES, _count(
        rng, (VEHICLES_PER_FRAME - riders) * DRAWN_PER_VISIBLE['vehicles'])))
    things = []
    crowd_at: Optional[Tuple[float, float]] = None  # (x, row) of a group
    for label in labels:
        label = str(label)
        high = _log_uniform_max(AVG_INSTANCE_SIZE[label] * frame_scale, low)
        area = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        template = _thing_outline(label, 0.0, 0.0, 1.0, rng)
        tx, ty = template[:, 0], template[:, 1]
        h = (area / (0.5 * abs(float(np.dot(tx, np.roll(ty, -1)) -
                                     np.dot(ty, np.roll(tx, -1)))))) ** 0.5
        row = horizon + h * CAMERA_HEIGHT / REAL_HEIGHT[label] * \
            rng.uniform(0.85, 1.15)
        left, right = _road_edges(row, W, H, horizon, vx)
        width = np.ptp(template[:, 0]) * h
        depth = (row - horizon) / (H - horizon)  # 0 at the horizon
        side = 1.0 if rng.random() < 0.5 else -1.0  # right / left
        edge = right if side > 0 else left
        sidewalk = 0.5 * W * depth + 2 * width  # wider towards the camera
        if depth < 0.2 and rng.random() < 0.5:  # across a far intersection
            x = rng.uniform(0, W)
        elif label in ('person', 'bicycle'):
            if crowd_at is not None and rng.random() < 0.4:
                # joins the last group: side by side, partly hidden
                x = crowd_at[0] + rng.choice([-1, 1]) * rng.uniform(
                    0.3, 1.0) * width
                row = crowd_at[1] * rng.uniform(0.98, 1.02)
            elif rng.random() < 0.75:  # on a sidewalk
                x = edge + side * rng.uniform(0.1, 1.0) * sidewalk
            else:  # crossing the road
                x = rng.uniform(left, right)
            crowd_at = (x, row)
        elif label in ('rider', 'motorcycle'):  # bike lanes, road edges
            x = edge - side * rng.uniform(0, 1) * width
        elif rng.random() < 0.55:  # parked in rows along a border
            x = edge + side * rng.uniform(-0.5, 0.5) * width
        else:  # driving
            x = rng.uniform(left + 0.5 * width, max(left + 0.5 * width,
                                                    right - 0.5 * width))
        x = float(np.clip(x, -0.1 * W, 1.1 * W))
        things.append((row, _group(label, x, row, h, rng, 0.8,
                                   lambda p, s: _irregular(p, rng, s))))
    for _ in range(rng.poisson(0.4)):  # far crowds annotated as one region
        label = str(rng.choice(['persongroup', 'cargroup', 'bicyclegroup']))
        gh = H * rng.uniform(0.01, 0.05)
        gw = gh * rng.uniform(2, 8)
        row = horizon + gh * rng.uniform(0.6, 1.5)
        base = _crowd(rng.uniform(0, W - gw), row, gw, gh)
        things.append((row, [_obj(label, _irregular(base, rng, gh))]))
    for _ in range(rng.integers(0, 6)):  # poles cut things behind them
        row = horizon + (H - horizon) * rng.uniform(0.02, 0.6)
        reach = row - horizon
        pw = max(2.0, 0.03 * reach)
        px = float(np.clip(rng.choice(_road_edges(row, W, H, horizon, vx)) +
                           rng.normal(0, 3 * pw), 0, W - 1))
        top = horizon - reach * rng.uniform(1.0, 3.0)
        objs = [_obj('pole', _box(px, top, px + pw, row))]
        kind = rng.choice(['traffic sign', 'traffic light', ''])
        if kind:
            objs.append(_obj(str(kind), _box(px - 2 * pw, top,
                                             px + 3 * pw, top + 5 * pw)))
        things.append((row, objs))
    return things


def _simple_things(rng, W, H, horizon, things_range):
    scale = H * 0.4  # a person's height in pixels at the image bottom
    things = []
    for label in _choice(rng, THING_WEIGHTS, int(rng.integers(*things_range))):
        yb = horizon + (H - horizon) * rng.uniform(0.04, 1.0) ** 1.5
        depth = (yb - horizon) / (H - horizon)
        # big vehicles are rarely right in front of the camera
        h = min(0.45 * H, max(4.0, scale * depth * _HEIGHT[label] *
                              rng.uniform(0.85, 1.15)))
        cx = rng.uniform(-0.05, 1.05) * W
        things.append((yb, _group(label, cx, yb, h, rng, 0.6, lambda p, s: p)))
    for _ in range(rng.integers(0, 3)):  # tiny far things (< 100 px)
        label = 'person' if rng.random() < 0.5 else 'car'
        yb = horizon + rng.uniform(2, 8)
        h = rng.uniform(5, 9)
        things.append((yb, [_obj(label, _thing_outline(
            label, rng.uniform(0, W), yb, h, rng))]))
    if rng.random() < 0.4:  # a crowd region labelled as a group
        label = rng.choice(['cargroup', 'persongroup', 'bicyclegroup'])
        gx, gw = rng.uniform(0, W * 0.8), W * rng.uniform(0.05, 0.2)
        gh = H * rng.uniform(0.02, 0.06)
        yb = horizon + gh * rng.uniform(0.5, 1.5)
        things.append((yb - 1e-3, [_obj(label, _crowd(gx, yb, gw, gh))]))
    return things


def make_scene(rng: np.random.Generator, width: int, height: int,
               with_things: bool = True,
               things_range: Tuple[int, int] = (3, 24),
               distribution: str = 'simple') -> List[dict]:
    """Random street scene as Cityscapes polygon objects, in drawing order
    (stuff, things far to near, void), drawn from ``rng``; ``things_range``:
    ``[low, high)`` things per frame (``simple`` only)."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f'unknown distribution {distribution!r}; choose '
                         f'from {DISTRIBUTIONS}')
    W, H = width, height
    horizon = H * rng.uniform(0.38, 0.5)
    objs = [_obj('sky', _box(0, 0, W - 1, horizon))]
    x = 0.0
    while x < W:  # a row of buildings with ragged roof line
        bw = W * rng.uniform(0.08, 0.25)
        top = horizon * rng.uniform(0.05, 0.7)
        label = 'building' if rng.random() < 0.8 else 'vegetation'
        objs.append(_obj(label, _box(x, top, min(x + bw, W - 1), horizon)))
        x += bw
    vx = W * rng.uniform(0.35, 0.65)  # vanishing point of the road
    objs.append(_obj('road', np.array(
        [[vx - 0.02 * W, horizon], [vx + 0.02 * W, horizon], [W - 1, H - 1],
         [0, H - 1]])))
    for side in (0, W - 1):
        objs.append(_obj('sidewalk', np.array(
            [[side, horizon], [vx + (0.02 * W if side else -0.02 * W),
                               horizon], [side, H * rng.uniform(0.7, 0.95)]])))
    # (cityscapes: poles come in depth order among the things)
    for _ in range(rng.integers(0, 4) if distribution == 'simple' else 0):
        px = rng.uniform(0, W)
        pw = max(2.0, W * 0.004)
        ptop = horizon * rng.uniform(0.2, 0.8)
        pbot = horizon + (H - horizon) * rng.uniform(0.05, 0.4)
        objs.append(_obj('pole', _box(px, ptop, px + pw, pbot)))
        objs.append(_obj('traffic sign', _box(px - 3 * pw, ptop,
                                              px + 4 * pw, ptop + 6 * pw)))
    if with_things:
        things = (_cityscapes_things(rng, W, H, horizon, vx)
                  if distribution == 'cityscapes' else
                  _simple_things(rng, W, H, horizon, things_range))
        for _, group in sorted(things, key=lambda t: t[0]):
            objs.extend(group)
    hood = H * rng.uniform(0.05, 0.1)
    xs = np.linspace(0, W - 1, 9)
    ys = H - 1 - hood * (1 - ((xs - W / 2) / (W / 2)) ** 2 * 0.6)
    objs.append(_obj('ego vehicle', np.concatenate(
        [np.stack([xs, ys], 1), [[W - 1, H - 1], [0, H - 1]]])))
    border = max(1.0, W * 0.002)
    return objs + [_obj('rectification border', b) for b in (
        _box(0, 0, border, H - 1), _box(W - 1 - border, 0, W - 1, H - 1))]


def render_image(objs, rng: np.random.Generator, width: int,
                 height: int) -> np.ndarray:
    """The RGB frame drawn from the same polygons, in the same order."""
    img = Image.new('RGB', (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    for obj in objs:
        label = obj['label']
        base = np.array(APPEARANCE.get(label.replace('group', ''),
                                       (128, 128, 128)), float)
        color = tuple(int(c) for c in np.clip(
            base + rng.normal(0, 12, 3), 0, 255))
        draw.polygon([tuple(p) for p in obj['polygon']], fill=color)
        if label in ('car', 'truck', 'bus', 'train', 'caravan'):
            # darker windows in the upper part: a cue inside the outline
            p = np.asarray(obj['polygon'], float)
            c = p.mean(0)
            win = c + (p - c) * 0.6
            win[:, 1] -= 0.25 * (p[:, 1].max() - p[:, 1].min())
            draw.polygon([tuple(q) for q in np.round(win).astype(int)],
                         fill=tuple(int(v * 0.45) for v in color))
    arr = np.asarray(img, np.int16)
    arr = arr + rng.integers(-6, 7, size=(height, 1, 1), dtype=np.int16)
    arr = arr + rng.integers(-5, 6, size=arr.shape, dtype=np.int16)
    return np.clip(arr, 0, 255).astype(np.uint8)


def render_gt(polygons_json: dict) -> Tuple[np.ndarray, np.ndarray]:
    """instanceIds (uint16) and labelIds (uint8) by cityscapesscripts."""
    annotation = Annotation()
    annotation.fromJsonText(json.dumps(polygons_json))
    # Pillow 13 can't save its mode-'I' image as PNG; real files are 16-bit
    inst = np.asarray(createInstanceImage(annotation, 'ids'), np.int32)
    label = np.asarray(createLabelImage(annotation, 'ids'), np.uint8)
    return inst.astype(np.uint16), label


def make_mini_cityscapes(out_root: str,
                         num_images: Optional[Dict[str, int]] = None,
                         width: int = 2048, height: int = 1024, seed: int = 0,
                         empty_every: int = 10,
                         things_range: Tuple[int, int] = (3, 24),
                         distribution: str = 'simple') -> Dict[str, List[str]]:
    """Write ``leftImg8bit/``, ``gtFine/``, ``disparity/``, ``camera/``
    under ``out_root`` (``num_images`` frames per split; same ``seed``,
    same files; every ``empty_every``-th frame without things); returns
    the image paths per split."""
    if num_images is None:
        num_images = {'train': 8, 'val': 4, 'test': 2}
    written: Dict[str, List[str]] = {}
    for split_idx, (split, n) in enumerate(sorted(num_images.items())):
        written[split] = []
        for i in range(n):
            rng = np.random.default_rng([seed, split_idx, i])
            city = CITIES[split][i % 3]  # the official layout and names
            stem = osp.join(split, city, f'{city}_{i // 3:06d}_000019')
            gt = osp.join(out_root, 'gtFine', stem + '_gtFine_')
            paths = dict(image=osp.join(out_root, 'leftImg8bit',
                                        stem + '_leftImg8bit.png'),
                         polygons=gt + 'polygons.json',
                         instanceIds=gt + 'instanceIds.png',
                         labelIds=gt + 'labelIds.png')
            objs = make_scene(rng, width, height, empty_every <= 0 or
                              (i + 1) % empty_every != 0, things_range,
                              distribution)
            image = render_image(objs, rng, width, height)
            write_stereo(paths['instanceIds'], objs, width, height)
            if split == 'test':  # no public ground truth: void regions only
                objs = [o for o in objs if o['label'] in VOID]
            poly = {'imgHeight': height, 'imgWidth': width, 'objects': objs}
            inst, label = render_gt(poly)
            for p in paths.values():
                os.makedirs(osp.dirname(p), exist_ok=True)
            # compress_level 1: scratch data; decoding speed barely differs
            for key, arr in (('image', image), ('instanceIds', inst),
                             ('labelIds', label)):
                Image.fromarray(arr).save(paths[key], compress_level=1)
            with open(paths['polygons'], 'w') as f:
                json.dump(poly, f, indent=1)
            written[split].append(paths['image'])
    return written


def make_benchmark_set(work_dir: str, num_images: int, width: int = 2048,
                       height: int = 1024, distribution: str = 'simple'
                       ) -> Tuple[str, Dict[str, str]]:
    """``(cityscapes_root, {'rle': json, 'polygon': json})``: train frames
    (``simple``: ~14 things visible) in both formats, reused if there."""
    from ..datasets.cityscapes_converter import (ann_file_name,
                                                 convert_cityscapes)
    if distribution != 'simple':  # beside the simple set, not inside
        work_dir = osp.join(work_dir, f'distribution_{distribution}')
    root = osp.join(work_dir, 'cityscapes')
    if not osp.isdir(osp.join(root, 'leftImg8bit')):
        make_mini_cityscapes(root, dict(train=num_images), width, height,
                             seed=0, empty_every=0, things_range=(15, 26),
                             distribution=distribution)
    anns = {}
    for fmt in ('rle', 'polygon'):
        out = osp.join(work_dir, f'ann_{fmt}')
        anns[fmt] = osp.join(out, ann_file_name('train'))
        if not osp.isfile(anns[fmt]):
            convert_cityscapes(root, out, ['train'], fmt, progress=False)
    return root, anns
