"""Benchmark the Cityscapes training data pipeline on one CPU core.

Times (img/s, one process, one thread) on generated 2048x1024 frames:
  (a) stock mmdet: mmdet::_base_/datasets/cityscapes_instance.py's train
      pipeline on RLE annotations (bitmaps decoded, resized, flipped),
  (b) citymask: configs/_base_/datasets/cityscapes_instance.py's train
      pipeline on polygon annotations with the pyspng loader,
  (c) the floors: PNG decode + resize alone, with OpenCV and with pyspng.
Then checks the polygon annotations against ``*_instanceIds.png`` (IoU per
ground-truth instance: mean, area-weighted, worst of those >= 1000 px;
vertices per instance), that polygon and bitmap masks give the same 28x28
mask-head targets (IoU) and what computing those targets costs per image.

Example (the docs/benchmarks.md settings):
    python tools/analysis_tools/benchmark_pipeline.py --num-images 20
    python tools/analysis_tools/benchmark_pipeline.py --num-images 20 \
        --distribution cityscapes
"""
import argparse
import json
import os.path as osp
import tempfile
import time

import numpy as np

from citymask.testing.mini_cityscapes import add_scene_args

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                  'datasets', 'cityscapes_instance.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-images', type=int, default=20)
    parser.add_argument('--repeat', type=int, default=2,
                        help='passes over the images per pipeline')
    parser.add_argument('--work-dir', help='keep the data here')
    add_scene_args(parser)
    return parser.parse_args()


