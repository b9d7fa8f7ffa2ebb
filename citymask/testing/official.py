"""cityscapesscripts' own instance evaluator, run as a reference.

It keeps its ground-truth cache inside site-packages and writes
``matches.json`` into the working folder; this keeps both in ``work_dir``.
"""
import json
import os
import os.path as osp
from typing import Optional, Sequence

from ..compat import official_instance_evaluator


def run_official(gt_files: Sequence[str], results_dir: str,
                 work_dir: str, gt_instances: Optional[dict] = None,
                 distance: bool = False) -> dict:
    """``evaluateImgLists`` of the official script on a results folder;
    ``gt_instances``: its ground-truth cache (``instances2dict`` format,
    e.g. ``medDist`` filled); ``distance``: ``distanceAvailable``."""
    os.makedirs(work_dir, exist_ok=True)
    cwd = os.getcwd()
    with official_instance_evaluator() as official:
        args = official.args
        before, args.distanceAvailable = args.distanceAvailable, distance
        try:
            args.gtInstancesFile = cache = osp.join(work_dir,
                                                    'gtInstances.json')
            if osp.exists(cache):
                os.remove(cache)  # a stale cache gives wrong numbers
            if gt_instances is not None:
                with open(cache, 'w') as f:
                    json.dump(gt_instances, f)
            args.exportFile = osp.join(work_dir, 'official.json')
            args.quiet = args.JSONOutput = True
            args.predictionPath = osp.abspath(results_dir)
            args.predictionWalk = None
            preds = [official.getPrediction(g, args) for g in gt_files]
            os.chdir(work_dir)
            return official.evaluateImgLists(preds, list(gt_files), args)
        finally:
            os.chdir(cwd)
            args.distanceAvailable = before
