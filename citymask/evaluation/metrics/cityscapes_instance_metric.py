import os.path as osp
from typing import Optional, Sequence

import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ...classes import IMG_SUFFIX, INSTANCE_IDS_SUFFIX, NAME_TO_LABEL_ID
from ...errors import CitymaskError
from ...fileio import atomic_dir, check_writable, dump_json_atomic
from ...models.box_masks import BoxMasks
from ...visualization import plot_class_ap
from ..analysis import analyze_matches, format_analysis, write_analysis
from ..cityscapes_instance import (evaluate_matches, format_table,
                                   match_frames, summarize)
from ..crops import FrameTask, crop_coco_rle, crop_masks, crop_masks_tensor
from ..distance import check_stereo
from ..results_format import frame_key, write_frame


def _crops(masks, shape: tuple, img_path: str) -> list:
    if isinstance(masks, (list, tuple)):  # RLE: predictions saved by --out
        try:
            return [crop_coco_rle(rle, shape) for rle in masks]
        except ValueError as e:
            raise CitymaskError(f'a mask of {img_path}: {e}') from None
    if tuple(masks.shape[1:]) != shape:
        raise CitymaskError(f'masks of {img_path} are {tuple(masks.shape)}, '
                            f'the image {shape}')
    if isinstance(masks, BoxMasks):  # BoxMaskHead's: no full bitmaps
        return masks.to_crops()
    if isinstance(masks, torch.Tensor):
        if masks.device.type != 'cpu':  # boxes found there, crops copied
            return crop_masks_tensor(masks)
        masks = masks.numpy()
    return crop_masks(masks)


