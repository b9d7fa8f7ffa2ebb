"""Inference on your own images and videos: overlays, JSON, results format.

What ``tools/infer.py`` does, with the conventions users know from mmdet's
``demo/image_demo.py`` (``OUT/vis/`` overlays, ``OUT/preds/`` JSON) and
detectron2's ``demo/demo.py`` (the input is an image, a folder, a glob or a
video). Per image:

* ``OUT/vis/NAME.jpg``: the image with masks, boxes, class names and
  scores in the Cityscapes palette (``CityscapesDataset.METAINFO``);
* ``OUT/preds/NAME.json``: ``{"file_name", "height", "width",
  "instances": [{"category_id", "label_name", "score", "bbox",
  "segmentation"}]}``, each instance a COCO result (``bbox`` ``[x, y, w,
  h]``, ``segmentation`` a COCO RLE from pycocotools, ``category_id`` the
  Cityscapes label id, as in the converted annotations);
* with ``cityscapes_format``, ``OUT/cityscapes/``: the official results
  format (:func:`~citymask.evaluation.results_format.write_frame`).

A video gives ``OUT/vis/STEM.mp4`` (OpenCV's writer) and one JSON per
frame in ``OUT/preds/STEM/``. Images go through the config's test
pipeline and ``model.test_step`` in batches (mmdet's ``inference_detector``
runs one image at a time). Every file is written atomically, so a run
stopped by a bad image keeps complete outputs for the images before it.

Nothing heavy is imported at module level: bad inputs (missing files, an
unwritable output folder, a video that doesn't open) are reported before
torch and mmdet load.
"""
import glob
import os
import os.path as osp
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .classes import NAME_TO_LABEL_ID
from .errors import CitymaskError
from .fileio import check_writable, dump_json_atomic, write_bytes_atomic

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg',
              '.mpeg', '.wmv')
# (fourcc, extension): mp4v in .mp4 plays everywhere; OpenCV's own MJPG
# writer in .avi works in every build, in case FFmpeg's can't open
VIDEO_CODECS = (('mp4v', '.mp4'), ('MJPG', '.avi'))


class Inputs:
    """What INPUT names: image paths with their output names, or a video.

    Attributes:
        images: Image paths (empty for a video).
        names: Output name of each image, relative to ``OUT/vis`` (the path
            under a folder or below a glob's fixed part, else the base
            name).
        video: The video path, or None.
    """

    def __init__(self, images: Sequence[str], names: Sequence[str],
                 video: Optional[str] = None) -> None:
        self.images = list(images)
        self.names = list(names)
        self.video = video


def find_inputs(spec: str, exclude: Optional[str] = None) -> Inputs:
    """Resolve INPUT: an image file, a folder (searched recursively), a glob
    pattern, or a video file (by its extension).

    Args:
        spec: INPUT.
        exclude: A folder whose images are not inputs (the output folder,
            when it is inside the input folder).

    Raises:
        CitymaskError: nothing there, or no image in it.
    """
    if osp.isfile(spec):
        ext = osp.splitext(spec)[1].lower()
        if ext in VIDEO_EXTS:
            return Inputs([], [], video=spec)
        return Inputs([spec], [osp.basename(spec)])
    if osp.isdir(spec):
        root = spec
        paths = sorted(glob.glob(osp.join(spec, '**', '*'), recursive=True))
    elif glob.has_magic(spec):
        paths = sorted(glob.glob(spec, recursive=True))
        # output names keep the path below the pattern's fixed part
        fixed = spec[:min(spec.index(c) for c in '*?[' if c in spec)]
        root = fixed if fixed.endswith(os.sep) else osp.dirname(fixed)
    else:
        raise CitymaskError(
            f'input {spec} does not exist (give an image, a folder, a glob '
            'such as "frames/*.png" in quotes, or a video file)')
    skip = osp.join(osp.abspath(exclude), '') if exclude else None
    images = [p for p in paths if osp.isfile(p)
              and osp.splitext(p)[1].lower() in IMAGE_EXTS
              and not (skip and osp.abspath(p).startswith(skip))]
    if not images:
        raise CitymaskError(
            f'no images ({", ".join(IMAGE_EXTS)}) in {spec}')
    return Inputs(images, [osp.relpath(p, root or '.') for p in images])


