"""Mini-Cityscapes: generated street scenes in the exact official layout.

Real Cityscapes needs a login, so tests and the demo run on scenes generated
here. Each scene is a list of labelled polygons (the ``gtFine_polygons.json``
format); the ground-truth PNGs are rendered from it by cityscapesscripts
itself, and the RGB image is drawn from the same polygons in the same order,
so images and labels agree pixel for pixel, occlusions included.
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
    'sky': (150, 190, 230), 'building': (120, 100, 90), 'road': (100, 100, 105),
    'sidewalk': (170, 140, 160), 'vegetation': (70, 120, 40),
    'pole': (140, 140, 140), 'traffic sign': (220, 210, 20),
    'ego vehicle': (20, 20, 20), 'out of roi': (0, 0, 0),
    'rectification border': (0, 0, 0),
}

Polygon = List[List[int]]


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
        pts = [[x - 0.12 * w, yb - h + head], [x - 0.15 * w, yb - h + 0.4 * head],
               [x, yb - h], [x + 0.15 * w, yb - h + 0.4 * head],
               [x + 0.12 * w, yb - h + head], [x + 0.5 * w, yb - h + 1.4 * head],
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


def make_scene(rng: np.random.Generator, width: int, height: int,
               with_things: bool = True,
               things_range: Tuple[int, int] = (3, 24)) -> List[dict]:
    """Random street scene as Cityscapes polygon objects, in drawing order.

    Stuff first (sky, buildings, road, sidewalks, poles), then group regions
    and things from far to near (so near things occlude far ones), then the
    void regions every real frame has (ego vehicle, rectification border).
    """
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
    for _ in range(rng.integers(0, 4)):
        px = rng.uniform(0, W)
        pw = max(2.0, W * 0.004)
        ptop = horizon * rng.uniform(0.2, 0.8)
        pbot = horizon + (H - horizon) * rng.uniform(0.05, 0.4)
        objs.append(_obj('pole', _box(px, ptop, px + pw, pbot)))
        objs.append(_obj('traffic sign', _box(px - 3 * pw, ptop,
                                              px + 4 * pw, ptop + 6 * pw)))

    things: List[Tuple[float, List[dict]]] = []
    if with_things:
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
                group.append(_obj(label, _thing_outline(label, cx, yb, h, rng)))
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
    """instanceIds (uint16) and labelIds (uint8), rendered by cityscapesscripts.
    """
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
                 things_range: Tuple[int, int] = (3, 24)) -> Dict[str, str]:
    """Generate and write one frame with its gtFine files."""
    paths = sample_paths(root, split, city, seq, frame)
    objs = make_scene(rng, width, height, with_things, things_range)
    image = render_image(objs, rng, width, height)
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
                         things_range: Tuple[int, int] = (3, 24)
                         ) -> Dict[str, List[str]]:
    """Write a mini Cityscapes tree under ``out_root``.

    Args:
        out_root: Folder that receives ``leftImg8bit/`` and ``gtFine/``.
        num_images: Images per split, e.g. ``{'train': 8, 'val': 4}``.
        width: Image width (real Cityscapes: 2048).
        height: Image height (real Cityscapes: 1024).
        seed: Same seed, same files (each frame has its own seeded stream).
        empty_every: Every n-th frame of a split has no things at all.
        things_range: Things per frame, drawn from ``[low, high)``.

    Returns:
        The image paths written, per split.
    """
    if num_images is None:
        num_images = {'train': 8, 'val': 4, 'test': 2}
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
                                 height, with_things, things_range)
            written[split].append(paths['image'])
    return written


def make_benchmark_set(work_dir: str, num_images: int, width: int = 2048,
                       height: int = 1024) -> Tuple[str, Dict[str, str]]:
    """Train frames with ~20 things each (about 14 visible), converted with
    both mask formats; reused if already there.

    Returns:
        ``(cityscapes_root, {'rle': json, 'polygon': json})``.
    """
    from .cityscapes_converter import ann_file_name, convert_cityscapes
    root = osp.join(work_dir, 'cityscapes')
    if not osp.isdir(osp.join(root, 'leftImg8bit')):
        make_mini_cityscapes(root, dict(train=num_images), width, height,
                             seed=0, empty_every=0, things_range=(15, 26))
    anns = {}
    for fmt in ('rle', 'polygon'):
        out = osp.join(work_dir, f'ann_{fmt}')
        anns[fmt] = osp.join(out, ann_file_name('train'))
        if not osp.isfile(anns[fmt]):
            convert_cityscapes(root, out, ['train'], fmt, progress=False)
    return root, anns
