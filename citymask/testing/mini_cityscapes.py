"""Mini-Cityscapes: generated street scenes in the exact official layout.

Real Cityscapes needs a login, so tests and the demo run on scenes generated
here. Each scene is a list of labelled polygons (the ``gtFine_polygons.json``
format); the ground-truth PNGs are rendered from it by cityscapesscripts
itself, and the RGB image is drawn from the same polygons in the same order,
so images and labels agree pixel for pixel, occlusions included.

Two scene distributions:

* ``simple`` (default): 3-23 things per frame with hand-made silhouettes of
  6-14 vertices, sizes from a simple perspective rule. Used by the demo and
  most tests.
* ``cityscapes``: built from Cityscapes statistics (instances per frame and
  class: approximations of published figures; mean instance size per class:
  cityscapesscripts' own table; sources next to the numbers below), with
  irregular many-vertex outlines, areas spread log-uniformly from about 20
  pixels up, and occlusion from parked rows,
  crowds and poles in depth order. Written independently of the converter
  and evaluator, to check their claims on data they were not tuned on.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image, ImageDraw

from .stereo import CAMERA_HEIGHT, write_stereo

# Real city names of each split (a few), so file names look like the real ones.
CITIES = {
    'train': ('aachen', 'bochum', 'bremen'),
    'val': ('frankfurt', 'lindau', 'munster'),
    'test': ('berlin', 'bielefeld', 'bonn'),
}

# Labels of things, with how often they appear. caravan/trailer are ignored
# by the evaluation but present in real data; they look like trucks here.
THING_WEIGHTS = {
    'car': 0.34, 'person': 0.26, 'bicycle': 0.07, 'rider': 0.08,
    'motorcycle': 0.05, 'truck': 0.06, 'bus': 0.05, 'train': 0.03,
    'caravan': 0.03, 'trailer': 0.03,
}

# Class-dependent appearance (RGB base colour) so a detector can learn the
# classes; each instance jitters it. Not the Cityscapes palette on purpose.
APPEARANCE = {
    'person': (190, 60, 70), 'rider': (235, 130, 30), 'car': (40, 70, 170),
    'truck': (30, 125, 120), 'bus': (210, 200, 40), 'train': (150, 50, 160),
    'motorcycle': (40, 185, 70), 'bicycle': (225, 225, 225),
    'caravan': (60, 130, 110), 'trailer': (45, 110, 130),
    'sky': (150, 190, 230), 'building': (120, 100, 90),
    'road': (100, 100, 105),
    'sidewalk': (170, 140, 160), 'vegetation': (70, 120, 40),
    'pole': (140, 140, 140), 'traffic sign': (220, 210, 20),
    'traffic light': (60, 60, 50),
    'ego vehicle': (20, 20, 20), 'out of roi': (0, 0, 0),
    'rectification border': (0, 0, 0),
}

Polygon = List[List[int]]
DISTRIBUTIONS = ('simple', 'cityscapes')


def add_scene_args(parser, distribution: bool = True) -> None:
    """The generated frames' ``--width``, ``--height`` and
    ``--distribution``, as every generating tool takes them."""
    parser.add_argument('--width', type=int, default=2048,
                        help='frame width (default: 2048)')
    parser.add_argument('--height', type=int, default=1024,
                        help='frame height (default: 1024)')
    if distribution:
        parser.add_argument('--distribution', default='simple',
                            choices=DISTRIBUTIONS,
                            help='scene distribution: simple (default) or '
                            'cityscapes (published Cityscapes statistics)')


def _obj(label: str, points: np.ndarray) -> dict:
    pts = np.round(points).astype(int)
    return {'label': label, 'polygon': pts.tolist()}


def _box(x0, y0, x1, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def _thing_outline(label: str, x: float, yb: float, h: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Outline of one thing standing at (x, yb) with height h, in pixels."""
    if label in ('person', 'rider'):
        w = 0.36 * h
        head = 0.16 * h
        # head (octagon-ish), shoulders, torso, two legs
        pts = [[x - 0.12 * w, yb - h + head],
               [x - 0.15 * w, yb - h + 0.4 * head],
               [x, yb - h], [x + 0.15 * w, yb - h + 0.4 * head],
               [x + 0.12 * w, yb - h + head],
               [x + 0.5 * w, yb - h + 1.4 * head],
               [x + 0.42 * w, yb - 0.45 * h], [x + 0.3 * w, yb],
               [x + 0.08 * w, yb], [x, yb - 0.35 * h], [x - 0.08 * w, yb],
               [x - 0.3 * w, yb], [x - 0.42 * w, yb - 0.45 * h],
               [x - 0.5 * w, yb - h + 1.4 * head]]
    elif label in ('bicycle', 'motorcycle'):
        w = (1.5 if label == 'bicycle' else 1.7) * h
        pts = [[x - 0.5 * w, yb - 0.1 * h], [x - 0.45 * w, yb - 0.5 * h],
               [x - 0.2 * w, yb - 0.6 * h], [x - 0.1 * w, yb - h],
               [x + 0.2 * w, yb - 0.95 * h], [x + 0.45 * w, yb - 0.55 * h],
               [x + 0.5 * w, yb - 0.1 * h], [x + 0.3 * w, yb],
               [x, yb - 0.2 * h], [x - 0.3 * w, yb]]
    elif label == 'car':
        w = rng.uniform(1.8, 2.4) * h
        pts = [[x - 0.5 * w, yb], [x - 0.5 * w, yb - 0.55 * h],
               [x - 0.3 * w, yb - 0.6 * h], [x - 0.2 * w, yb - h],
               [x + 0.25 * w, yb - h], [x + 0.38 * w, yb - 0.6 * h],
               [x + 0.5 * w, yb - 0.5 * h], [x + 0.5 * w, yb]]
    elif label in ('truck', 'caravan', 'trailer'):
        w = rng.uniform(1.6, 2.4) * h
        cab = 0.7 if label == 'truck' else 1.0
        pts = [[x - 0.5 * w, yb], [x - 0.5 * w, yb - h],
               [x + 0.2 * w, yb - h], [x + 0.2 * w, yb - cab * h],
               [x + 0.5 * w, yb - cab * h], [x + 0.5 * w, yb]]
    else:  # bus, train: long tall boxes with rounded front
        w = (rng.uniform(2.2, 3.0) if label == 'bus' else
             rng.uniform(3.5, 5.0)) * h
        pts = [[x - 0.5 * w, yb], [x - 0.5 * w, yb - 0.95 * h],
               [x - 0.45 * w, yb - h], [x + 0.45 * w, yb - h],
               [x + 0.5 * w, yb - 0.9 * h], [x + 0.5 * w, yb]]
    return np.asarray(pts, float)