class Video:
    """A video opened with OpenCV that has yielded its first frame.

    Args:
        path: The video file.

    Attributes:
        fps: Frames per second (25 when the file doesn't say).
        count: Frame count, 0 if unknown.
        size: ``(width, height)``.

    Raises:
        CitymaskError: not a video OpenCV can decode, or no frames.
    """

    def __init__(self, path: str) -> None:
        # FFmpeg logs its own lines ("moov atom not found") on stderr,
        # before our one; quiet unless the user set a level (read at
        # OpenCV's first use of FFmpeg)
        os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')
        self.path = path
        self._cap = cv2.VideoCapture(path)
        ok, frame = (self._cap.read() if self._cap.isOpened() else
                     (False, None))
        if not ok or frame is None:
            self._cap.release()
            raise CitymaskError(
                f'cannot open video {path} (not a video OpenCV can decode, '
                'or no frames); convert it, e.g. `ffmpeg -i IN -c:v libx264 '
                'OUT.mp4`, or extract its frames and pass the folder')
        # kept, not re-read: not every stream can seek back
        self._first: Optional[np.ndarray] = frame
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if np.isfinite(fps) and fps > 0 else 25.0
        self.count = max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                         0)
        self.size = (frame.shape[1], frame.shape[0])

    def read(self, n: int) -> List[np.ndarray]:
        """The next ``n`` frames (fewer at the end)."""
        frames = []
        if self._first is not None and n > 0:
            frames.append(self._first)
            self._first = None
        while len(frames) < n:
            ok, frame = self._cap.read()
            if not ok:
                break
            frames.append(frame)
        return frames

    def release(self) -> None:
        self._cap.release()


class VideoOut:
    """An annotated video written atomically (complete or absent).

    OpenCV picks the container from the file name, so frames go to a
    temporary name with the right extension, renamed when closed.

    Args:
        stem: Output path without extension.
        fps: Frames per second.
        size: ``(width, height)``.
    """

    def __init__(self, stem: str, fps: float, size: Tuple[int, int]) -> None:
        for fourcc, ext in VIDEO_CODECS:
            self.path = stem + ext
            self._tmp = osp.join(osp.dirname(self.path),
                                 f'.{osp.basename(self.path)}.tmp{ext}')
            self._writer = cv2.VideoWriter(
                self._tmp, cv2.VideoWriter_fourcc(*fourcc), fps, size)
            if self._writer.isOpened():
                return
            self._writer.release()
            if osp.exists(self._tmp):
                os.remove(self._tmp)
        raise CitymaskError(
            'OpenCV cannot write video here (neither mp4v/.mp4 nor MJPG/.avi)'
            '; reinstall opencv-python')

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def close(self, keep: bool = True) -> None:
        """Finish the file; ``keep=False`` deletes it instead."""
        self._writer.release()
        if keep:
            os.replace(self._tmp, self.path)
        elif osp.exists(self._tmp):
            os.remove(self._tmp)


