"""Raw Cityscapes (``leftImg8bit`` + ``gtFine``) to COCO-style JSON.

Writes ``instancesonly_filtered_gtFine_{split}.json``, the files mmdet's
``CityscapesDataset`` configs read: the 8 evaluated thing classes with their
Cityscapes label ids as category ids, group regions (``cargroup``, ...) as
``iscrowd=1``, caravan/trailer left out.

Two mask formats:

* ``rle``: each instance's region taken from ``*_gtFine_instanceIds.png``,
  bit-identical to the PNG (mmdet's own converter does this too).
* ``polygon`` (default): polygons from ``*_gtFine_polygons.json`` with
  occlusions resolved as the PNGs are drawn (a later polygon covers earlier
  ones). mmdet then resizes and flips vertices instead of full-resolution
  bitmaps, which is what makes the training pipeline fast.
"""
import json
import multiprocessing
import os.path as osp
from glob import glob
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
from cityscapesscripts.helpers.labels import name2label
from PIL import Image
from shapely.geometry import MultiLineString, Polygon, box
from shapely.ops import split, unary_union
from shapely.validation import make_valid

from ..classes import (CLASSES, IMG_SUFFIX, INSTANCE_ID_FACTOR,
                       INSTANCE_IDS_SUFFIX, LABEL_IDS, POLYGONS_SUFFIX,
                       label_of_instance_id)
from ..errors import CitymaskError, ConversionError
from ..fileio import dump_json_atomic

SPLITS = ('train', 'val', 'test')
# the ground-truth file each --mask-format reads
GT_SUFFIX = {'polygon': POLYGONS_SUFFIX, 'rle': INSTANCE_IDS_SUFFIX}


def ann_file_name(split: str) -> str:
    """File name of a split's converted annotations, as mmdet names it."""
    return f'instancesonly_filtered_gtFine_{split}.json'


def _categories() -> List[dict]:
    return [dict(id=i, name=n) for n, i in zip(CLASSES, LABEL_IDS)]


def find_samples(root: str, split: str,
                 gt_suffix: Optional[str]) -> List[Tuple[str, Optional[str]]]:
    """Pair every image of a split with its gtFine file.

    Args:
        root: Cityscapes root holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``train``, ``val`` or ``test``.
        gt_suffix: Suffix of the gtFine file to pair, or None (images only).

    Returns:
        Sorted ``(image_path, gt_path)`` pairs.

    Raises:
        ConversionError: a folder is missing or a file has no partner.
    """
    img_dir = osp.join(root, 'leftImg8bit', split)
    gt_dir = osp.join(root, 'gtFine', split)
    if not osp.isdir(img_dir):
        raise ConversionError(
            f'{img_dir} does not exist: expected the Cityscapes layout '
            f'ROOT/leftImg8bit/{split}/CITY/*{IMG_SUFFIX} '
            '(unpack leftImg8bit_trainvaltest.zip into ROOT)')
    images = sorted(glob(osp.join(img_dir, '*', '*' + IMG_SUFFIX)))
    if not images:
        raise ConversionError(f'no *{IMG_SUFFIX} images under {img_dir}')
    if gt_suffix is None:
        return [(p, None) for p in images]
    if not osp.isdir(gt_dir):
        raise ConversionError(
            f'{gt_dir} does not exist: expected ROOT/gtFine/{split}/CITY/'
            f'*{gt_suffix} (unpack gtFine_trainvaltest.zip into ROOT)')
    pairs = []
    for img in images:
        rel = osp.relpath(img, img_dir)[:-len(IMG_SUFFIX)]
        gt = osp.join(gt_dir, rel + gt_suffix)
        if not osp.isfile(gt):
            raise ConversionError(
                f'{img} has no annotation: expected {gt}')
        pairs.append((img, gt))
    expected = {gt for _, gt in pairs}
    for gt in sorted(glob(osp.join(gt_dir, '*', '*' + gt_suffix))):
        if gt not in expected:
            rel = osp.relpath(gt, gt_dir)[:-len(gt_suffix)]
            raise ConversionError(
                f'{gt} has no image: expected '
                f'{osp.join(img_dir, rel + IMG_SUFFIX)}')
    return pairs


def _image_size(path: str) -> Tuple[int, int]:
    try:
        with Image.open(path) as im:  # reads the header only
            return im.size
    except Exception as e:
        raise ConversionError(f'cannot read image {path}: {e}') from None