# Real-world height (relative to a person = 1) of each thing.
_HEIGHT = {
    'person': 1.0, 'rider': 1.0, 'bicycle': 0.55, 'motorcycle': 0.65,
    'car': 0.8, 'truck': 1.8, 'caravan': 1.5, 'trailer': 1.3, 'bus': 1.9,
    'train': 2.2,
}


# ---- distribution='cityscapes': published statistics ----------------------
# Instances per frame: approximately the figures Cordts et al., "The
# Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016,
# give in their table of instance counts vs KITTI and Caltech (train + val
# fine annotations: about 24.4k humans, 7.0 per frame, and 41.0k vehicles,
# 11.8 per frame). Approximations, not re-counted on the dataset; CityPersons
# (Zhang et al., CVPR 2017), on the same frames, gives ~7 pedestrians per
# image.
HUMANS_PER_FRAME = 7.0
VEHICLES_PER_FRAME = 11.8
# Those count annotated, i.e. visible, instances; in these scenes a share
# is hidden completely by nearer things (parked rows, crowds). More are
# drawn so that about the published numbers stay visible (calibrated on
# 200 frames rendered by cityscapesscripts; tested).
DRAWN_PER_VISIBLE = {'humans': 1.65, 'vehicles': 2.2}
# Frames differ a lot (empty side streets, crowded squares): counts are
# drawn from a negative binomial with this shape (our choice, not a
# published figure; variance = mean + mean^2 / shape).
COUNT_SHAPE = 1.5
# Class shares within humans / vehicles: approximations of the per-class
# instance counts of the fine train split (person ~17.9k, rider ~1.8k;
# car ~27.0k, bicycle ~3.7k, motorcycle ~0.7k, truck ~0.5k, bus ~0.4k,
# train ~0.2k), not counted on the dataset; caravan / trailer (not
# evaluated) are rare, a guessed ~0.2 % each.
HUMAN_SHARES = {'person': 17.9, 'rider': 1.8}
VEHICLE_SHARES = {'car': 27.0, 'bicycle': 3.7, 'motorcycle': 0.7,
                  'truck': 0.5, 'bus': 0.4, 'train': 0.2, 'caravan': 0.07,
                  'trailer': 0.07}
