"""Raw Cityscapes (``leftImg8bit`` + ``gtFine``) to COCO-style JSON.

Writes ``instancesonly_filtered_gtFine_{split}.json`` as mmdet's
``CityscapesDataset`` configs read them: the 8 evaluated thing classes
(Cityscapes label ids as category ids), ``*group`` regions as ``iscrowd=1``,
caravan/trailer left out. Masks: ``rle`` takes each region of
``*_gtFine_instanceIds.png`` bit for bit; ``polygon`` (default) draws
``*_gtFine_polygons.json`` exactly as those PNGs are drawn and traces the
visible pixels into polygons pycocotools fills to the same pixels, so mmdet
resizes and flips vertices instead of full-resolution bitmaps.
"""
import json
import logging
import multiprocessing
import os
import os.path as osp
import signal
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from glob import glob
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
from cityscapesscripts.helpers.labels import name2label
from PIL import Image, ImageDraw

from ..classes import (CLASSES, IMG_SUFFIX, INSTANCE_ID_FACTOR,
                       INSTANCE_IDS_SUFFIX, LABEL_IDS, POLYGONS_SUFFIX,
                       label_of_instance_id)
from ..errors import ConversionError
from ..fileio import check_writable, write_files_atomic
from .mask_polygons import mask_to_polygons

SPLITS = ('train', 'val', 'test')
# the ground-truth file each --mask-format reads
SOURCE_SUFFIX = {'polygon': POLYGONS_SUFFIX, 'rle': INSTANCE_IDS_SUFFIX}
Size = Tuple[int, int]


def ann_file_name(split: str) -> str:
    """File name of a split's converted annotations, as mmdet names it."""
    return f'instancesonly_filtered_gtFine_{split}.json'


def find_samples(root: str, split: str,
                 gt_suffix: Optional[str]) -> List[Tuple[str, Optional[str]]]:
    """Sorted ``(image, gtFine file)`` pairs of a split (``gt_suffix``
    None: gt None); ConversionError if a folder or partner is missing."""
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
    pairs = [(img, osp.join(gt_dir, osp.relpath(img, img_dir)
                            [:-len(IMG_SUFFIX)] + gt_suffix))
             for img in images]
    for img, gt in pairs:
        if not osp.isfile(gt):
            raise ConversionError(f'{img} has no annotation: expected {gt}')
    for gt in sorted(set(glob(osp.join(gt_dir, '*', '*' + gt_suffix))) -
                     {gt for _, gt in pairs}):  # the first without image
        rel = osp.relpath(gt, gt_dir)[:-len(gt_suffix)]
        raise ConversionError(f'{gt} has no image: expected '
                              f'{osp.join(img_dir, rel + IMG_SUFFIX)}')
    return pairs


def _check_size(path: str, size: Size, expected: Optional[Size] = None,
                image: Optional[str] = None) -> None:
    """Refuse a file of another size than its image's or too large to draw,
    before anything of that size is allocated."""
    if expected is not None and size != expected:
        raise ConversionError(
            f'{path} is {size[0]}x{size[1]} but its image {image} is '
            f'{expected[0]}x{expected[1]}')
    # the canvas takes 4 bytes a pixel: PIL's bomb limit (89 Mpx) bounds it
    if size[0] * size[1] > Image.MAX_IMAGE_PIXELS:
        raise ConversionError(
            f'{path} declares {size[0]}x{size[1]} pixels, more than '
            f'{Image.MAX_IMAGE_PIXELS} (PIL.Image.MAX_IMAGE_PIXELS); '
            'Cityscapes frames are 2048x1024: fix or remove the file')


def _image_size(path: str) -> Size:
    """Size of a PNG from its header; non-PNGs and bad sizes refused."""
    try:
        with warnings.catch_warnings():  # too large: refused below instead
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                size, fmt = im.size, im.format
    except Exception as e:
        raise ConversionError(f'cannot read image {path}: {e}') from None
    if fmt != 'PNG':
        raise ConversionError(
            f'{path} is a {fmt} file, not a PNG; Cityscapes images are PNGs: '
            're-download it, or convert it losslessly to PNG')
    _check_size(path, size)
    return size