def _resolve_label(label: str, path: str) -> Tuple[object, bool]:
    """Cityscapes label tuple of a polygon's label and whether it's a group.
    """
    is_group = label not in name2label and label.endswith('group')
    name = label[:-len('group')] if is_group else label
    if name not in name2label:
        raise ConversionError(
            f'{path}: unknown label {label!r}; expected a name from '
            'cityscapesscripts.helpers.labels (e.g. "car", "cargroup")')
    return name2label[name], is_group


def _to_shape(points: Sequence[Sequence[float]]):
    """A polygon in pixel-index coordinates as pycocotools should see it.

    PIL (which renders the instanceIds PNGs) fills every pixel whose index
    lies inside or on the polygon; pycocotools fills pixels whose centre
    (i + 0.5) lies inside. Shifting by +0.5 and dilating by half a pixel
    makes the two agree (measured on generated data: mean IoU 0.99).
    """
    pts = np.asarray(points, float).reshape(-1, 2) + 0.5
    if len(pts) < 3:
        return Polygon()
    return make_valid(Polygon(pts)).buffer(0.5, join_style=2, mitre_limit=2)


def _polygons(geom) -> List[Polygon]:
    if geom.is_empty:
        return []
    if geom.geom_type == 'Polygon':
        return [geom]
    return [p for g in getattr(geom, 'geoms', []) for p in _polygons(g)]


def _without_holes(poly: Polygon) -> List[Polygon]:
    """Cut a polygon with holes into pieces without holes.

    COCO polygons cannot express holes (an occluder inside an object), so
    cut vertically through every hole: each hole becomes a notch.
    """
    if not poly.interiors:
        return [poly]
    _, y0, _, y1 = poly.bounds
    cuts = MultiLineString([
        [(h.representative_point().x, y0 - 1),
         (h.representative_point().x, y1 + 1)]
        for h in (Polygon(r) for r in poly.interiors)])
    return [q for piece in _polygons(split(poly, cuts))
            for q in _without_holes(piece)]


def _coco_polygons(geom, width: int, height: int) -> List[List[float]]:
    geom = geom.intersection(box(0, 0, width, height))
    out = []
    for poly in _polygons(geom):
        for piece in _without_holes(poly):
            if piece.area < 1e-3:
                continue
            coords = np.asarray(piece.exterior.coords)[:-1]
            out.append(np.round(coords, 2).ravel().tolist())
    return out


def _annotation(segm, width: int, height: int, label_id: int,
                iscrowd: bool) -> Optional[dict]:
    rle = segm if isinstance(segm, dict) else mask_utils.merge(
        mask_utils.frPyObjects(segm, height, width))
    area = float(mask_utils.area(rle))
    if area == 0:
        return None
    if isinstance(segm, dict):
        segm = dict(size=segm['size'], counts=segm['counts'].decode())
    return dict(category_id=label_id, iscrowd=int(iscrowd), area=area,
                bbox=[float(v) for v in mask_utils.toBbox(rle)],
                segmentation=segm)


def polygon_annotations(path: str) -> Tuple[Tuple[int, int], List[dict]]:
    """Annotations of one ``*_gtFine_polygons.json``, occlusion resolved."""
    try:
        with open(path) as f:
            data = json.load(f)
        width, height = int(data['imgWidth']), int(data['imgHeight'])
        objects = [o for o in data['objects'] if not o.get('deleted', 0)]
        parsed = [(o['label'], o['polygon']) for o in objects]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConversionError(
            f'{path} is not a Cityscapes polygon file ({e}); expected JSON '
            'with imgWidth, imgHeight and objects[{label, polygon}]'
        ) from None
    wanted = set(LABEL_IDS)
    anns = []
    covered = []  # everything drawn after the current object
    for label, points in reversed(parsed):
        ltuple, is_group = _resolve_label(label, path)
        if ltuple.id < 0:  # e.g. license plate: not drawn in the PNGs
            continue
        try:
            shape = _to_shape(points)
        except Exception as e:
            raise ConversionError(
                f'{path}: bad polygon for {label!r} ({e})') from None
        if ltuple.id in wanted and not shape.is_empty:
            visible = (shape.difference(unary_union(covered))
                       if covered else shape)
            polys = _coco_polygons(visible, width, height)
            ann = polys and _annotation(polys, width, height, ltuple.id,
                                        is_group)
            if ann:
                anns.append(ann)
        covered.append(shape)
        if len(covered) > 16:  # keep the union cheap to subtract
            covered = [unary_union(covered)]
    return (width, height), anns[::-1]