# Mean instance size in pixels (2048x1024) per class: the averages
# cityscapesscripts 2.3.0 weights its iIoU with
# (evaluation/evalPixelLevelSemanticLabeling.py, args.avgClassSize),
# computed on the dataset's instances.
AVG_INSTANCE_SIZE = {
    'bicycle': 4672.3, 'caravan': 36771.8, 'motorcycle': 6298.7,
    'rider': 3930.5, 'bus': 35732.2, 'train': 67583.7, 'car': 12794.0,
    'person': 3462.5, 'truck': 27855.1, 'trailer': 16927.0,
}
# Areas are log-uniform from MIN_AREA up to a per-class limit chosen so
# that the mean equals AVG_INSTANCE_SIZE (person ~25k px, ~1.2 % of the
# frame; car ~0.1M, ~5 %): most instances small and distant, a long tail
# of large near ones. The log-uniform shape is our modelling choice.
MIN_AREA = 20.0
# Perspective: the camera is CAMERA_HEIGHT above the road (the stereo
# files' camera, .stereo) and a thing of real height R metres and image
# height h stands on the road at horizon + h * CAMERA_HEIGHT / R. Typical
# real heights (our assumption):
REAL_HEIGHT = {
    'person': 1.7, 'rider': 1.75, 'car': 1.5, 'truck': 3.2, 'bus': 3.1,
    'train': 3.8, 'motorcycle': 1.2, 'bicycle': 1.05, 'caravan': 2.7,
    'trailer': 2.2,
}


def _log_uniform_max(mean: float, low: float) -> float:
    """Upper limit ``b`` of a log-uniform ``[low, b]`` with this mean:
    solves ``(b - low) / ln(b / low) = mean`` by bisection."""
    lo, hi = low * 1.0001, mean * 100.0
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        if (mid - low) / np.log(mid / low) < mean:
            lo = mid
        else:
            hi = mid
    return float(lo)


def _count(rng: np.random.Generator, mean: float) -> int:
    """Negative-binomial count with this mean and shape COUNT_SHAPE."""
    return int(rng.negative_binomial(COUNT_SHAPE,
                                     COUNT_SHAPE / (COUNT_SHAPE + mean)))


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) -
                           np.dot(y, np.roll(x, -1))))


def _irregular(outline: np.ndarray, rng: np.random.Generator,
               size: float) -> np.ndarray:
    """The outline resampled to many vertices and made irregular.

    Vertices every ~4 px of perimeter (8 to 150 of them, like hand-drawn
    Cityscapes polygons), each moved along the outline's normal by a smooth
    random profile (a few periodic modes, amplitude ~4 % of ``size``) plus
    sub-pixel jitter; then rounded to integers as in the real JSONs.
    """
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