@METRICS.register_module()
class CityscapesInstanceMetric(BaseMetric):
    """Official Cityscapes instance AP, computed in memory.

    A drop-in for mmdet's ``CityScapesMetric`` (same arguments, input and
    ``cityscapes/mAP`` / ``cityscapes/AP@50`` keys) that writes no PNGs:
    masks are kept as RLE crops, matched in ``nproc`` processes. Also
    returns each class's AP and AP50 (``cityscapes/person_AP``, ...).

    Args:
        outfile_prefix (str, optional): Folder for the results format
            (``format_only``) or the result JSON, AP chart and analysis.
        seg_prefix (str, optional): ``gtFine/<split>`` folder. Defaults to
            each image path with ``leftImg8bit`` -> ``gtFine``, as mmdet.
        format_only (bool): Only write the results folder (test split).
        nproc (int): Processes for matching. Defaults to 2.
        collect_device (str): ``cpu`` or ``gpu``. Defaults to ``cpu``.
        prefix (str, optional): Metric name prefix.
        dump_matches (bool): Also write ``outfile_prefix/matches.json``:
            per image path the ``gt``, ``pred``, ``inter`` (and ``dist``)
            rows of :func:`~..cityscapes_instance.match_image`.
        plot_ap (bool): Also save ``cityscapes_class_ap.png`` there (off
            by default: matplotlib costs about 1 s the first time).
        distance (bool): Also the unofficial AP 100m / 50m
            (``mAP_100m_unofficial``, ``mAP_50m_unofficial``,
            ``AP@50_50m_unofficial``) from ``disparity/`` and ``camera/``
            beside ``gtFine/`` (:mod:`citymask.evaluation.distance`).
        stereo_root (str, optional): Folder holding ``disparity/`` and
            ``camera/`` if not the ground truth's Cityscapes root.
        analyze (bool): Also log the error analysis
            (:mod:`citymask.evaluation.analysis`) and, with
            ``outfile_prefix``, write it there as JSON and plots.
        analysis_score_thr (float): Predictions scoring less are left out
            of the analysis (not of the AP). Defaults to 0.3.
        overwrite (bool): With ``format_only``, replace a non-empty
            ``outfile_prefix`` (else refused: old files would mix in); it
            is written whole under a temporary name.
        backend_args, file_client_args (dict, optional): Unused (mmdet
            parity).
    """

    default_prefix: Optional[str] = 'cityscapes'

    def __init__(self, outfile_prefix: Optional[str] = None,
                 seg_prefix: Optional[str] = None, format_only: bool = False,
                 nproc: int = 2, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, dump_matches: bool = False,
                 plot_ap: bool = False, overwrite: bool = False,
                 distance: bool = False, stereo_root: Optional[str] = None,
                 analyze: bool = False, analysis_score_thr: float = 0.3,
                 backend_args: Optional[dict] = None,
                 file_client_args: Optional[dict] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and not outfile_prefix:
            raise CitymaskError(
                'format_only needs outfile_prefix: the folder to write the '
                'Cityscapes submission into')
        for flag, what in ((dump_matches, 'matches.json'),
                           (plot_ap, 'cityscapes_class_ap.png')):
            if flag and not outfile_prefix:
                raise CitymaskError(f'{what} needs outfile_prefix: the '
                                    'folder to write it into')
        if format_only:  # before inference, not after it
            check_writable(outfile_prefix, 'dir', what='results folder',
                           overwrite=overwrite)
        if analyze and not 0 <= analysis_score_thr <= 1:
            raise CitymaskError(f'analysis_score_thr {analysis_score_thr}: '
                                'a score threshold must lie in 0..1')
        self.overwrite, self.outfile_prefix = overwrite, outfile_prefix
        self.seg_prefix, self.format_only = seg_prefix, format_only
        self.nproc, self.dump_matches = nproc, dump_matches
        self.plot_ap, self.distance = plot_ap, distance
        self.stereo_root, self.analyze = stereo_root, analyze
        self.analysis_score_thr = analysis_score_thr

    def _gt_path(self, img_path: str) -> str:
        if self.seg_prefix:
            key = frame_key(img_path)
            return osp.join(self.seg_prefix, key.split('_')[0],
                            key + INSTANCE_IDS_SUFFIX)
        return img_path.replace(IMG_SUFFIX, INSTANCE_IDS_SUFFIX).replace(
            'leftImg8bit', 'gtFine')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        classes = self.dataset_meta['classes']
        if (self.distance and not self.format_only and not self.results
                and data_samples):
            # missing stereo files fail at the first image, not at the end
            check_stereo([self._gt_path(data_samples[0]['img_path'])],
                         self.stereo_root)
        for sample in data_samples:
            pred, img_path = sample['pred_instances'], sample['img_path']
            scores = pred.get('mask_scores', pred['scores'])
            labels = pred['labels'].cpu().numpy()
            shape = tuple(int(v) for v in sample['ori_shape'][:2])
            if not ((scores >= 0) & (scores <= 1)).all():
                # a NaN would rank above every other prediction
                raise CitymaskError(
                    'the model gave non-finite scores or scores outside '
                    f'[0, 1] ({scores.tolist()[:4]}...) for {img_path}: its '
                    'weights are broken (a diverged training?); test another '
                    'checkpoint')
            if len(labels) and not 0 <= labels.min() <= labels.max() < len(
                    classes) or not len(labels) == len(scores) == len(
                        pred['masks']):
                raise CitymaskError(
                    f'{img_path}: {len(scores)} scores, labels '
                    f'{sorted(set(labels.tolist()))[:8]} and '
                    f'{len(pred["masks"])} masks: expected one of each per '
                    f'instance, labels below {len(classes)}')
            self.results.append(dict(
                img_path=img_path, ori_shape=shape,
                label_ids=[NAME_TO_LABEL_ID[classes[int(i)]] for i in labels],
                scores=scores.cpu().numpy().astype(float).tolist(),
                masks=_crops(pred['masks'], shape, img_path)))

    def compute_metrics(self, results: list) -> dict:
        logger = MMLogger.get_current_instance()
        if self.format_only:
            names = {NAME_TO_LABEL_ID[c]: c
                     for c in self.dataset_meta['classes']}
            # whole or absent: a failed run leaves no partial submission
            with atomic_dir(self.outfile_prefix,
                            overwrite=self.overwrite) as folder:
                for r in results:
                    write_frame(folder, r['img_path'], r['ori_shape'],
                                r['label_ids'], r['scores'], r['masks'],
                                names)
            logger.info(f'Cityscapes results written to {self.outfile_prefix}')
            return {}
        tasks = []
        for r in results:
            gt = self._gt_path(r['img_path'])
            if not osp.isfile(gt):
                raise CitymaskError(
                    f'ground truth {gt} not found; the test split has no '
                    'public ground truth: use --format-only')
            tasks.append(FrameTask(gt, r['label_ids'], r['scores'],
                                   r['masks']))
        if self.distance:
            check_stereo([t.gt_path for t in tasks], self.stereo_root)
        matches = match_frames(tasks, self.nproc, distance=self.distance,
                               stereo_root=self.stereo_root,
                               cross_labels=self.analyze)
        result = summarize(evaluate_matches(matches, self.distance))
        logger.info('Cityscapes instance segmentation (mask AP, %):\n' +
                    format_table(result))
        if self.analyze:
            analysis = analyze_matches(
                matches, [r['img_path'] for r in results],
                score_thr=self.analysis_score_thr)
            logger.info(format_analysis(analysis))
            if self.outfile_prefix:
                write_analysis(analysis, self.outfile_prefix)
        if self.outfile_prefix:
            dump_json_atomic(result, osp.join(
                self.outfile_prefix,
                'resultInstanceLevelSemanticLabeling.json'))
            if self.plot_ap:
                plot_class_ap(result, osp.join(self.outfile_prefix,
                                               'cityscapes_class_ap.png'))
        if self.dump_matches:
            dump_json_atomic({r['img_path']: {  # all but xinter: arrays, lists
                k: m[k].tolist() if k in ('gt', 'dist') else m[k]
                for k in ('gt', 'pred', 'inter', 'dist') if k in m}
                for r, m in zip(results, matches)},
                osp.join(self.outfile_prefix, 'matches.json'))
        # mAP, AP@50, <class>_AP(50) (NaN: no ground truth), distance keys
        avg = result['averages']
        out = {'mAP': avg['allAp'], 'AP@50': avg['allAp50%']}
        for name, c in avg['classes'].items():
            out.update({f'{name}_AP': c['ap'], f'{name}_AP50': c['ap50%']})
        if 'allAp100m' in avg:
            out.update({'mAP_100m_unofficial': avg['allAp100m'],
                        'mAP_50m_unofficial': avg['allAp50m'],
                        'AP@50_50m_unofficial': avg['allAp50%50m']})
        return out