def rle_annotations(path: str) -> Tuple[Tuple[int, int], List[dict]]:
    """Annotations of one ``*_gtFine_instanceIds.png``, bit-exact RLE."""
    try:
        with Image.open(path) as im:
            inst = np.asarray(im, np.int32)
    except Exception as e:
        raise ConversionError(f'cannot read PNG {path}: {e}') from None
    if inst.ndim != 2:
        raise ConversionError(
            f'{path}: expected a single-channel instance id image, got '
            f'shape {inst.shape}')
    height, width = inst.shape
    wanted = set(LABEL_IDS)
    anns = []
    for inst_id in np.unique(inst):
        # ids >= 1000 are label * 1000 + k; smaller ones are group regions
        label_id = label_of_instance_id(inst_id)
        if label_id not in wanted:
            continue
        rle = mask_utils.encode(np.asfortranarray(inst == inst_id,
                                                  dtype=np.uint8))
        anns.append(_annotation(rle, width, height, int(label_id),
                                inst_id < INSTANCE_ID_FACTOR))
    return (width, height), anns


def _convert_one(task: Tuple[str, Optional[str], str]) -> Tuple[dict, list]:
    img_path, gt_path, mask_format = task
    size = _image_size(img_path)
    anns = []
    if gt_path is not None:
        reader = (rle_annotations if mask_format == 'rle' else
                  polygon_annotations)
        gt_size, anns = reader(gt_path)
        if gt_size != size:
            raise ConversionError(
                f'{gt_path} is {gt_size[0]}x{gt_size[1]} but its image '
                f'{img_path} is {size[0]}x{size[1]}')
    return dict(width=size[0], height=size[1]), anns


def convert_split(root: str,
                  split: str,
                  mask_format: str = 'polygon',
                  nproc: int = 1,
                  progress: bool = True) -> dict:
    """Convert one split to a COCO-style dict (nothing is written).

    The test split has no public ground truth: only its image list is
    converted (for ``--format-only`` submissions).
    """
    if mask_format not in GT_SUFFIX:
        raise ConversionError(
            f'unknown mask format {mask_format!r}; use polygon or rle')
    gt_suffix = None if split == 'test' else GT_SUFFIX[mask_format]
    pairs = find_samples(root, split, gt_suffix)
    tasks = [(img, gt, mask_format) for img, gt in pairs]
    img_dir = osp.join(root, 'leftImg8bit', split)
    results: Iterable
    if nproc > 1:
        pool = multiprocessing.get_context('spawn').Pool(nproc)
        results = pool.imap(_convert_one, tasks, chunksize=4)
    else:
        pool, results = None, map(_convert_one, tasks)
    if progress:
        from tqdm import tqdm

        # disable=None: a bar on terminals only, not in logs / CI
        results = tqdm(results, total=len(tasks), desc=f'{split}',
                       unit='img', disable=None)
    images, annotations = [], []
    try:
        for img_id, ((img, gt), (info, anns)) in enumerate(
                zip(pairs, results)):
            rel = osp.relpath(img, img_dir)
            info.update(id=img_id, file_name=rel)
            if gt is not None:
                info['segm_file'] = rel[:-len(IMG_SUFFIX)] + GT_SUFFIX['rle']
            images.append(info)
            for ann in anns:
                ann.update(id=len(annotations) + 1, image_id=img_id)
                annotations.append(ann)
    finally:
        if pool is not None:
            pool.terminate()
    return dict(images=images, annotations=annotations,
                categories=_categories())


def convert_cityscapes(root: str,
                       out_dir: str,
                       splits: Sequence[str] = SPLITS,
                       mask_format: str = 'polygon',
                       nproc: int = 1,
                       progress: bool = True) -> Dict[str, str]:
    """Convert splits of a Cityscapes tree and write one JSON per split.

    Every split is converted before anything is written, so a bad file in
    any split leaves no output behind. Each JSON is written atomically.

    Returns:
        Path of the written JSON per split.
    """
    if not osp.isdir(root):
        raise ConversionError(
            f'Cityscapes root {root} does not exist (expected a folder with '
            'leftImg8bit/ and gtFine/)')
    for sub in ('leftImg8bit', 'gtFine'):
        if not osp.isdir(osp.join(root, sub)):
            raise ConversionError(
                f'{osp.join(root, sub)} is missing: a Cityscapes root holds '
                'leftImg8bit/ and gtFine/')
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConversionError(f'unknown split(s) {bad}; choose from {SPLITS}')
    converted = {s: convert_split(root, s, mask_format, nproc, progress)
                 for s in splits}
    written = {}
    for split_name, coco in converted.items():
        path = osp.join(out_dir, ann_file_name(split_name))
        dump_json_atomic(coco, path)
        written[split_name] = path
    return written