def _road_edges(y: float, W: int, H: int, horizon: float,
                vx: float) -> Tuple[float, float]:
    """x of the road's left and right border at image row y."""
    t = np.clip((y - horizon) / (H - 1 - horizon), 0.0, 1.0)
    return ((vx - 0.02 * W) * (1 - t),
            vx + 0.02 * W + (W - 1 - vx - 0.02 * W) * t)


def _cityscapes_things(rng: np.random.Generator, W: int, H: int,
                       horizon: float,
                       vx: float) -> List[Tuple[float, List[dict]]]:
    """Things (and poles) of one frame as ``(depth key, objects)``.

    The depth key is the image row where a thing stands on the road; the
    caller draws in increasing key order, far to near.
    """
    frame_scale = W * H / (2048.0 * 1024.0)
    low = max(4.0, MIN_AREA * frame_scale)
    labels = list(rng.choice(
        list(HUMAN_SHARES),
        size=_count(rng, HUMANS_PER_FRAME * DRAWN_PER_VISIBLE['humans']),
        p=np.array(list(HUMAN_SHARES.values())) / sum(HUMAN_SHARES.values())))
    # a rider comes with its bicycle / motorcycle, which Cityscapes counts
    # as a vehicle instance of its own
    riders = HUMANS_PER_FRAME * HUMAN_SHARES['rider'] / sum(
        HUMAN_SHARES.values())
    labels += list(rng.choice(
        list(VEHICLE_SHARES),
        size=_count(rng, (VEHICLES_PER_FRAME - riders) *
                    DRAWN_PER_VISIBLE['vehicles']),
        p=np.array(list(VEHICLE_SHARES.values())) /
        sum(VEHICLE_SHARES.values())))
    things: List[Tuple[float, List[dict]]] = []
    crowd_at: Optional[Tuple[float, float]] = None  # (x, row) of a group
    for label in labels:
        label = str(label)
        high = _log_uniform_max(AVG_INSTANCE_SIZE[label] * frame_scale, low)
        area = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        template = _thing_outline(label, 0.0, 0.0, 1.0, rng)
        h = (area / _polygon_area(template)) ** 0.5
        row = horizon + h * CAMERA_HEIGHT / REAL_HEIGHT[label] * \
            rng.uniform(0.85, 1.15)
        left, right = _road_edges(row, W, H, horizon, vx)
        width = np.ptp(template[:, 0]) * h
        depth = (row - horizon) / (H - horizon)  # 0 at the horizon
        side = 1.0 if rng.random() < 0.5 else -1.0  # right / left
        edge = right if side > 0 else left
        # sidewalks widen towards the camera
        sidewalk = 0.5 * W * depth + 2 * width
        if depth < 0.2 and rng.random() < 0.5:
            # far away: across an intersection or down a side street, not
            # only where the road meets the horizon
            x = rng.uniform(0, W)
        elif label in ('person', 'bicycle'):
            if crowd_at is not None and rng.random() < 0.4:
                # join the last group: side by side, partly hidden
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
        elif rng.random() < 0.55:  # parked along either border: rows
            x = edge + side * rng.uniform(-0.5, 0.5) * width
        else:  # driving
            x = rng.uniform(left + 0.5 * width, max(left + 0.5 * width,
                                                    right - 0.5 * width))
        x = float(np.clip(x, -0.1 * W, 1.1 * W))
        group = []
        if label == 'rider':  # on a bicycle (most) or a motorcycle
            bike = 'bicycle' if rng.random() < 0.8 else 'motorcycle'
            bh = h * _HEIGHT[bike]
            group.append(_obj(bike, _irregular(_thing_outline(
                bike, x, row, bh, rng), rng, bh)))
            group.append(_obj('rider', _irregular(_thing_outline(
                'rider', x, row - 0.45 * bh, 0.85 * h, rng), rng, h)))
        else:
            group.append(_obj(label, _irregular(_thing_outline(
                label, x, row, h, rng), rng, h)))
        things.append((row, group))
    # crowd regions the annotators could not split (far away, small)
    for _ in range(rng.poisson(0.4)):
        label = str(rng.choice(['persongroup', 'cargroup', 'bicyclegroup']))
        gh = H * rng.uniform(0.01, 0.05)
        gw = gh * rng.uniform(2, 8)
        row = horizon + gh * rng.uniform(0.6, 1.5)
        gx = rng.uniform(0, W - gw)
        base = np.array([[gx, row], [gx + 0.1 * gw, row - gh],
                         [gx + 0.5 * gw, row - 1.2 * gh],
                         [gx + 0.9 * gw, row - gh], [gx + gw, row]])
        things.append((row, [_obj(label, _irregular(base, rng, gh))]))
    # poles / traffic signs / lights in depth order: they cut things
    # behind them into pieces, as in real frames
    for _ in range(rng.integers(0, 6)):
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


