"""cityscapesscripts' own instance evaluator, run as a reference.

It keeps its ground-truth cache in a file inside site-packages and writes
``matches.json`` into the working folder; this runs it with both kept in a
work folder of the caller's (used by the tests and benchmarks that compare
citymask's evaluator with it).
"""
import os
import os.path as osp
from typing import Sequence


def run_official(gt_files: Sequence[str], results_dir: str,
                 work_dir: str) -> dict:
    """``evaluateImgLists`` of the official script on a results folder."""
    from cityscapesscripts.evaluation import \
        evalInstanceLevelSemanticLabeling as official
    os.makedirs(work_dir, exist_ok=True)
    args = official.args
    args.gtInstancesFile = osp.join(work_dir, 'gtInstances.json')
    if osp.exists(args.gtInstancesFile):
        os.remove(args.gtInstancesFile)  # a stale cache gives wrong numbers
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