def _draw_objects(objects: Sequence[Tuple[str, list]], width: int,
                  height: int, path: str) -> Tuple[np.ndarray, list]:
    """``(index image, [(object index, label tuple, is_group)])``: the
    polygons drawn as cityscapesscripts' ``createInstanceImage`` draws
    ``*_instanceIds.png`` (same PIL calls in file order, ids < 0 skipped),
    in colour object index + 1."""
    canvas = Image.new('I', (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    drawn = []
    for i, (label, points) in enumerate(objects):
        is_group = label not in name2label and label.endswith('group')
        ltuple = name2label.get(label[:-len('group')] if is_group else label)
        if ltuple is None:
            raise ConversionError(
                f'{path}: unknown label {label!r}; expected a name from '
                'cityscapesscripts.helpers.labels (e.g. "car", "cargroup")')
        if ltuple.id < 0:  # e.g. license plate: not drawn in the PNGs
            continue
        if len(points) < 2:  # cityscapesscripts can't draw it either
            raise ConversionError(
                f'{path}: a {label!r} object has a polygon of '
                f'{len(points)} point(s); fix it or mark it "deleted": 1')
        try:
            draw.polygon([(p[0], p[1]) for p in points], fill=i + 1)
        except Exception as e:
            raise ConversionError(
                f'{path}: bad polygon for {label!r} ({e})') from None
        drawn.append((i, ltuple, is_group))
    return np.asarray(canvas), drawn


def polygon_annotations(path: str, expected: Optional[Size] = None,
                        image: Optional[str] = None) -> List[dict]:
    """Annotations of one ``*_gtFine_polygons.json``: each evaluated
    object's visible pixels as polygons pycocotools fills exactly.
    ``expected``: size ``(width, height)`` of its image (path ``image``)."""
    try:
        with open(path) as f:
            data = json.load(f)
        width, height = int(data['imgWidth']), int(data['imgHeight'])
        parsed = [(o['label'], o['polygon']) for o in data['objects']
                  if not o.get('deleted', 0)]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConversionError(
            f'{path} is not a Cityscapes polygon file ({e}); expected JSON '
            'with imgWidth, imgHeight and objects[{label, polygon}]'
        ) from None
    _check_size(path, (width, height), expected, image)
    index, drawn = _draw_objects(parsed, width, height, path)
    anns = []
    for i, ltuple, is_group in drawn:
        if ltuple.id not in LABEL_IDS:
            continue
        # the object's pixels lie within a pixel of its vertices' box
        pts = np.asarray(parsed[i][1], float).reshape(-1, 2)
        x0, y0 = np.clip(np.floor(pts.min(0)).astype(int) - 1, 0, None)
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
        crop = index[y0:y1, x0:x1] == i + 1
        area = int(np.count_nonzero(crop))
        if area == 0:  # hidden by later objects or outside the image
            continue
        ys = np.flatnonzero(crop.any(axis=1))
        xs = np.flatnonzero(crop.any(axis=0))
        anns.append(dict(
            category_id=ltuple.id, iscrowd=int(is_group), area=float(area),
            bbox=[float(x0 + xs[0]), float(y0 + ys[0]),
                  float(xs[-1] + 1 - xs[0]), float(ys[-1] + 1 - ys[0])],
            segmentation=mask_to_polygons(crop, int(x0), int(y0))))
        if len(pts) < 3:  # kept as drawn (a line); reported by _coco_dict
            anns[-1]['_two_points'] = True
    return anns


def rle_annotations(path: str, expected: Optional[Size] = None,
                    image: Optional[str] = None) -> List[dict]:
    """Bit-exact RLE annotations of one ``*_gtFine_instanceIds.png``."""
    try:
        with Image.open(path) as im:
            _check_size(path, im.size, expected, image)  # before decoding
            inst = np.asarray(im, np.int32)
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f'cannot read PNG {path}: {e}') from None
    if inst.ndim != 2:
        raise ConversionError(
            f'{path}: expected a single-channel instance id image, got '
            f'shape {inst.shape}')
    anns = []
    for inst_id in np.unique(inst):
        # ids >= 1000 are label * 1000 + k; smaller ones are group regions
        label_id = label_of_instance_id(inst_id)
        if label_id not in LABEL_IDS:
            continue
        rle = mask_utils.encode(np.asfortranarray(inst == inst_id,
                                                  dtype=np.uint8))
        anns.append(dict(
            category_id=int(label_id),
            iscrowd=int(inst_id < INSTANCE_ID_FACTOR),
            area=float(mask_utils.area(rle)),
            bbox=[float(v) for v in mask_utils.toBbox(rle)],
            segmentation=dict(size=rle['size'],
                              counts=rle['counts'].decode())))
    return anns


# One frame to convert: (image path, ground-truth path or None, format).
Task = Tuple[str, Optional[str], str]
# image-only frames (a header read each) travel in batches of up to this
_LIGHT_BATCH = 64


def available_cores() -> int:
    """CPU cores this process may run on (affinity mask: taskset, cgroup
    cpusets, Slurm), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity: macOS, Windows
        return os.cpu_count() or 1


def resolve_nproc(nproc: int) -> Tuple[int, Optional[str]]:
    """``(workers, note)`` for ``--nproc`` (0: one per available core);
    more than the cores only adds switching: capped, and ``note`` says so.
    """
    if nproc < 0:
        raise ConversionError(
            f'--nproc must be >= 0 (0: one per core), got {nproc}')
    cores = available_cores()
    if nproc > cores:
        return cores, (f'--nproc {nproc} is more than the {cores} CPU cores '
                       f'this process may use; using {cores}')
    return nproc or cores, None


def _convert_one(task: Task) -> Tuple[dict, list]:
    img_path, gt_path, mask_format = task
    size = _image_size(img_path)
    reader = rle_annotations if mask_format == 'rle' else polygon_annotations
    anns = [] if gt_path is None else reader(gt_path, size, img_path)
    return dict(width=size[0], height=size[1]), anns


def _convert_unit(unit: List[Task]) -> List[Tuple[dict, list]]:
    return [_convert_one(task) for task in unit]


def _units(tasks: Sequence[Task], nproc: int) -> List[List[Task]]:
    """Frames, in order, as units for workers: one with ground truth
    (0.1-1 s) alone, so workers finish within a frame of each other;
    image-only ones in batches of at most ``_LIGHT_BATCH``, at least 4 per
    worker when there are enough."""
    n_light = sum(gt is None for _, gt, _ in tasks)
    size = max(1, min(_LIGHT_BATCH, n_light // (4 * nproc)))
    units: List[List[Task]] = []
    light: List[Task] = []
    for task in tasks:
        if task[1] is None:
            light.append(task)
        if light and (task[1] is not None or len(light) == size):
            units.append(light)
            light = []
        if task[1] is not None:
            units.append([task])
    return units + [light] if light else units


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group; the parent alone handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # one worker per core: OpenCV's own threads would only contend
    import cv2
    cv2.setNumThreads(1)


def worker_pool(nproc: int) -> ProcessPoolExecutor:
    """Workers forked from a ``forkserver`` that imported this module once
    (no torch/mmdet): they start in milliseconds. Plain ``fork`` of a
    threaded parent (torch) can deadlock; without ``forkserver`` (Windows)
    they are spawned. Both re-import ``__main__``: keep scripts light."""
    if 'forkserver' in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context('forkserver')
        # only once the server runs does this list stop mattering
        ctx.set_forkserver_preload([__name__])
    else:
        ctx = multiprocessing.get_context('spawn')
    return ProcessPoolExecutor(nproc, mp_context=ctx, initializer=_init_worker)


def _run_tasks(tasks: Sequence[Task], nproc: int,
               progress: bool) -> List[Tuple[dict, list]]:
    """Convert frames in order, in ``nproc`` worker processes (1: here)."""
    nproc = max(1, min(resolve_nproc(nproc)[0], len(tasks)))
    units = _units(tasks, nproc)
    nproc = min(nproc, len(units))
    bar = None
    if progress:
        from tqdm import tqdm

        # disable=None: a bar on terminals only, not in logs / CI
        bar = tqdm(total=len(tasks), desc='converting', unit='img',
                   disable=None)
    results: List[Tuple[dict, list]] = []
    pool = worker_pool(nproc) if nproc > 1 else None
    try:
        # held here: a closed map() would cancel the queued frames itself
        done = (pool.map if pool else map)(_convert_unit, units)
        for unit_results in done:
            results.extend(unit_results)
            if bar is not None:
                bar.update(len(unit_results))
    except BrokenProcessPool:
        raise ConversionError(
            'a converter worker process died (out of memory?); run again '
            'with a smaller --nproc') from None
    finally:
        if pool is not None:
            # an error leaves queued frames unconverted: don't wait for them
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return results


def _coco_dict(root: str, split: str,
               pairs: Sequence[Tuple[str, Optional[str]]],
               results: Iterable[Tuple[dict, list]]) -> dict:
    img_dir = osp.join(root, 'leftImg8bit', split)
    images, annotations, two_points = [], [], []
    for img_id, ((img, gt), (info, anns)) in enumerate(zip(pairs, results)):
        rel = osp.relpath(img, img_dir)
        info.update(id=img_id, file_name=rel)
        if gt is not None:
            info['segm_file'] = rel[:-len(IMG_SUFFIX)] + INSTANCE_IDS_SUFFIX
        images.append(info)
        for ann in anns:
            if ann.pop('_two_points', False):
                two_points.append(gt)
            ann.update(id=len(annotations) + 1, image_id=img_id)
            annotations.append(ann)
    if two_points:
        # kept as the line cityscapesscripts draws (0-1 points: refused)
        logging.getLogger(__name__).warning(
            f'note: {len(two_points)} {split} objects have a polygon of 2 '
            f'points (first in {two_points[0]}); kept as the line of pixels '
            'cityscapesscripts draws for them in *_instanceIds.png')
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i, name=n)
                            for n, i in zip(CLASSES, LABEL_IDS)])


def convert_splits(root: str, splits: Sequence[str],
                   mask_format: str = 'polygon', nproc: int = 1,
                   progress: bool = True) -> Dict[str, dict]:
    """The COCO-style dict of each split (nothing is written).

    All splits' files are paired first (a missing file fails before any
    work), then one pool converts them all; the result is the same for
    any ``nproc`` (0: one per core; 1: no workers). The test split has no
    public ground truth: only its image list (``--format-only``).
    ``progress``: a bar, on terminals only.
    """
    if mask_format not in SOURCE_SUFFIX:
        raise ConversionError(
            f'unknown mask format {mask_format!r}; use polygon or rle')
    pairs = {s: find_samples(root, s, None if s == 'test' else
                             SOURCE_SUFFIX[mask_format]) for s in splits}
    tasks = [(img, gt, mask_format) for s in splits for img, gt in pairs[s]]
    # each split's zip(pairs, results) takes its frames off the shared iterator
    results = iter(_run_tasks(tasks, nproc, progress))
    return {s: _coco_dict(root, s, pairs[s], results) for s in splits}


def convert_cityscapes(root: str, out_dir: str,
                       splits: Sequence[str] = SPLITS,
                       mask_format: str = 'polygon', nproc: int = 1,
                       progress: bool = True) -> Dict[str, str]:
    """:func:`convert_splits` written to ``out_dir/`` (:func:`ann_file_name`);
    returns the paths by split. Outputs are checked writable first and
    written all or none: a bad file, a full disk or Ctrl-C leaves none."""
    if not osp.isdir(root):
        raise ConversionError(
            f'Cityscapes root {root} does not exist (expected a folder with '
            'leftImg8bit/ and gtFine/)')
    for sub in ('leftImg8bit', 'gtFine'):
        if not osp.isdir(osp.join(root, sub)):
            raise ConversionError(
                f'{osp.join(root, sub)} is missing: a Cityscapes root holds '
                'leftImg8bit/ and gtFine/')
    if bad := [s for s in splits if s not in SPLITS]:
        raise ConversionError(f'unknown split(s) {bad}; choose from {SPLITS}')
    written = {s: osp.join(out_dir, ann_file_name(s)) for s in splits}
    for path in written.values():  # before the work, not after it
        check_writable(path, what='output')
    converted = convert_splits(root, splits, mask_format, nproc, progress)
    write_files_atomic({written[s]: json.dumps(coco).encode()
                        for s, coco in converted.items()})
    return written