def make_scene(rng: np.random.Generator, width: int, height: int,
               with_things: bool = True,
               things_range: Tuple[int, int] = (3, 24),
               distribution: str = 'simple') -> List[dict]:
    """Random street scene as Cityscapes polygon objects, in drawing order.

    Stuff first (sky, buildings, road, sidewalks, poles), then group regions
    and things from far to near (so near things occlude far ones), then the
    void regions every real frame has (ego vehicle, rectification border).

    Args:
        rng: Random stream of this frame.
        width: Image width.
        height: Image height.
        with_things: False gives a frame without things.
        things_range: Things per frame, ``[low, high)`` (``simple`` only;
            ``cityscapes`` draws the published per-frame counts).
        distribution: ``simple`` or ``cityscapes`` (see the module doc).
    """
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
    # (cityscapes: poles come later, in depth order among the things)
    for _ in range(rng.integers(0, 4) if distribution == 'simple' else 0):
        px = rng.uniform(0, W)
        pw = max(2.0, W * 0.004)
        ptop = horizon * rng.uniform(0.2, 0.8)
        pbot = horizon + (H - horizon) * rng.uniform(0.05, 0.4)
        objs.append(_obj('pole', _box(px, ptop, px + pw, pbot)))
        objs.append(_obj('traffic sign', _box(px - 3 * pw, ptop,
                                              px + 4 * pw, ptop + 6 * pw)))

    things: List[Tuple[float, List[dict]]] = []
    if with_things and distribution == 'cityscapes':
        things = _cityscapes_things(rng, W, H, horizon, vx)
    elif with_things:
        scale = H * 0.4  # a person's height in pixels at the image bottom
        n = int(rng.integers(*things_range))
        labels = rng.choice(list(THING_WEIGHTS), size=n,
                            p=np.array(list(THING_WEIGHTS.values())) /
                            sum(THING_WEIGHTS.values()))
        for label in labels:
            yb = horizon + (H - horizon) * rng.uniform(0.04, 1.0) ** 1.5
            depth = (yb - horizon) / (H - horizon)
            # big vehicles are rarely right in front of the camera
            h = min(0.45 * H, max(4.0, scale * depth * _HEIGHT[label] *
                                  rng.uniform(0.85, 1.15)))
            cx = rng.uniform(-0.05, 1.05) * W
            group = []
            if label == 'rider':  # a rider sits on a bicycle / motorcycle
                bike = 'bicycle' if rng.random() < 0.6 else 'motorcycle'
                bh = h * _HEIGHT[bike]
                group.append(_obj(bike, _thing_outline(bike, cx, yb, bh, rng)))
                group.append(_obj('rider', _thing_outline(
                    'rider', cx, yb - 0.45 * bh, h * 0.85, rng)))
            else:
                group.append(_obj(label, _thing_outline(label, cx, yb, h,
                                                        rng)))
            things.append((yb, group))
        # a few tiny far-away things (< 100 px), like real distant people/cars
        for _ in range(rng.integers(0, 3)):
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
            pts = np.array([[gx, yb], [gx + 0.1 * gw, yb - gh],
                            [gx + 0.5 * gw, yb - 1.2 * gh],
                            [gx + 0.9 * gw, yb - gh], [gx + gw, yb]])
            things.append((yb - 1e-3, [_obj(label, pts)]))
    things.sort(key=lambda t: t[0])
    for _, group in things:
        objs.extend(group)

    # ego vehicle hood at the bottom, rectification borders at the sides
    hood = H * rng.uniform(0.05, 0.1)
    xs = np.linspace(0, W - 1, 9)
    ys = H - 1 - hood * (1 - ((xs - W / 2) / (W / 2)) ** 2 * 0.6)
    objs.append(_obj('ego vehicle', np.concatenate(
        [np.stack([xs, ys], 1), [[W - 1, H - 1], [0, H - 1]]])))
    border = max(1.0, W * 0.002)
    objs.append(_obj('rectification border', _box(0, 0, border, H - 1)))
    objs.append(_obj('rectification border',
                     _box(W - 1 - border, 0, W - 1, H - 1)))
    return objs


