"""citymask.compat.official_instance_evaluator: cityscapesscripts' evaluator
on numpy >= 2.4 without touching numpy or site-packages."""
import json

import numpy as np
import pytest
from cityscapesscripts.evaluation import \
    evalInstanceLevelSemanticLabeling as official

from citymask.compat import official_instance_evaluator


def test_in1d_while_it_runs_and_only_then():
    before = official.np, official.writeDict2JSON
    # the evaluator's own use: assignGt2Preds' void mask
    gt = np.array([[0, 24001, 24001], [1, 26000, 255]], np.int32)
    void = [0, 1, 255]
    with official_instance_evaluator() as module:
        assert module is official
        got = official.np.in1d(gt, void).reshape(gt.shape)
        assert got.tolist() == [[True, False, False], [True, False, True]]
        # numpy's own spelling of the same question
        assert official.np.in1d(gt, void, invert=True).tolist() == \
            (~np.isin(gt, void)).ravel().tolist()
        assert official.np.float32 is np.float32  # the rest is numpy
    assert (official.np, official.writeDict2JSON) == before
    assert ('in1d' in dir(np)) == hasattr(np, 'in1d')  # numpy untouched
    with pytest.raises(RuntimeError):  # restored after an error too
        with official_instance_evaluator():
            raise RuntimeError
    assert official.np is before[0]


def test_matches_json_with_numpy_integers(tmp_path):
    # numpy 2's count_nonzero returns numpy integers, which the evaluator
    # puts into matches.json
    matches = {'a.png': {'prediction': {'car': [
        {'intersection': np.count_nonzero(np.ones(3)), 'confidence': 0.5}]}}}
    with official_instance_evaluator():
        official.writeDict2JSON(matches, str(tmp_path / 'matches.json'))
    with open(tmp_path / 'matches.json') as f:
        assert json.load(f) == {'a.png': {'prediction': {'car': [
            {'intersection': 3, 'confidence': 0.5}]}}}
