"""citymask.evaluation vs cityscapesscripts' evalInstanceLevelSemanticLabeling
(every number equal)."""
import numpy as np
import pytest

from citymask.evaluation import evaluate
from citymask.testing.official import run_official
from citymask.testing.predictions import make_predictions
from .conftest import assert_same, perfect, same_as_official, write_results


def test_perfect_predictions(eval_set, tmp_path):
    ours = same_as_official(tmp_path, eval_set[1], perfect, nproc=2)
    for c in ours['averages']['classes'].values():
        for key in ('ap', 'ap50%'):
            assert np.isnan(c[key]) or c[key] == pytest.approx(1, abs=1e-12)


def test_only_ignored_predictions_official_crashes_ours_zero(
        eval_set, tmp_path):
    # cityscapesScripts #89: a class with GT whose only predictions fall on
    # void is dropped entirely -> the official script indexes an empty array
    _, gt_files = eval_set

    def on_void(gt, k):
        mask = np.zeros(gt.shape, bool)
        mask[-5:, :] = True  # the ego vehicle: void
        return [24], [0.9], [mask]

    tasks = write_results(str(tmp_path / 'results'), gt_files, on_void)
    with pytest.raises(IndexError):
        run_official(gt_files, str(tmp_path / 'results'),
                     str(tmp_path / 'official'))
    # Reference: the official script without them: 0.0 for classes with
    # ground truth, NaN else (an ignored prediction is no prediction).
    write_results(str(tmp_path / 'none'), gt_files, lambda gt, k: ([], [], []))
    theirs = run_official(gt_files, str(tmp_path / 'none'),
                          str(tmp_path / 'official_none'))
    ours = evaluate(tasks)
    assert_same(ours, theirs)
    classes = ours['averages']['classes']
    assert classes['person']['ap'] == 0.0  # has GT: 0, not NaN
    assert np.array(ours['resultApMatrix'])[0, 0].tolist() == [0.0] * 10
    assert sum(np.isnan(c['ap']) for c in classes.values()) < 8


def test_unknown_label_id_is_skipped(eval_set, tmp_path):
    # Label id 99 (no Cityscapes label) is skipped: the official result
    # without them. Counted in any class, the 99s (copies of real masks
    # with higher scores) would change it.
    _, gt_files = eval_set
    rng = np.random.default_rng(2)
    known = write_results(str(tmp_path / 'results'), gt_files,
                          lambda gt, k: make_predictions(gt, rng, n_false=6))
    theirs = run_official(gt_files, str(tmp_path / 'results'),
                          str(tmp_path / 'official'))
    tasks = [(g, [99] * len(labels) + list(labels),
              [0.99] * len(labels) + list(scores), list(crops) * 2)
             for g, labels, scores, crops in known]
    assert sum(len(t[1]) for t in tasks) > 20
    assert_same(evaluate(tasks), theirs)
    # the 99s, had they counted as predictions of their copies' classes
    counted = [(g, list(labels) * 2, [0.99] * len(labels) + list(scores),
                list(crops) * 2) for g, labels, scores, crops in known]
    assert evaluate(counted)['averages']['allAp'] != \
        theirs['averages']['allAp']