class Predictor:
    """A config's model with a checkpoint, predicting batches of images.

    The checkpoint is read with
    :func:`citymask.checkpoint.load_checkpoint_file` (weights only) and must
    fit the model exactly: a COCO checkpoint for a Cityscapes config, or one
    of another model, fails with one line.

    Args:
        config: Config file.
        checkpoint: Checkpoint file.
        device: ``cpu``, ``cuda``, ``cuda:1``...
        cfg_options: ``--cfg-options``.
    """

    def __init__(self, config: str, checkpoint: str, device: str = 'cpu',
                 cfg_options: Optional[dict] = None) -> None:
        import torch
        from mmcv.transforms import Compose
        from mmdet.registry import DATASETS, MODELS
        from mmdet.utils import get_test_pipeline_cfg
        from mmengine.model import revert_sync_batchnorm
        from mmengine.registry import init_default_scope

        from . import register  # noqa: F401  (stack fixes, citymask modules)
        from .checkpoint import (load_checkpoint_file, split_checkpoint,
                                 strip_prefix)
        from .config import dataset_of, load_config

        self.device = _torch_device(device)
        cfg = load_config(config, cfg_options)
        state = strip_prefix(split_checkpoint(
            load_checkpoint_file(checkpoint))[0])
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        ds = dataset_of(cfg.test_dataloader)
        dataset_cls = DATASETS.get(ds.type)
        if dataset_cls is None:
            raise CitymaskError(f'{config}: unknown dataset type {ds.type}')
        meta = dict(dataset_cls.METAINFO)
        meta.update(ds.get('metainfo') or {})
        self.classes = tuple(meta['classes'])
        unknown = [c for c in self.classes if c not in NAME_TO_LABEL_ID]
        if unknown:
            raise CitymaskError(
                f'{config}: classes {unknown} are not Cityscapes classes; '
                'infer.py writes Cityscapes label ids')
        # the palette as OpenCV draws it (BGR)
        self.palette = [tuple(int(v) for v in c[::-1])
                        for c in meta['palette']]
        self.label_ids = [NAME_TO_LABEL_ID[c] for c in self.classes]
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
        _check_fits(model, state, checkpoint, len(self.classes))
        model.load_state_dict(state)
        model.cfg = cfg
        model.dataset_meta = meta
        self.model = model.to(self.device).eval()
        pipeline = get_test_pipeline_cfg(cfg).copy()
        # images are decoded here (they are drawn on too)
        pipeline[0] = dict(type='mmdet.LoadImageFromNDArray')
        self.pipeline = Compose(pipeline)
        self._no_grad = torch.no_grad

    def __call__(self, images: Sequence[np.ndarray]) -> List[dict]:
        """Predict a batch of BGR images.

        Returns:
            Per image: ``labels`` (class index), ``scores``, ``boxes``
            (``x0, y0, x1, y1``), ``masks`` (N, H, W) bool, numpy arrays.
        """
        data = [self.pipeline(dict(img=img, img_id=i))
                for i, img in enumerate(images)]
        batch = dict(inputs=[d['inputs'] for d in data],
                     data_samples=[d['data_samples'] for d in data])
        with self._no_grad():
            samples = self.model.test_step(batch)
        out = []
        for s in samples:
            pred = s.pred_instances
            out.append(dict(
                labels=pred.labels.cpu().numpy(),
                scores=pred.scores.float().cpu().numpy(),
                boxes=pred.bboxes.float().cpu().numpy(),
                masks=pred.masks.bool().cpu().numpy()))
        return out


def _torch_device(device: str):
    import torch
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise CitymaskError(
            f'--device {device} is not a device (cpu, cuda, cuda:1, ...)'
        ) from None
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise CitymaskError(
                f'--device {device}: no CUDA GPU here; use --device cpu')
        if (dev.index or 0) >= torch.cuda.device_count():
            raise CitymaskError(
                f'--device {device}: this machine has '
                f'{torch.cuda.device_count()} GPUs')
    return dev


def _check_fits(model, state: Dict[str, Any], path: str,
                num_classes: int) -> None:
    """One line if the checkpoint is not for this model: COCO heads get
    the command that converts them."""
    from .preflight import check_state_dict
    from .surgery import num_classes as ckpt_classes
    from .surgery.heads import NUM_COCO
    try:
        have = ckpt_classes(state)
    except CitymaskError:
        have = None
    if have == NUM_COCO and num_classes != NUM_COCO:
        raise CitymaskError(
            f'checkpoint {path} has COCO heads ({NUM_COCO} classes), the '
            f"config's model {num_classes} Cityscapes classes: convert it "
            f'with `python tools/surgery.py {path} OUT.pth` (then fine-tune '
            'it: COCO has no rider) or pass a Cityscapes checkpoint')
    check_state_dict({k: tuple(v.shape)
                      for k, v in model.state_dict().items()}, state, path)


