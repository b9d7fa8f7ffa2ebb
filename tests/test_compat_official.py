"""citymask.compat.official_instance_evaluator: cityscapesscripts' evaluator
on numpy >= 2.4 without touching numpy or site-packages."""
import numpy as np
from cityscapesscripts.evaluation import \
    evalInstanceLevelSemanticLabeling as official

from citymask.compat import official_instance_evaluator


def test_in1d_while_it_runs_and_only_then():
    before = official.np
    gt = np.array([[0, 7, 24001], [3, 7, 255]])
    void = [0, 1, 2, 3, 255]
    with official_instance_evaluator() as module:
        assert module is official
        got = official.np.in1d(gt, void).reshape(gt.shape)
        # numpy's own spelling of the same question
        assert got.tolist() == np.isin(gt, void).tolist()
        assert official.np.in1d(gt, void, invert=True).tolist() == \
            (~np.isin(gt, void)).ravel().tolist()
        assert official.np.float32 is np.float32  # the rest is numpy
    assert official.np is before
    assert ('in1d' in dir(np)) == hasattr(np, 'in1d')  # numpy untouched


def test_restored_after_an_error():
    before = official.np
    try:
        with official_instance_evaluator():
            raise RuntimeError
    except RuntimeError:
        pass
    assert official.np is before


def test_official_void_mask_runs(tmp_path):
    # the evaluator's own use of in1d (assignGt2Preds' void mask) runs here
    # on every numpy; the full evaluator is compared in tests/evaluation
    gt = np.array([[0, 24001, 24001], [1, 26000, 255]], np.int32)
    with official_instance_evaluator():
        void = official.np.in1d(gt, [0, 1, 255]).reshape(gt.shape)
    assert void.tolist() == [[True, False, False], [True, False, True]]


def test_matches_json_with_numpy_integers(tmp_path):
    # numpy 2's count_nonzero returns numpy integers, which the evaluator
    # puts into matches.json
    matches = {'a.png': {'prediction': {'car': [
        {'intersection': np.count_nonzero(np.ones(3)), 'confidence': 0.5}]}}}
    before = official.writeDict2JSON
    with official_instance_evaluator():
        official.writeDict2JSON(matches, str(tmp_path / 'matches.json'))
    assert official.writeDict2JSON is before
    import json
    with open(tmp_path / 'matches.json') as f:
        assert json.load(f) == {'a.png': {'prediction': {'car': [
            {'intersection': 3, 'confidence': 0.5}]}}}
