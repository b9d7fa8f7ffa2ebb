"""tools/test.py --out predictions re-evaluated by eval_metric.py: the test
run's numbers, data_root rewritten, hostile pickles refused."""
import glob
import json
import os.path as osp
import pickle
import shutil

import pytest
import torch

from citymask.config import load_config
from citymask.evaluation.offline import evaluate_saved, load_predictions
from ..conftest import MINI_CFG, ok, run_tool
from ..tools.conftest import error, fails

TOOL = 'tools/analysis_tools/eval_metric.py'


@pytest.fixture(scope='module')
def saved(mini_data, tmp_path_factory):
    """``(data, pkl, metrics)``: tools/test.py's --out pickle of the
    stand-in checkpoint on the mini val set, and the metrics it logged."""
    root, data = mini_data
    work = tmp_path_factory.mktemp('test_run')
    pkl = str(work / 'preds.pkl')
    ok(run_tool('tools/test.py', MINI_CFG, osp.join(root, 'standin_cs.pth'),
                '--work-dir', str(work), '--out', pkl, '--cfg-options',
                f'data_root={data}', env=dict(OMP_NUM_THREADS='1')))
    # mmengine's log of the run: WORK_DIR/TIMESTAMP/TIMESTAMP.json
    log, = [p for p in glob.glob(str(work / '*' / '*.json'))
            if osp.basename(p) == osp.basename(osp.dirname(p)) + '.json']
    with open(log) as f:
        metrics = json.loads(f.read().splitlines()[-1])
    return data, pkl, metrics


def _printed(res):
    return {k: float(v) for k, v in
            (ln.split(': ') for ln in res.stdout.splitlines()
             if ln.startswith(('cityscapes/', 'coco/')))}


def test_same_numbers_as_the_test_run(saved, tmp_path):
    data, pkl, metrics = saved
    # the data moved: the rewrite reaches the dataset and both evaluators
    moved = str(tmp_path / 'moved')
    shutil.copytree(data, moved)
    res = ok(run_tool(TOOL, MINI_CFG, pkl, '--cfg-options',
                      f'data_root={moved}'))
    printed = _printed(res)
    assert {'cityscapes/mAP', 'cityscapes/AP@50', 'coco/segm_mAP',
            'coco/bbox_mAP'} <= set(printed)
    for key, value in printed.items():
        assert value == pytest.approx(metrics[key], abs=1e-12, nan_ok=True), \
            key


def _dump(obj, path):
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)
    return str(path)


class _Evil:
    def __reduce__(self):
        return (print, ('ran',))


class _EvilStorage:
    def __reduce__(self):
        return (torch.storage._load_from_bytes, (pickle.dumps(_Evil()),))


def test_hostile_pickles_are_refused(saved, tmp_path):
    data, pkl, _ = saved
    preds = load_predictions(pkl)
    assert isinstance(preds[0]['pred_instances']['scores'], torch.Tensor)
    evil = _dump([dict(img_path='a', pred_instances=_Evil())],
                 tmp_path / 'evil.pkl')
    assert error(load_predictions, evil) == (
        f'{evil}: refusing to unpickle __builtin__.print: saved predictions '
        'hold only arrays, tensors and containers, this file would run code')
    res = run_tool(TOOL, MINI_CFG, evil, '--cfg-options', f'data_root={data}')
    fails(res, '__builtin__.print')
    assert 'ran' not in res.stdout
    # a tensor's storage goes through torch's weights-only loader too
    evil = _dump([_EvilStorage()], tmp_path / 'storage.pkl')
    assert 'weights-only loader refuses' in error(load_predictions, evil)


@pytest.mark.parametrize('change,message', [
    (lambda p: p[:-1], 'has predictions for 11 of the 12 test images'),
    (lambda p: p + p[:1], 'which the test set of the config has twice'),
    (lambda p: [dict(p[0], img_path='/etc/passwd')] + p[1:],
     "a prediction for 'passwd', which the test set of the config has not"),
    (lambda p: [dict(p[0], pred_instances=dict(
        p[0]['pred_instances'],
        scores=p[0]['pred_instances']['scores'] + 2))] + p[1:],
     'scores outside [0, 1]'),
    (lambda p: {'not': 'a list'}, 'holds no predictions'),
    (lambda p: [dict(p[0], pred_instances=dict(
        p[0]['pred_instances'], labels=[1]))] + p[1:],
     'holds no predictions'),
])
def test_predictions_that_cannot_be_evaluated(saved, tmp_path, change,
                                              message):
    data, pkl, _ = saved
    bad = _dump(change(load_predictions(pkl)), tmp_path / 'bad.pkl')
    cfg = load_config(MINI_CFG, dict(data_root=data))
    assert message in error(evaluate_saved, cfg, bad)
