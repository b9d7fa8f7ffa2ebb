"""Benchmark the Cityscapes training data pipeline on one CPU core.

img/s (one process, one thread) on generated frames of (a) stock mmdet's
train pipeline on RLE masks, (b) citymask's on polygons with the pyspng
loader, (c) the floors, PNG decode + resize alone with OpenCV and pyspng.
Then the polygon annotations against ``*_instanceIds.png`` (IoU per
instance) and the 28x28 mask-head targets of polygons vs bitmaps.

Example:
    python tools/analysis_tools/benchmark_pipeline.py --num-images 20 \\
        --distribution cityscapes
"""
import json
import os.path as osp
import tempfile
import time

import numpy as np
from bench_utils import REPO, make_parser, rate, table


def build(pipeline, root, ann):
    from mmdet.registry import DATASETS
    return DATASETS.build(dict(
        type='CityscapesDataset', data_root=root, ann_file=ann,
        data_prefix=dict(img='leftImg8bit/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=pipeline))


def polygon_fidelity(anns):
    """IoU of every instance of ``*_instanceIds.png`` (the RLE annotations,
    bit-exact) with the best polygon annotation of its label (0 if none),
    their areas, and the vertices of each polygon annotation."""
    import pycocotools.mask as mask_utils
    by_image = {}
    for fmt in ('rle', 'polygon'):
        with open(anns[fmt]) as f:
            coco = json.load(f)
        for a in coco['annotations']:
            by_image.setdefault(a['image_id'], dict(rle=[], polygon=[]))
            by_image[a['image_id']][fmt] += [] if a['iscrowd'] else [a]
    size = coco['images'][0]['height'], coco['images'][0]['width']
    ious, areas, vertices = [], [], []
    for img in by_image.values():
        gts, polys = img['rle'], img['polygon']
        vertices += [sum(len(p) // 2 for p in a['segmentation'])
                     for a in polys]
        iou = np.zeros((len(polys), len(gts)))
        if polys and gts:
            iou = np.asarray(mask_utils.iou(
                [mask_utils.merge(mask_utils.frPyObjects(a['segmentation'],
                                                         *size))
                 for a in polys],
                [a['segmentation'] for a in gts], [0] * len(gts)))
            iou *= (np.array([a['category_id'] for a in polys])[:, None] ==
                    np.array([a['category_id'] for a in gts]))
        ious += iou.max(axis=0, initial=0.0).tolist()
        areas += [a['area'] for a in gts]
    return np.array(ious), np.array(areas), np.array(vertices)


def load(dataset, i):
    """An image's unresized GT masks, boxes and labels."""
    load_img, load_ann = dataset.pipeline.transforms[:2]
    r = load_ann(load_img(dataset.get_data_info(i)))
    return r['gt_masks'], r['gt_bboxes'].tensor.numpy(), r['gt_bboxes_labels']


def targets(masks, boxes, idx):
    """28x28 mask-head targets of GT ``idx`` for proposals ``boxes``, as
    mmdet's ``mask_target`` computes them, and the seconds they took."""
    start = time.perf_counter()
    out = masks.crop_and_resize(boxes, (28, 28), np.asarray(idx, int),
                                device='cpu').to_ndarray()
    return out > 0, time.perf_counter() - start


def same_instances(boxes_a, labels_a, boxes_b, labels_b):
    """Index in b of each instance of a (same label, box IoU > 0.5): the
    RLE and polygon files list instances in different orders."""
    lt = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    rb = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = np.prod(boxes_a[:, 2:] - boxes_a[:, :2], 1)[:, None] + np.prod(
        boxes_b[:, 2:] - boxes_b[:, :2], 1)[None]
    iou = np.where(labels_a[:, None] == labels_b[None], inter / (
        area - inter), 0)
    return np.where(iou.max(1, initial=0) > 0.5, iou.argmax(1), -1)


def main():
    parser = make_parser(__doc__, 20)
    parser.add_argument('--repeat', type=int, default=2,
                        help='passes over the images per pipeline')
    args = parser.parse_args()
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401
    from citymask.config import resolve_config_path
    from citymask.testing.mini_cityscapes import make_benchmark_set
    init_default_scope('mmdet')
    work = args.work_dir or tempfile.mkdtemp(prefix='benchmark_pipeline_')
    root, anns = make_benchmark_set(work, args.num_images, args.width,
                                    args.height, args.distribution)
    stock, ours = (Config.fromfile(resolve_config_path(p)).train_pipeline
                   for p in ('mmdet::_base_/datasets/cityscapes_instance.py',
                             osp.join(REPO, 'configs', '_base_', 'datasets',
                                      'cityscapes_instance.py')))
    resize = dict(type='Resize', scale=(args.width, args.height),
                  keep_ratio=True)
    print(f'{args.num_images} images {args.width}x{args.height} '
          f'({args.distribution}), one core, {args.repeat} passes')
    rates = [rate(build(p, root, anns[fmt]), args.num_images * args.repeat)
             for p, fmt in ((stock, 'rle'), (ours, 'polygon'), (
                 [dict(type='LoadImageFromFile'), resize], 'polygon'), (
                 [dict(type='LoadCityscapesImage'), resize], 'polygon'))]
    table(['pipeline', 'img/s', 'ms/img', 'vs (a)'], [
        [name, f'{r:.1f}', f'{1000 / r:.1f}', f'{r / rates[0]:.1f}x']
        for name, r in zip(['(a) stock mmdet, RLE masks',
                            '(b) citymask, polygons + pyspng',
                            '(c) floor: OpenCV decode + resize',
                            '(c) floor: pyspng decode + resize'], rates)])

    ious, areas, vertices = polygon_fidelity(anns)
    big = ious[areas >= 1000]
    print(f'\npolygon annotations vs *_instanceIds.png, {len(ious)} '
          f'instances ({(areas < 100).sum()} under 100 px): mean IoU '
          f'{ious.mean():.4f}, area-weighted '
          f'{(ious * areas).sum() / areas.sum():.4f}, worst of '
          f'{len(big)} >= 1000 px {min(big, default=np.nan):.4f}; '
          f'{np.median(vertices):.0f} vertices per instance (median, mean '
          f'{vertices.mean():.0f}); JSON '
          f'{osp.getsize(anns["polygon"]) / 1e6:.2f} MB polygon vs '
          f'{osp.getsize(anns["rle"]) / 1e6:.2f} MB RLE')

    loading = [dict(type='LoadImageFromFile'), dict(
        type='LoadAnnotations', with_bbox=True, with_mask=True)]
    bitmap = build(loading, root, anns['rle'])
    loading[1]['poly2mask'] = False
    poly = build(loading, root, anns['polygon'])
    ious, seconds = [], np.zeros(2)
    for i in range(len(poly)):
        bm, bb, bl = load(bitmap, i)
        pm, pb, pl = load(poly, i)
        match = same_instances(bb, bl, pb, pl)
        keep = np.flatnonzero(match >= 0)
        # the same proposals (the bitmap GT boxes) against both mask types
        tb, sb = targets(bm, bb[keep], keep)
        tp, sp = targets(pm, bb[keep], match[keep])
        seconds += sb, sp
        union = (tb | tp).sum((1, 2))
        ious += ((tb & tp).sum((1, 2)) / union)[union > 0].tolist()
    print(f'\nmask-head targets (28x28), polygons vs bitmaps: mean IoU '
          f'{np.mean(ious):.3f} over {len(ious)} instances (5th percentile '
          f'{np.percentile(ious, 5):.3f}); per image: bitmaps '
          f'{1000 * seconds[0] / len(poly):.1f} ms, polygons '
          f'{1000 * seconds[1] / len(poly):.1f} ms')


if __name__ == '__main__':
    main()
