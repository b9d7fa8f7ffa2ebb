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
import os.path as osp
import time

import numpy as np
from bench_utils import REPO, benchmark_set, make_parser, rate, table


def build(pipeline, root, ann):
    from mmdet.registry import DATASETS
    return DATASETS.build(dict(
        type='CityscapesDataset', data_root=root, ann_file=ann,
        data_prefix=dict(img='leftImg8bit/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=pipeline))


def polygon_fidelity(anns):
    """IoU of every instance of ``*_instanceIds.png`` (the RLE annotations,
    bit-exact) with the best polygon annotation of its label (0 if none),
    their areas, and the vertices of each polygon annotation."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    gt, poly = COCO(anns['rle']), COCO(anns['polygon'])
    ious, areas, vertices = [], [], []
    for img in gt.getImgIds():
        a, b = (c.loadAnns(c.getAnnIds(imgIds=img, iscrowd=False))
                for c in (gt, poly))
        vertices += [sum(len(p) // 2 for p in x['segmentation']) for x in b]
        iou = np.zeros((len(b), len(a)))
        if a and b:
            iou = np.asarray(mask_utils.iou([poly.annToRLE(x) for x in b],
                                            [gt.annToRLE(x) for x in a],
                                            [0] * len(a)))
            iou *= (np.array([x['category_id'] for x in b])[:, None] ==
                    [x['category_id'] for x in a])
        ious += iou.max(0, initial=0).tolist()
        areas += [x['area'] for x in a]
    return np.array(ious), np.array(areas), np.array(vertices)


def load(dataset, i):
    """An image's unresized GT masks, boxes and labels."""
    load_img, load_ann = dataset.pipeline.transforms[:2]
    r = load_ann(load_img(dataset.get_data_info(i)))
    return r['gt_masks'], r['gt_bboxes'].tensor, r['gt_bboxes_labels']


def targets(masks, boxes, idx):
    """28x28 mask-head targets of GT ``idx`` for proposals ``boxes``, as
    mmdet's ``mask_target`` computes them, and the seconds they took."""
    start = time.perf_counter()
    out = masks.crop_and_resize(boxes.numpy(), (28, 28), idx,
                                device='cpu').to_ndarray()
    return out > 0, time.perf_counter() - start


def main():
    parser = make_parser(__doc__, 20)
    parser.add_argument('--repeat', type=int, default=2,
                        help='passes over the images per pipeline')
    args = parser.parse_args()
    from mmdet.structures.bbox import bbox_overlaps
    from mmengine.config import Config

    from citymask.config import resolve_config_path
    root, anns = benchmark_set(args, 'benchmark_pipeline_')
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
          f'instances ({(areas < 100).sum()} under 100 px, mean IoU '
          f'{ious[areas < 100].mean():.3f}): mean IoU '
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
        # the RLE and polygon files list instances in different orders
        iou = bbox_overlaps(bb, pb).numpy() * (bl[:, None] == pl)
        keep = np.flatnonzero(iou.max(1, initial=0) > 0.5)
        # the same proposals (the bitmap GT boxes) against both mask types
        tb, sb = targets(bm, bb[keep], keep)
        tp, sp = targets(pm, bb[keep], iou[keep].argmax(1))
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
