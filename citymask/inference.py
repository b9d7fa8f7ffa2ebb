"""Inference on your own images and videos: mmdet's ``DetInferencer`` with
citymask's loading, drawing and outputs, in ``out_dir``: ``vis/NAME.jpg``
(overlays), ``preds/NAME.json`` (``{"file_name", "height", "width",
"instances"}``, each a COCO result with the Cityscapes *label* id as
``category_id``, ``label_name``, ``bbox`` ``[x, y, w, h]``, RLE
``segmentation``) and with ``cityscapes_format`` ``cityscapes/`` (the
official results format, every prediction: AP needs the low scores). NAME:
the path below a searched folder, else the stem; arrays are numbered.
"""
import json
import os
import os.path as osp
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from itertools import islice, takewhile
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmdet.apis import DetInferencer
from mmdet.apis.det_inferencer import IMG_EXTENSIONS
from mmdet.registry import DATASETS, MODELS, TRANSFORMS
from mmdet.utils import get_test_pipeline_cfg
from mmengine.dataset import Compose, pseudo_collate

from .checkpoint import load_checkpoint_file, split_checkpoint, strip_prefix
from .classes import NAME_TO_LABEL_ID
from .config import dataset_of, load_config
from .errors import CitymaskError
from .evaluation.results_format import write_frame
from .fileio import (atomic_dir, check_writable, dump_json_atomic,
                     write_bytes_atomic)
from .models.box_masks import BoxMasks
from .preflight import check_state_dict

VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg')


def find_inputs(specs: Sequence[str],
                exclude: str = '') -> Tuple[List[dict], List[str]]:
    """The images (``{'img_path', 'name'}``) and videos in ``specs``: files,
    and folders searched recursively but for hidden folders and ``exclude``
    (the output folder, holding an earlier run's overlays)."""
    images, videos, skip = [], [], exclude and osp.realpath(exclude)
    for spec in specs:
        for root, dirs, files in os.walk(spec):
            dirs[:] = sorted(d for d in dirs if not d.startswith('.') and
                             osp.realpath(osp.join(root, d)) != skip)
            images += [dict(img_path=osp.join(root, f), name=osp.splitext(
                osp.relpath(osp.join(root, f), spec))[0]) for f in sorted(
                    files) if osp.splitext(f)[1].lower() in IMG_EXTENSIONS]
        if osp.isfile(spec):
            video = osp.splitext(spec)[1].lower() in VIDEO_EXTS
            (videos.append(spec) if video else images.append(dict(
                img_path=spec, name=osp.splitext(osp.basename(spec))[0])))
        elif not osp.isdir(spec):
            raise CitymaskError(f'input {spec} does not exist')
    names = sorted(i['name'] for i in images)
    twice = [a for a, b in zip(names, names[1:]) if a == b]
    if twice or not (images or videos):
        raise CitymaskError(
            f'two inputs would be written as {twice[0]}; rename one' if twice
            else f'no images ({", ".join(IMG_EXTENSIONS)}) in {specs}')
    return images, videos


