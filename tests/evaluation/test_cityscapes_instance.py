"""citymask.evaluation vs cityscapesscripts' evalInstanceLevelSemanticLabeling
(every number equal)."""
import numpy as np
import pytest

from citymask.classes import LABEL_IDS
from citymask.evaluation import evaluate
from citymask.evaluation.results_format import read_results
from citymask.testing.predictions import make_predictions
from .conftest import assert_same, official, write_results


def _things(gt):
    return [i for i in np.unique(gt) if i >= 1000
            and i // 1000 in LABEL_IDS]


def _check(tmp_path, gt_files, make):
    tasks = write_results(str(tmp_path / 'results'), gt_files, make)
    theirs = official(gt_files, str(tmp_path / 'results'),
                      str(tmp_path / 'official'))
    ours = evaluate(tasks, nproc=2)
    assert_same(ours, theirs)
    from_pngs, missing = read_results(gt_files, str(tmp_path / 'results'))
    assert not missing
    assert_same(evaluate(from_pngs, nproc=1), theirs)
    return ours


def test_mixed_predictions(eval_set, tmp_path):
    # duplicates, wrong labels, void / group regions, tiny GT, empty masks,
    # non-evaluated labels, tied scores, frames without GT
    _, gt_files = eval_set
    rng = np.random.default_rng(0)
    ours = _check(tmp_path, gt_files,
                  lambda gt, k: make_predictions(gt, rng, n_false=12))
    assert 0.05 < ours['averages']['allAp'] < 0.95


def test_perfect_predictions(eval_set, tmp_path):
    _, gt_files = eval_set

    def perfect(gt, k):
        ids = _things(gt)
        return ([int(i // 1000) for i in ids],
                [0.5 + 0.001 * j for j in range(len(ids))],
                [gt == i for i in ids])

    ours = _check(tmp_path, gt_files, perfect)
    classes = ours['averages']['classes']
    assert all(c['ap'] == 1.0 or np.isnan(c['ap']) for c in classes.values())


def test_all_scores_tied_and_frames_without_predictions(eval_set, tmp_path):
    _, gt_files = eval_set
    rng = np.random.default_rng(1)

    def tied(gt, k):
        if k % 3 == 0:
            return [], [], []  # a frame without predictions
        labels, masks = [], []
        for i in _things(gt):  # shifted copies and duplicates, one score
            for dx in ([0, 3] if rng.random() < 0.3 else [2]):
                labels.append(int(i // 1000))
                masks.append(np.roll(gt == i, dx, axis=1))
        return labels, [0.5] * len(labels), masks

    _check(tmp_path, gt_files, tied)


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
        official(gt_files, str(tmp_path / 'results'),
                 str(tmp_path / 'official'))
    # Reference: the official script without those predictions (which it
    # can evaluate): 0.0 for every class with ground truth, NaN for the
    # others; an ignored prediction is no true positive, as no prediction.
    write_results(str(tmp_path / 'none'), gt_files,
                  lambda gt, k: ([], [], []))
    theirs = official(gt_files, str(tmp_path / 'none'),
                      str(tmp_path / 'official_none'))
    ours = evaluate(tasks)
    assert_same(ours, theirs)
    classes = ours['averages']['classes']
    assert classes['person']['ap'] == 0.0  # has GT: 0, not NaN
    assert np.array(ours['resultApMatrix'])[0, 0].tolist() == [0.0] * 10
    assert sum(np.isnan(c['ap']) for c in classes.values()) < 8


def test_unknown_label_id_is_skipped(eval_set, tmp_path):
    # A label id that is no Cityscapes label (99) is skipped: the result is
    # the official one of the same predictions without them. Counted as
    # false positives (or matched) in any class, the 99s would change it:
    # each copies a real prediction's mask with a higher score.
    _, gt_files = eval_set
    rng = np.random.default_rng(2)
    known = write_results(str(tmp_path / 'results'), gt_files,
                          lambda gt, k: make_predictions(gt, rng, n_false=6))
    theirs = official(gt_files, str(tmp_path / 'results'),
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


def test_pil_written_masks_match_official(eval_set, tmp_path):
    """The same results re-saved by PIL (adaptive PNG filters, as
    detectron2 writes them) and as 1-bit PNGs: still every number equal."""
    import glob

    import cv2
    from PIL import Image
    _, gt_files = eval_set
    rng = np.random.default_rng(5)
    folder = str(tmp_path / 'results')
    write_results(folder, gt_files,
                  lambda gt, k: make_predictions(gt, rng, n_false=8))
    for k, png in enumerate(sorted(glob.glob(folder + '/*.png'))):
        mask = cv2.imread(png, cv2.IMREAD_UNCHANGED)
        Image.fromarray(mask if k % 2 else mask != 0).save(png)
    theirs = official(gt_files, folder, str(tmp_path / 'official'))
    tasks, _ = read_results(gt_files, folder)
    assert_same(evaluate(tasks, nproc=2), theirs)


def test_mask_of_another_size_is_refused(eval_set, tmp_path):
    import cv2

    from citymask.errors import CitymaskError
    from citymask.evaluation.cityscapes_instance import match_image
    from citymask.evaluation.crops import crop_masks
    from citymask.evaluation.mask_png import read_gt
    _, gt_files = eval_set
    folder = tmp_path / 'results'
    write_results(str(folder), gt_files[:1],
                  lambda gt, k: ([26], [0.9], [np.ones(gt.shape, bool)]))
    png = next(folder.glob('*.png'))
    cv2.imwrite(str(png), np.full((256, 512), 255, np.uint8))
    tasks, _ = read_results(gt_files[:1], str(folder))
    with pytest.raises(CitymaskError, match=r'512x256, its ground truth '
                       r'1024x512'):
        evaluate(tasks, nproc=1)
    gt = read_gt(gt_files[0])
    big = crop_masks(np.ones((1, 600, 1100), bool))
    with pytest.raises(CitymaskError, match='outside the 1024x512'):
        match_image(gt, [26], [0.9], big)