def draw_predictions(image: np.ndarray, pred: dict, classes: Sequence[str],
                     palette: Sequence[Tuple[int, int, int]],
                     score_thr: float = 0.0,
                     alpha: float = 0.5) -> np.ndarray:
    """The image with masks (blended), boxes and ``class score`` labels.

    OpenCV rather than mmdet's ``DetLocalVisualizer``, which renders
    through matplotlib: on the same predictions (CPU time per image,
    2026-11-30, 2-core dev machine) 28 vs 1529 ms at 2048x1024 (16
    instances; the mini model itself: 581 ms), 8.6 vs 219 ms at 512x256
    (18 instances). Each mask is blended only inside its bounding box.

    Args:
        image: BGR image (not modified).
        pred: One :class:`Predictor` result.
        classes: Class names by class index.
        palette: BGR colour by class index.
        score_thr: Draw instances scoring at least this.
        alpha: Mask opacity.
    """
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 400))
    font_scale = max(0.35, min(h, w) / 1000)
    keep = np.flatnonzero(pred['scores'] >= score_thr)
    # lowest score first: the surest instances end on top
    keep = keep[np.argsort(pred['scores'][keep], kind='stable')]
    labels_to_draw = []
    for i in keep:
        label = int(pred['labels'][i])
        color = np.array(palette[label], np.float32)
        mask = pred['masks'][i]
        x, y, bw, bh = cv2.boundingRect(mask.view(np.uint8))
        if bw and bh:
            roi = out[y:y + bh, x:x + bw]
            sub = mask[y:y + bh, x:x + bw]
            roi[sub] = (roi[sub] * (1 - alpha) + color * alpha).astype(
                np.uint8)
        x0, y0, x1, y1 = (int(round(v)) for v in pred['boxes'][i])
        cv2.rectangle(out, (x0, y0), (x1, y1), palette[label], thick)
        labels_to_draw.append(
            (f'{classes[label]} {pred["scores"][i]:.2f}', x0, y0, label))
    # labels last, so no mask covers them
    for text, x0, y0, label in labels_to_draw:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                         font_scale, 1)
        x0 = min(max(x0, 0), max(w - tw, 0))
        top = y0 - th - base if y0 - th - base >= 0 else y0
        cv2.rectangle(out, (x0, top), (x0 + tw, top + th + base),
                      palette[label], cv2.FILLED)
        cv2.putText(out, text, (x0, top + th), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def prediction_json(pred: dict, file_name: str, label_ids: Sequence[int],
                    classes: Sequence[str], score_thr: float = 0.0) -> dict:
    """One image's predictions as JSON (module docstring), COCO RLE masks.

    Args:
        pred: One :class:`Predictor` result.
        file_name: The input image (or video frame) it is for.
        label_ids: Cityscapes label id by class index.
        classes: Class name by class index.
        score_thr: Keep instances scoring at least this.
    """
    masks = pred['masks']
    h, w = masks.shape[1:]
    keep = np.flatnonzero(pred['scores'] >= score_thr)
    instances = []
    for i in keep:
        rle = coco_rle(masks[i])
        x0, y0, x1, y1 = (float(v) for v in pred['boxes'][i])
        label = int(pred['labels'][i])
        instances.append(dict(
            category_id=int(label_ids[label]), label_name=classes[label],
            score=round(float(pred['scores'][i]), 5),
            bbox=[round(x0, 2), round(y0, 2), round(x1 - x0, 2),
                  round(y1 - y0, 2)],
            segmentation=dict(size=[int(h), int(w)],
                              counts=rle['counts'].decode('ascii'))))
    return dict(file_name=file_name, height=int(h), width=int(w),
                instances=instances)


def coco_rle(mask: np.ndarray) -> dict:
    """pycocotools' RLE of a full-image (H, W) boolean mask.

    pycocotools reads column-major; only the mask's bounding box is copied
    into a zero column-major image (transposing a whole 2048x1024 mask
    costs ~8 ms, most of the JSON's time).
    """
    import pycocotools.mask as mask_utils
    h, w = mask.shape
    x, y, bw, bh = cv2.boundingRect(
        np.ascontiguousarray(mask).view(np.uint8))
    full = np.zeros((h, w, 1), np.uint8, order='F')
    full[y:y + bh, x:x + bw, 0] = mask[y:y + bh, x:x + bw]
    return mask_utils.encode(full)[0]


def _opencv_log_level(level: Optional[int] = None) -> int:
    """OpenCV's log level, set to ``level`` if given; the previous one.

    OpenCV 5 has the functions in ``cv2.utils.logging``, 4.x at the top
    level (both: 0 is silent); pip installs 4.x with numpy 1.x.
    """
    logging = getattr(cv2.utils, 'logging', cv2)
    previous = logging.getLogLevel()
    if level is not None:
        logging.setLogLevel(level)
    return previous


def _read_image(path: str) -> np.ndarray:
    # OpenCV logs its own line about a broken file; ours names it and says
    # what to do
    level = _opencv_log_level(0)
    try:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
    finally:
        _opencv_log_level(level)
    if img is None:
        raise CitymaskError(
            f'cannot read image {path} (not an image, or corrupt); the '
            'images before it are written, fix or remove it and run again')
    return img


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class _Timer:
    """Seconds spent per stage: where the run time goes."""

    def __init__(self) -> None:
        self.seconds = dict(read=0.0, model=0.0, draw=0.0, write=0.0)
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._t
        self._t = now


def run_inference(input_spec: str,
                  config: str,
                  checkpoint: str,
                  out: str,
                  *,
                  batch_size: int = 1,
                  device: str = 'cpu',
                  score_thr: float = 0.3,
                  cityscapes_format: bool = False,
                  cfg_options: Optional[dict] = None,
                  progress: Optional[bool] = None) -> dict:
    """Predict every image (or video frame) of ``input_spec``, write the
    outputs (module docstring) into ``out``.

    Args:
        input_spec: An image, a folder, a glob or a video.
        config: Config file.
        checkpoint: Checkpoint for it (Cityscapes heads).
        out: Output folder.
        batch_size: Images per forward pass.
        device: Torch device.
        score_thr: Overlays and JSON keep instances scoring at least this;
            the results format keeps all (AP needs the low scores).
        cityscapes_format: Also write the official results format.
        cfg_options: ``--cfg-options``.
        progress: Progress bar on stderr; None: only on a terminal.

    Returns:
        ``images``, ``seconds`` (total) and ``stages`` (seconds per stage:
        read, model, draw, write), and ``video`` (the video written, or
        None).
    """
    from tqdm import tqdm
    if batch_size < 1:
        raise CitymaskError('--batch-size must be at least 1')
    if not 0 <= score_thr <= 1:
        raise CitymaskError('--score-thr must be between 0 and 1')
    if not osp.isfile(checkpoint):
        raise CitymaskError(f'checkpoint {checkpoint} not found')
    inputs = find_inputs(input_spec, exclude=out)
    # before any work; outputs are written file by file (a run stopped by
    # a bad image keeps what it wrote), so a folder with files is fine
    check_writable(out, 'dir', what='output folder (--out)')
    video = Video(inputs.video) if inputs.video else None
    try:
        predictor = Predictor(config, checkpoint, device, cfg_options)
        start = time.perf_counter()
        timer = _Timer()
        total = video.count if video else len(inputs.images)
        bar = tqdm(total=total or None, unit='img', dynamic_ncols=True,
                   disable=None if progress is None else not progress)
        try:
            if video:
                n, written = _run_video(predictor, video, out,
                                        batch_size, score_thr,
                                        cityscapes_format, timer, bar)
            else:
                n = _run_images(predictor, inputs, out, batch_size,
                                score_thr, cityscapes_format, timer, bar)
                written = None
        finally:
            bar.close()
    finally:
        if video:
            video.release()
    return dict(images=n, seconds=time.perf_counter() - start,
                stages=timer.seconds, video=written)


def _write_outputs(predictor: Predictor, pred: dict, image: np.ndarray,
                   name: str, source: str, out: str, score_thr: float,
                   cityscapes_format: bool, timer: _Timer,
                   vis_path: Optional[str]) -> np.ndarray:
    """Draw one image, write its JSON (and results format); returns the
    overlay. ``vis_path``: where the overlay goes (None: not written)."""
    overlay = draw_predictions(image, pred, predictor.classes,
                               predictor.palette, score_thr)
    timer.lap('draw')
    if vis_path is not None:
        # JPEG: a 2048x1024 PNG takes ~10x longer to encode (77 vs 8 ms
        # CPU), longer than drawing it
        data = cv2.imencode('.jpg', overlay,
                            [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        write_bytes_atomic(data.tobytes(), vis_path)
    stem = osp.splitext(name)[0]
    dump_json_atomic(
        prediction_json(pred, source, predictor.label_ids,
                        predictor.classes, score_thr),
        osp.join(out, 'preds', stem + '.json'))
    if cityscapes_format:
        from .evaluation.crops import crop_masks
        from .evaluation.results_format import write_frame
        names = dict(zip(predictor.label_ids, predictor.classes))
        # write_frame names files after the image's base name
        write_frame(osp.join(out, 'cityscapes'), osp.basename(stem) + '.png',
                    image.shape[:2],
                    [predictor.label_ids[int(i)] for i in pred['labels']],
                    pred['scores'].tolist(), crop_masks(pred['masks']), names)
    timer.lap('write')
    return overlay


def _run_images(predictor: Predictor, inputs: Inputs, out: str,
                batch_size: int, score_thr: float, cityscapes_format: bool,
                timer: _Timer, bar) -> int:
    items = list(zip(inputs.images, inputs.names))
    batches = list(_batches(items, batch_size))
    done = 0
    # decode the next batch while the model runs on this one
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda b: [_read_image(p) for p, _ in b],
                              batches[0])
        for k, batch in enumerate(batches):
            images = pending.result()
            timer.lap('read')
            if k + 1 < len(batches):
                pending = pool.submit(
                    lambda b: [_read_image(p) for p, _ in b], batches[k + 1])
            preds = predictor(images)
            timer.lap('model')
            for (path, name), image, pred in zip(batch, images, preds):
                _write_outputs(predictor, pred, image, name, path, out,
                               score_thr, cityscapes_format, timer,
                               osp.join(out, 'vis',
                                        osp.splitext(name)[0] + '.jpg'))
                done += 1
                bar.update(1)
    return done


def _run_video(predictor: Predictor, video: Video, out: str,
               batch_size: int, score_thr: float, cityscapes_format: bool,
               timer: _Timer, bar) -> Tuple[int, str]:
    path, size = video.path, video.size
    stem = osp.splitext(osp.basename(path))[0]
    os.makedirs(osp.join(out, 'vis'), exist_ok=True)
    writer = VideoOut(osp.join(out, 'vis', stem), video.fps, size)
    done = 0
    try:
        while True:
            frames = video.read(batch_size)
            timer.lap('read')
            if not frames:
                break
            preds = predictor(frames)
            timer.lap('model')
            for frame, pred in zip(frames, preds):
                name = osp.join(stem, f'{stem}_{done:06d}')
                overlay = _write_outputs(
                    predictor, pred, frame, name, f'{path}#{done}', out,
                    score_thr, cityscapes_format, timer, None)
                if overlay.shape[1::-1] != size:  # a stream that resizes
                    overlay = cv2.resize(overlay, size)
                writer.write(overlay)
                timer.lap('write')
                done += 1
                bar.update(1)
    except BaseException:
        writer.close(keep=False)
        raise
    writer.close()
    return done, writer.path


def format_timing(result: dict) -> str:
    """The run's speed and where its time went, per image."""
    n = max(result['images'], 1)
    stages = ', '.join(f'{k} {1000 * v / n:.1f} ms'
                       for k, v in result['stages'].items())
    return (f'{result["images"]} images in {result["seconds"]:.1f} s '
            f'({result["images"] / max(result["seconds"], 1e-9):.2f} img/s);'
            f' per image: {stages}')