def build(pipeline, root, ann):
    from mmdet.registry import DATASETS
    return DATASETS.build(dict(
        type='CityscapesDataset', data_root=root, ann_file=ann,
        data_prefix=dict(img='leftImg8bit/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=pipeline))


def rate(dataset, repeat):
    dataset[0]  # warm-up (imports, caches)
    n = len(dataset) * repeat
    start = time.perf_counter()
    for i in range(n):
        dataset[i % len(dataset)]
    return n / (time.perf_counter() - start)


def load_masks(dataset, i):
    """An image's (unresized) GT masks, boxes and labels."""
    load_img, load_ann = dataset.pipeline.transforms[:2]
    r = load_ann(load_img(dataset.get_data_info(i)))
    return r['gt_masks'], r['gt_bboxes'].tensor.numpy(), r['gt_bboxes_labels']


def targets(masks, boxes, idx):
    """28x28 mask-head targets for proposal ``boxes`` of GT ``idx``, as
    mmdet's mask_target computes them, and the seconds that took."""
    start = time.perf_counter()
    out = masks.crop_and_resize(boxes, (28, 28), np.asarray(idx),
                                device='cpu').to_ndarray().astype(bool)
    return out, time.perf_counter() - start


def pair(boxes_a, labels_a, boxes_b, labels_b):
    """Index in b of the same instance as each of a (same label, best box
    IoU): the RLE and polygon files list instances in different orders."""
    def area(z):
        return (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])

    def iou(x, y):
        lt = np.maximum(x[:2], y[:, :2])
        rb = np.minimum(x[2:], y[:, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        return inter / (area(x) + area(y) - inter)
    out = []
    for box, lab in zip(boxes_a, labels_a):
        scores = np.where(labels_b == lab, iou(box, boxes_b), -1)
        out.append(int(np.argmax(scores)) if scores.max() > 0.5 else -1)
    return out


def polygon_fidelity(root, anns):
    """IoU of every ground-truth instance of ``*_instanceIds.png`` (as the
    RLE annotations hold it, bit-exact) with the best polygon annotation of
    its label; 0 when there is none.

    Returns:
        ``(ious, areas, vertices per polygon annotation)``.
    """
    import pycocotools.mask as mask_utils
    coco = {}
    for fmt in ('rle', 'polygon'):
        with open(anns[fmt]) as f:
            coco[fmt] = json.load(f)
    by_image = {fmt: {} for fmt in coco}
    for fmt, data in coco.items():
        for a in data['annotations']:
            if not a['iscrowd']:
                by_image[fmt].setdefault(a['image_id'], []).append(a)
    ious, areas, vertices = [], [], []
    for img in coco['polygon']['images']:
        h, w = img['height'], img['width']
        gts = by_image['rle'].get(img['id'], [])
        polys = by_image['polygon'].get(img['id'], [])
        vertices += [sum(len(p) // 2 for p in a['segmentation'])
                     for a in polys]
        if not gts:
            continue
        gt_rles = [dict(size=a['segmentation']['size'],
                        counts=a['segmentation']['counts'].encode())
                   for a in gts]
        pred_rles = [mask_utils.merge(mask_utils.frPyObjects(
            a['segmentation'], h, w)) for a in polys]
        iou = np.zeros((len(polys), len(gts)))
        if polys:
            iou = np.asarray(mask_utils.iou(pred_rles, gt_rles,
                                            [0] * len(gts)))
            same = (np.array([a['category_id'] for a in polys])[:, None] ==
                    np.array([a['category_id'] for a in gts])[None])
            iou = np.where(same, iou, 0.0)
        ious += iou.max(axis=0, initial=0.0).tolist()
        areas += [a['area'] for a in gts]
    return np.array(ious), np.array(areas), np.array(vertices)


def main():
    args = parse_args()
    # heavy imports here: --help stays fast
    import cv2
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401
    from citymask.config import resolve_config_path
    from citymask.testing.mini_cityscapes import make_benchmark_set
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    init_default_scope('mmdet')
    work = args.work_dir or tempfile.mkdtemp(prefix='benchmark_pipeline_')
    root, anns = make_benchmark_set(work, args.num_images, args.width,
                                    args.height, args.distribution)
    stock = Config.fromfile(
        resolve_config_path('mmdet::_base_/datasets/cityscapes_instance.py'))
    ours = Config.fromfile(CONFIG)
    scale = (args.width, args.height)
    floors = {
        'LoadImageFromFile': [dict(type='LoadImageFromFile'),
                              dict(type='Resize', scale=scale,
                                   keep_ratio=True)],
        'LoadCityscapesImage': [dict(type='LoadCityscapesImage'),
                                dict(type='Resize', scale=scale,
                                     keep_ratio=True)],
    }
    rows = [
        ('(a) stock mmdet, RLE masks',
         build(stock.train_pipeline, root, anns['rle'])),
        ('(b) citymask, polygons + pyspng',
         build(ours.train_pipeline, root, anns['polygon'])),
        ('(c) floor: cv2 decode + resize',
         build(floors['LoadImageFromFile'], root, anns['polygon'])),
        ('(c) floor: pyspng decode + resize',
         build(floors['LoadCityscapesImage'], root, anns['polygon'])),
    ]
    print(f'{args.num_images} images {args.width}x{args.height} '
          f'({args.distribution} distribution), one core, {args.repeat} '
          'passes\n')
    print(f'{"pipeline":38s} {"img/s":>7s} {"ms/img":>7s} {"vs (a)":>7s}')
    base = None
    for name, ds in rows:
        r = rate(ds, args.repeat)
        base = base or r
        print(f'{name:38s} {r:7.1f} {1000 / r:7.1f} {r / base:6.1f}x')

    ious, areas, vertices = polygon_fidelity(root, anns)
    big = areas >= 1000
    print(f'\npolygon annotations vs *_instanceIds.png, {len(ious)} '
          f'instances ({(areas < 100).sum()} under 100 px): mean IoU '
          f'{ious.mean():.4f}, area-weighted '
          f'{(ious * areas).sum() / areas.sum():.4f}, worst of '
          f'{big.sum()} >= 1000 px '
          f'{ious[big].min() if big.any() else float("nan"):.4f}; '
          f'{np.median(vertices):.0f} vertices per instance (median, mean '
          f'{vertices.mean():.0f}); JSON '
          f'{osp.getsize(anns["polygon"]) / 1e6:.2f} MB polygon vs '
          f'{osp.getsize(anns["rle"]) / 1e6:.2f} MB RLE')

    # polygon vs bitmap training targets, on the same instances
    bitmap = build([dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations', with_bbox=True,
                         with_mask=True)], root, anns['rle'])
    poly = build([dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True,
                       with_mask=True, poly2mask=False)], root,
                 anns['polygon'])
    ious, t_bitmap, t_poly = [], 0.0, 0.0
    for i in range(min(len(bitmap), len(poly))):
        bm, bb, bl = load_masks(bitmap, i)
        pm, pb, pl = load_masks(poly, i)
        match = pair(bb, bl, pb, pl)
        keep = [k for k, m in enumerate(match) if m >= 0]
        # the same proposal (the bitmap GT box) against both mask types
        tb, sb = targets(bm, bb[keep], keep)
        tp, sp = targets(pm, bb[keep], [match[k] for k in keep])
        t_bitmap, t_poly = t_bitmap + sb, t_poly + sp
        inter = (tb & tp).sum((1, 2))
        union = (tb | tp).sum((1, 2))
        ious.extend((inter[union > 0] / union[union > 0]).tolist())
    n = min(len(bitmap), len(poly))
    print(f'\nmask-head targets (28x28), polygons vs bitmaps: mean IoU '
          f'{np.mean(ious):.3f} over {len(ious)} instances '
          f'(5th percentile {np.percentile(ious, 5):.3f})')
    print(f'target computation per image: bitmaps {1000 * t_bitmap / n:.1f} '
          f'ms, polygons {1000 * t_poly / n:.1f} ms')


if __name__ == '__main__':
    main()