def render_image(objs: Sequence[dict], rng: np.random.Generator, width: int,
                 height: int) -> np.ndarray:
    """Draw the RGB frame from the same polygons, in the same order."""
    img = Image.new('RGB', (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    for obj in objs:
        label = obj['label']
        base = np.array(APPEARANCE.get(label.replace('group', ''),
                                       (128, 128, 128)), float)
        color = tuple(int(c) for c in np.clip(
            base + rng.normal(0, 12, 3), 0, 255))
        pts = [tuple(p) for p in obj['polygon']]
        draw.polygon(pts, fill=color)
        if label in ('car', 'truck', 'bus', 'train', 'caravan'):
            # darker windows in the upper part: a cue inside the outline
            p = np.asarray(obj['polygon'], float)
            c = p.mean(0)
            win = c + (p - c) * 0.6
            win[:, 1] -= 0.25 * (p[:, 1].max() - p[:, 1].min())
            dark = tuple(int(v * 0.45) for v in color)
            draw.polygon([tuple(q) for q in np.round(win).astype(int)],
                         fill=dark)
    arr = np.asarray(img, np.int16)
    arr = arr + rng.integers(-6, 7, size=(height, 1, 1), dtype=np.int16)
    arr = arr + rng.integers(-5, 6, size=arr.shape, dtype=np.int16)
    return np.clip(arr, 0, 255).astype(np.uint8)


def render_gt(polygons_json: dict) -> Tuple[np.ndarray, np.ndarray]:
    """instanceIds (uint16) and labelIds (uint8), rendered by
    cityscapesscripts."""
    annotation = Annotation()
    annotation.fromJsonText(json.dumps(polygons_json))
    # cityscapesscripts draws into a mode-'I' (int32) image, which Pillow 13
    # cannot save as PNG; the real files are 16-bit, so convert.
    inst = np.asarray(createInstanceImage(annotation, 'ids'), np.int32)
    label = np.asarray(createLabelImage(annotation, 'ids'), np.uint8)
    return inst.astype(np.uint16), label


def sample_paths(root: str, split: str, city: str, seq: int,
                 frame: int) -> Dict[str, str]:
    """Official paths of one frame's image and gtFine files."""
    stem = f'{city}_{seq:06d}_{frame:06d}'
    gt = osp.join(root, 'gtFine', split, city, stem + '_gtFine_')
    return {
        'image': osp.join(root, 'leftImg8bit', split, city,
                          stem + '_leftImg8bit.png'),
        'polygons': gt + 'polygons.json',
        'instanceIds': gt + 'instanceIds.png',
        'labelIds': gt + 'labelIds.png',
    }


def write_sample(root: str, split: str, city: str, seq: int, frame: int,
                 rng: np.random.Generator, width: int, height: int,
                 with_things: bool = True,
                 things_range: Tuple[int, int] = (3, 24),
                 distribution: str = 'simple') -> Dict[str, str]:
    """Generate and write one frame with its gtFine, disparity and camera
    files."""
    paths = sample_paths(root, split, city, seq, frame)
    objs = make_scene(rng, width, height, with_things, things_range,
                      distribution)
    image = render_image(objs, rng, width, height)
    # disparity/ and camera/ of the whole scene (the test split has them)
    write_stereo(paths['instanceIds'], objs, width, height)
    # The real test split publishes no ground truth: its gtFine files carry
    # only the void regions (ego vehicle, borders).
    if split == 'test':
        objs = [o for o in objs
                if o['label'] in ('ego vehicle', 'rectification border',
                                  'out of roi')]
    poly = {'imgHeight': height, 'imgWidth': width, 'objects': objs}
    inst, label = render_gt(poly)
    for p in paths.values():
        os.makedirs(osp.dirname(p), exist_ok=True)
    # compress_level 1: these files are scratch data; decoding speed (what
    # the loaders pay) barely depends on the level.
    Image.fromarray(image).save(paths['image'], compress_level=1)
    Image.fromarray(inst).save(paths['instanceIds'], compress_level=1)
    Image.fromarray(label).save(paths['labelIds'], compress_level=1)
    with open(paths['polygons'], 'w') as f:
        json.dump(poly, f, indent=1)
    return paths


def make_mini_cityscapes(out_root: str,
                         num_images: Optional[Dict[str, int]] = None,
                         width: int = 2048,
                         height: int = 1024,
                         seed: int = 0,
                         empty_every: int = 10,
                         things_range: Tuple[int, int] = (3, 24),
                         distribution: str = 'simple'
                         ) -> Dict[str, List[str]]:
    """Write a mini Cityscapes tree under ``out_root``.

    Args:
        out_root: Folder that receives ``leftImg8bit/`` and ``gtFine/``.
        num_images: Images per split, e.g. ``{'train': 8, 'val': 4}``.
        width: Image width (real Cityscapes: 2048).
        height: Image height (real Cityscapes: 1024).
        seed: Same seed, same files (each frame has its own seeded stream).
        empty_every: Every n-th frame of a split has no things at all.
        things_range: Things per frame, drawn from ``[low, high)``
            (``simple`` distribution).
        distribution: ``simple`` or ``cityscapes`` (see the module doc).

    Returns:
        The image paths written, per split.
    """
    if num_images is None:
        num_images = {'train': 8, 'val': 4, 'test': 2}
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f'unknown distribution {distribution!r}; choose '
                         f'from {DISTRIBUTIONS}')
    written: Dict[str, List[str]] = {}
    for split_idx, (split, n) in enumerate(sorted(num_images.items())):
        cities = CITIES[split]
        written[split] = []
        for i in range(n):
            rng = np.random.default_rng([seed, split_idx, i])
            city = cities[i % len(cities)]
            seq = i // len(cities)
            with_things = empty_every <= 0 or (i + 1) % empty_every != 0
            paths = write_sample(out_root, split, city, seq, 19, rng, width,
                                 height, with_things, things_range,
                                 distribution)
            written[split].append(paths['image'])
    return written


def make_benchmark_set(work_dir: str, num_images: int, width: int = 2048,
                       height: int = 1024, distribution: str = 'simple'
                       ) -> Tuple[str, Dict[str, str]]:
    """Train frames converted with both mask formats; reused if already
    there (one folder per distribution).

    ``simple`` frames have ~20 things drawn (about 14 visible);
    ``cityscapes`` frames the published per-frame counts.

    Returns:
        ``(cityscapes_root, {'rle': json, 'polygon': json})``.
    """
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