class CityscapesInferencer(DetInferencer):
    """``DetInferencer`` with weights-only loading (``weights`` must fit the
    model), OpenCV drawing, label-id JSON and ``cityscapes_format``."""

    postprocess_kwargs = DetInferencer.postprocess_kwargs | {
        'cityscapes_format'}

    def __init__(self, model, weights: str, device: str = 'cpu',
                 show_progress: bool = False) -> None:
        super().__init__(model, weights, device, show_progress=show_progress)
        meta = self.model.dataset_meta
        self.classes, self.score_thr = tuple(meta['classes']), 0.3
        if not set(self.classes) <= set(NAME_TO_LABEL_ID):
            raise CitymaskError(f'{self.classes}: not Cityscapes classes')
        self.label_ids = [NAME_TO_LABEL_ID[c] for c in self.classes]
        self.bgr = [tuple(int(v) for v in c[::-1]) for c in meta['palette']]

    def _init_model(self, cfg, weights: str, device: str):
        state = split_checkpoint(load_checkpoint_file(weights))[0]
        state, model = strip_prefix(state), MODELS.build(cfg.model)
        check_state_dict(model, state, weights, cfg.filename)
        model.load_state_dict(state)
        model.cfg = cfg
        model.dataset_meta = DATASETS.build(
            dict(dataset_of(cfg.test_dataloader), lazy_init=True)).metainfo
        try:
            return model.to(device).eval()
        except (RuntimeError, AssertionError) as e:  # not a device here
            raise CitymaskError(f'--device {device}: {e}') from None

    def _init_pipeline(self, cfg):
        # the loader runs in _load: each image is decoded once for the
        # model and the drawing (DetInferencer.visualize reads it again)
        steps = get_test_pipeline_cfg(cfg)
        self._loader = TRANSFORMS.build(steps[0])
        return Compose(steps[1:])

    def _init_collate(self, cfg):  # mmengine's looks it up with a warning
        return pseudo_collate

    def _init_visualizer(self, cfg):  # draw_predictions draws
        return None

    def _load(self, item):
        """A path, an array or ``{'img_path' or 'img', 'name', ...}``
        decoded and through the test pipeline."""
        if not isinstance(item, dict):
            self.num_predicted_imgs += 1  # arrays are numbered, as in mmdet
            item = (dict(img_path=item, name=osp.splitext(osp.basename(
                item))[0]) if isinstance(item, str) else
                dict(img=item, name=f'{self.num_predicted_imgs - 1:08d}'))
        img = item.get('img')
        try:
            img = self._loader(item.copy())['img'] if img is None else img
        except Exception:
            raise CitymaskError(f'cannot read image {item["img_path"]} (not '
                                'an image, or corrupt); fix or remove it and '
                                'run again') from None
        data = self.pipeline(dict(img=img, img_shape=img.shape[:2],
                                  ori_shape=img.shape[:2]))
        data['data_samples'].set_metainfo(dict(name=item['name'], file_name=(
            item.get('file_name', item.get('img_path')))))
        return img, data

    def preprocess(self, inputs: list, batch_size: int = 1, **kwargs):
        """Batches of (images, collated data): the next batch is decoded and
        through the test pipeline in a thread while the model runs."""
        chunks = [inputs[i:i + batch_size]
                  for i in range(0, len(inputs), batch_size)]
        with ThreadPoolExecutor(1) as pool:
            ahead = chunks and pool.submit(list, map(self._load, chunks[0]))
            for k in range(len(chunks)):
                images, data = zip(*ahead.result())
                if k + 1 < len(chunks):
                    ahead = pool.submit(list, map(self._load, chunks[k + 1]))
                yield list(images), pseudo_collate(list(data))

    def visualize(self, inputs, preds, return_vis: bool = False,
                  pred_score_thr: float = 0.3, no_save_vis: bool = False,
                  img_out_dir: str = '', **kwargs) -> Optional[list]:
        """BGR overlays; ``vis/NAME.jpg`` (JPEG: a PNG takes ~10x longer to
        encode than the drawing)."""
        out_dir = '' if no_save_vis else img_out_dir
        self.score_thr = pred_score_thr  # the JSON keeps what is drawn
        vis = [draw_predictions(img, s.pred_instances.numpy(), self.classes,
                                self.bgr, pred_score_thr)
               for img, s in zip(inputs, preds) if out_dir or return_vis]
        for image, sample in zip(vis if out_dir else [], preds):
            write_bytes_atomic(cv2.imencode('.jpg', image, [
                cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(),
                osp.join(out_dir, 'vis', sample.name + '.jpg'))
        return vis if return_vis else None

    def postprocess(self, preds, visualization=None,
                    return_datasamples: bool = False,
                    print_result: bool = False, no_save_pred: bool = False,
                    pred_out_dir: str = '', cityscapes_format: bool = False,
                    **kwargs) -> dict:
        results = []
        for sample in preds:
            pred = sample.pred_instances.numpy()
            results.append(prediction_json(pred, sample.file_name,
                                           self.label_ids, self.classes,
                                           self.score_thr))
            if pred_out_dir and not no_save_pred:
                dump_json_atomic(results[-1], osp.join(
                    pred_out_dir, 'preds', sample.name + '.json'))
            if pred_out_dir and cityscapes_format:
                write_frame(
                    osp.join(pred_out_dir, 'cityscapes'), osp.basename(
                        sample.name) + '.png', sample.ori_shape,
                    [self.label_ids[i] for i in pred.labels],
                    pred.scores.tolist(), BoxMasks.of(pred.masks).to_crops(),
                    dict(zip(self.label_ids, self.classes)))
            if print_result:
                print(json.dumps(results[-1]))
        return dict(predictions=preds if return_datasamples else results,
                    visualization=visualization)


def draw_predictions(image: np.ndarray, pred, classes: Sequence[str],
                     palette: Sequence[Tuple[int, int, int]],
                     score_thr: float = 0.0, alpha: float = 0.5) -> np.ndarray:
    """A copy of the BGR image with the masks, boxes and ``class score``
    labels of ``pred`` (``pred_instances`` as numpy, masks full or
    ``BoxMasks``) scoring at least ``score_thr``; ``palette``: BGR by class.
    OpenCV: ~50x faster than mmdet's matplotlib ``DetLocalVisualizer``."""
    out, w, side = image.copy(), image.shape[1], min(image.shape[:2])
    thick, font_scale = max(1, round(side / 400)), max(0.35, side / 1000)
    keep = np.flatnonzero(pred.scores >= score_thr)
    # lowest score first: the surest instances end on top
    keep = keep[np.argsort(pred.scores[keep], kind='stable')]
    labels, masks = [], BoxMasks.of(pred.masks)
    for i in keep:
        color = palette[int(pred.labels[i])]
        (x, y), sub = masks.offsets[i], masks.crops[i]
        roi = out[y:y + sub.shape[0], x:x + sub.shape[1]]
        roi[sub] = (roi[sub] * (1 - alpha) +
                    np.array(color, np.float32) * alpha).astype(np.uint8)
        x0, y0, x1, y1 = (int(round(v)) for v in pred.bboxes[i])
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thick)
        labels.append((f'{classes[int(pred.labels[i])]} {pred.scores[i]:.2f}',
                       x0, y0, color))
    for text, x0, y0, color in labels:  # last, so no mask covers them
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                         font_scale, 1)
        x0 = min(max(x0, 0), max(w - tw, 0))
        top = y0 - th - base if y0 - th - base >= 0 else y0
        cv2.rectangle(out, (x0, top), (x0 + tw, top + th + base), color,
                      cv2.FILLED)
        cv2.putText(out, text, (x0, top + th), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def prediction_json(pred, file_name: Optional[str], label_ids: Sequence[int],
                    classes: Sequence[str], score_thr: float = 0.0) -> dict:
    """One image's predictions (``pred_instances`` as numpy) scoring at
    least ``score_thr`` as JSON (the module docstring)."""
    masks = BoxMasks.of(pred.masks)
    (h, w), instances = masks.size, []
    for i in np.flatnonzero(pred.scores >= score_thr):
        x0, y0, x1, y1 = (round(float(v), 2) for v in pred.bboxes[i])
        instances.append(dict(
            category_id=label_ids[int(pred.labels[i])],
            label_name=classes[int(pred.labels[i])],
            score=round(float(pred.scores[i]), 5),
            bbox=[x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
            segmentation=masks[int(i)]))
    return dict(file_name=file_name, height=int(h), width=int(w),
                instances=instances)


def infer_video(inferencer: CityscapesInferencer, path: str, out_dir: str,
                batch_size: int = 1, no_save_vis: bool = False,
                **kwargs) -> int:
    """``vis/STEM.mp4`` (the annotated video) and one
    ``preds/STEM/STEM_NNNNNN.json`` per frame; returns the frame count."""
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')  # FFmpeg's lines
    cap, stem = cv2.VideoCapture(path), osp.splitext(osp.basename(path))[0]
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = None
    if out_dir and not no_save_vis:
        os.makedirs(osp.join(out_dir, 'vis'), exist_ok=True)
        writer = cv2.VideoWriter(osp.join(out_dir, 'vis', stem + '.mp4'),
                                 cv2.VideoWriter_fourcc(*'mp4v'),
                                 cap.get(cv2.CAP_PROP_FPS) or 25.0, size)
    frames = (f for _, f in takewhile(lambda r: r[0], iter(cap.read, None)))
    n = 0
    while batch := list(islice(frames, batch_size)):
        for frame in inferencer(
                [dict(img=f, name=f'{stem}/{stem}_{n + i:06d}', file_name=(
                    f'{path}#{n + i}')) for i, f in enumerate(batch)],
                batch_size=batch_size, out_dir=out_dir, no_save_vis=True,
                return_vis=writer is not None, **kwargs)['visualization']:
            writer.write(cv2.resize(frame, size))  # a stream may resize
        n += len(batch)
    cap.release()
    if writer is not None:
        writer.release()
    if not n:
        raise CitymaskError(
            f'cannot open video {path} (not a video OpenCV can decode, or no '
            'frames); convert it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`, '
            'or extract its frames and pass the folder')
    return n


def run_inference(inputs: Sequence[str], config: str, checkpoint: str,
                  out_dir: str = 'outputs', *, overwrite: bool = False,
                  batch_size: int = 1, device: str = 'cpu',
                  cfg_options: Optional[dict] = None,
                  **kwargs) -> Tuple[int, float]:
    """``tools/infer.py``: ``inputs`` through a :class:`CityscapesInferencer`
    (``kwargs``: its call's) into ``out_dir`` ('': nowhere), written as a
    whole (a bad image, a full disk or Ctrl-C leaves none of it).
    Returns ``(images, seconds)``."""
    kwargs.setdefault('no_save_pred', False)  # DetInferencer's default: True
    if batch_size < 1 or not 0 <= kwargs.get('pred_score_thr', 0.3) <= 1:
        raise CitymaskError('--batch-size must be at least 1 and '
                            '--pred-score-thr between 0 and 1')
    images, videos = find_inputs(inputs, exclude=out_dir)
    inside = [p for p in [i['img_path'] for i in images] + videos if out_dir
              and osp.realpath(p).startswith(osp.realpath(out_dir) + os.sep)]
    if inside:
        raise CitymaskError(f'input {inside[0]} is inside --out-dir '
                            f'{out_dir}, which is replaced as a whole')
    if out_dir:  # before the model loads
        check_writable(out_dir, 'dir', '--out-dir', overwrite)
    inferencer = CityscapesInferencer(load_config(config, cfg_options),
                                      checkpoint, device,
                                      show_progress=sys.stdout.isatty())
    start = time.perf_counter()
    try:
        with (atomic_dir(out_dir, overwrite, '--out-dir') if out_dir
              else nullcontext('')) as tmp:
            if images:
                inferencer(images, batch_size=batch_size, out_dir=tmp,
                           **kwargs)
            inferencer.show_progress = False
            n = len(images) + sum(infer_video(inferencer, v, tmp, batch_size,
                                              **kwargs) for v in videos)
    except OSError as e:
        e.filename = out_dir  # not a file of the deleted temporary folder
        raise
    return n, time.perf_counter() - start
