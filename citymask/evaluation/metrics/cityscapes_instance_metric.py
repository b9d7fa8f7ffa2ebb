import os.path as osp
from typing import Optional, Sequence

import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ...classes import IMG_SUFFIX, INSTANCE_IDS_SUFFIX, NAME_TO_LABEL_ID
from ...errors import CitymaskError
from ...fileio import dump_json_atomic
from ...visualization import plot_class_ap
from ..cityscapes_instance import (evaluate_matches, format_table,
                                   match_frames, summarize)
from ..crops import crop_masks, crop_masks_tensor
from ..results_format import frame_key, write_frame


def _crops(masks) -> list:
    if isinstance(masks, torch.Tensor):
        if masks.device.type != 'cpu':  # boxes found there, crops copied
            return crop_masks_tensor(masks)
        masks = masks.numpy()
    return crop_masks(masks)


@METRICS.register_module()
class CityscapesInstanceMetric(BaseMetric):
    """Official Cityscapes instance AP, computed in memory.

    A drop-in for mmdet's ``CityScapesMetric`` (same arguments, same
    ``process()`` input, same ``cityscapes/mAP`` and ``cityscapes/AP@50``
    keys) that writes no PNGs to evaluate: masks are kept as RLE crops and
    matched in ``nproc`` processes (see :mod:`citymask.evaluation`).

    Args:
        outfile_prefix (str, optional): Folder for the official results
            format (``format_only``) or, when evaluating, the result JSON
            and the per-class AP chart.
        seg_prefix (str, optional): ``gtFine/<split>`` folder. Defaults to
            deriving ground truth from each image path
            (``leftImg8bit`` -> ``gtFine``), as mmdet does.
        format_only (bool): Only write the results folder (test split).
        nproc (int): Processes for matching. Defaults to 2.
        collect_device (str): ``cpu`` or ``gpu``. Defaults to ``cpu``.
        prefix (str, optional): Metric name prefix.
        dump_matches (bool): Also write ``matches.json`` into
            ``outfile_prefix``: per image path, ``gt`` rows (instance id,
            label id, pixels), ``pred`` rows (label id, score, pixels, void
            pixels) and ``inter`` rows (pred index, gt index, pixels) --
            everything the AP is computed from.
        plot_ap (bool): Also save the per-class AP bar chart
            ``cityscapes_class_ap.png`` into ``outfile_prefix`` (matplotlib
            costs about 1 s the first time, so it is off unless asked).
        backend_args (dict, optional): Unused, kept for mmdet parity.
        file_client_args (dict, optional): Unused, kept for mmdet parity.
    """

    default_prefix: Optional[str] = 'cityscapes'

    def __init__(self,
                 outfile_prefix: Optional[str] = None,
                 seg_prefix: Optional[str] = None,
                 format_only: bool = False,
                 nproc: int = 2,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 dump_matches: bool = False,
                 plot_ap: bool = False,
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
        self.outfile_prefix = outfile_prefix
        self.seg_prefix = seg_prefix
        self.format_only = format_only
        self.nproc = nproc
        self.dump_matches = dump_matches
        self.plot_ap = plot_ap

    def _gt_path(self, img_path: str) -> str:
        if self.seg_prefix:
            key = frame_key(img_path)
            return osp.join(self.seg_prefix, key.split('_')[0],
                            key + INSTANCE_IDS_SUFFIX)
        return img_path.replace(IMG_SUFFIX, INSTANCE_IDS_SUFFIX).replace(
            'leftImg8bit', 'gtFine')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        classes = self.dataset_meta['classes']
        for sample in data_samples:
            pred = sample['pred_instances']
            scores = pred.get('mask_scores', pred['scores'])
            self.results.append(dict(
                img_path=sample['img_path'],
                ori_shape=tuple(sample['ori_shape'][:2]),
                label_ids=[NAME_TO_LABEL_ID[classes[int(i)]]
                           for i in pred['labels'].cpu().numpy()],
                scores=scores.cpu().numpy().astype(float).tolist(),
                masks=_crops(pred['masks'])))

    def compute_metrics(self, results: list) -> dict:
        logger = MMLogger.get_current_instance()
        if self.format_only:
            names = {NAME_TO_LABEL_ID[c]: c
                     for c in self.dataset_meta['classes']}
            for r in results:
                write_frame(self.outfile_prefix, r['img_path'],
                            r['ori_shape'], r['label_ids'], r['scores'],
                            r['masks'], names)
            logger.info(f'Cityscapes results written to '
                        f'{self.outfile_prefix}')
            return {}
        tasks = []
        for r in results:
            gt = self._gt_path(r['img_path'])
            if not osp.isfile(gt):
                raise CitymaskError(
                    f'ground truth {gt} not found; the test split has no '
                    'public ground truth: use --format-only')
            tasks.append((gt, r['label_ids'], r['scores'], r['masks']))
        matches = match_frames(tasks, self.nproc)
        result = summarize(evaluate_matches(matches))
        logger.info('Cityscapes instance segmentation (mask AP, %):\n' +
                    format_table(result))
        if self.outfile_prefix:
            dump_json_atomic(result, osp.join(
                self.outfile_prefix,
                'resultInstanceLevelSemanticLabeling.json'))
            if self.plot_ap:
                plot_class_ap(result, osp.join(self.outfile_prefix,
                                               'cityscapes_class_ap.png'))
        if self.dump_matches:
            dump_json_atomic(
                {r['img_path']: dict(gt=m['gt'].tolist(), pred=m['pred'],
                                     inter=m['inter'])
                 for r, m in zip(results, matches)},
                osp.join(self.outfile_prefix, 'matches.json'))
        avg = result['averages']
        return {'mAP': avg['allAp'], 'AP@50': avg['allAp50%']}
