"""cityscapesscripts' own instance evaluator, run as a reference.

It keeps its ground-truth cache in a file inside site-packages and writes
``matches.json`` into the working folder; this runs it with both kept in a
work folder of the caller's (used by the tests and benchmarks that compare
citymask's evaluator with it).
"""
import json
import os
import os.path as osp
from typing import Optional, Sequence

from ..compat import official_instance_evaluator


def run_official(gt_files: Sequence[str], results_dir: str,
                 work_dir: str, gt_instances: Optional[dict] = None,
                 distance: bool = False) -> dict:
    """``evaluateImgLists`` of the official script on a results folder.

    Args:
        gt_instances: Its ground-truth cache (``instances2dict`` format)
            to use instead of computing it, e.g. with ``medDist`` /
            ``distConf`` filled.
        distance: Run with ``distanceAvailable`` (AP 100m / 50m).
    """
    os.makedirs(work_dir, exist_ok=True)
    with official_instance_evaluator() as official:
        before = official.args.distanceAvailable
        official.args.distanceAvailable = distance
        try:
            return _run(official, gt_files, results_dir, work_dir,
                        gt_instances)
        finally:
            official.args.distanceAvailable = before


def _run(official, gt_files: Sequence[str], results_dir: str,
         work_dir: str, gt_instances: Optional[dict] = None) -> dict:
    args = official.args
    args.gtInstancesFile = osp.join(work_dir, 'gtInstances.json')
    if osp.exists(args.gtInstancesFile):
        os.remove(args.gtInstancesFile)  # a stale cache gives wrong numbers
    if gt_instances is not None:
        with open(args.gtInstancesFile, 'w') as f:
            json.dump(gt_instances, f)
    args.exportFile = osp.join(work_dir, 'official.json')
    args.quiet, args.JSONOutput = True, True
    args.predictionPath = osp.abspath(results_dir)
    args.predictionWalk = None
    preds = [official.getPrediction(g, args) for g in gt_files]
    cwd = os.getcwd()
    os.chdir(work_dir)
    try:
        return official.evaluateImgLists(preds, list(gt_files), args)
    finally:
        os.chdir(cwd)
