"""The official results format vs cityscapesscripts' ``readPredInfo``; small,
run for every mutant (``mutation.sh results_format``)."""
import copy
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from cityscapesscripts.evaluation import \
    evalInstanceLevelSemanticLabeling as official
from cityscapesscripts.helpers.labels import id2label

from citymask.classes import LABEL_IDS
from citymask.errors import CitymaskError
from citymask.evaluation.crops import FrameTask, crop_masks
from citymask.evaluation.results_format import (find_gt_files, frame_key,
                                                label_id_report, parse_line,
                                                read_masks,
                                                read_prediction_txt,
                                                read_results, write_frame)
from citymask.evaluation.untrusted import MAX_LINE_BYTES, MAX_PRED_BYTES
from ..tools.conftest import error

FRAME = 'lindau_000001_000019'


def _official(txt):
    """cityscapesscripts' reading: {absolute mask path: (label, conf)}."""
    args = copy.copy(official.args)
    args.predictionPath = osp.dirname(osp.abspath(txt))
    return {k: (v['labelID'], v['conf'])
            for k, v in official.readPredInfo(txt, args).items()}


def test_prediction_file_read_as_cityscapesscripts_reads_it(tmp_path):
    txt = tmp_path / f'{FRAME}_leftImg8bit_pred.txt'
    # a repeated mask replaces its earlier line in place; float label ids
    txt.write_text('m/a.png 26 0.9\nb.png 24.0 0.25\n'
                   'm/../c.png 33 1e-3\nm/a.png 25 0.5\n')
    labels, scores, masks = read_prediction_txt(str(txt))
    theirs = _official(str(txt))
    assert masks == list(theirs)
    assert list(zip(labels, scores)) == list(theirs.values())
    assert masks == [str(tmp_path / 'm' / 'a.png'), str(tmp_path / 'b.png'),
                     str(tmp_path / 'c.png')]
    assert labels == [25, 24, 33] and scores == [0.5, 0.25, 0.001]
    # blank lines, which the official script refuses, are skipped
    txt.write_text('\nb.png 24 0.5\n\n')
    assert read_prediction_txt(str(txt)) == ([24], [0.5],
                                             [str(tmp_path / 'b.png')])
    # scores 0 and 1 are scores; a line of exactly the cap is read
    assert parse_line('m/a.png 26 0\n') == ('m/a.png', 26, 0.0)
    assert parse_line('m/a.png 26 1') == ('m/a.png', 26, 1.0)
    line = 'm/' + 'a' * (MAX_LINE_BYTES - 11) + '.png 26 1'
    assert len(line) == MAX_LINE_BYTES and parse_line(line)[1] == 26
    assert 'more than' in error(parse_line, line + '0')


FIELDS = ('expected "relative/mask.png labelID confidence" (3 fields, '
          'single spaces), got ')
NUMBERS, SCORE = 'label id and confidence must be numbers, got ', \
    '; write a score in [0, 1]'


@pytest.mark.parametrize('line,why', [
    ('a.png 26', FIELDS + "'a.png 26'"),
    ('a.png 26 0.5 x', FIELDS + "'a.png 26 0.5 x'"),
    ('/abs/a.png 26 0.5', "mask path '/abs/a.png' must be relative to the "
     'prediction file'),
    ('a.png car 0.5', NUMBERS + "'car 0.5'"),
    ('a.png 26 high', NUMBERS + "'26 high'"),
    ('a.png inf 0.5', NUMBERS + "'inf 0.5'"),
    ('a.png 2.5 0.5', "label id '2.5' is not an integer"),
    ('a.png 26 nan', 'confidence nan is not a finite number' + SCORE),
    ('a.png 26 1.5', 'confidence 1.5 is outside [0, 1]' + SCORE),
    ('a.png 26 -0.25', 'confidence -0.25 is outside [0, 1]' + SCORE),
    # split on single spaces, as readPredInfo: doubled or trailing: refused
    ('a.png  26 0.5', FIELDS + "'a.png  26 0.5'"),
    ('a.png 26 0.5 ', FIELDS + "'a.png 26 0.5'"),
    ('a.png 26 0.5X', NUMBERS + "'26 0.5X'"),
    # what a message quotes of a line is short
    ('x' * 5000 + '.png 26 0.5', 'a line of 5012 characters, more than '
     f"4160: '{'x' * 80}'... (5012 characters)"),
    ('x' * 4000 + ' 26', FIELDS + f"'{'x' * 80}'... (4003 characters)"),
])
def test_bad_prediction_lines_name_file_and_line(tmp_path, line, why):
    txt = tmp_path / 'x_y_z_pred.txt'
    txt.write_text(f'ok.png 24 0.5\n{line}\n')
    assert error(read_prediction_txt, str(txt)) == f'{txt}:2: {why}'


def test_write_frame_reads_back(tmp_path):
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:5, 3:9] = True
    masks[2, 10:20, 0:30] = True  # touches the image border
    crops = crop_masks(masks)
    names = {i: id2label[i].name for i in LABEL_IDS}
    txt = write_frame(str(tmp_path / 'out'),
                      f'/data/leftImg8bit/val/lindau/{FRAME}_leftImg8bit.png',
                      (20, 30), [26, 24, 33], [0.75, 0.5, 0.125], crops, names)
    assert txt == str(tmp_path / 'out' / f'{FRAME}_leftImg8bit_pred.txt')
    theirs = _official(txt)
    assert [osp.basename(p) for p in theirs] == [
        f'{FRAME}_leftImg8bit_0_car.png', f'{FRAME}_leftImg8bit_1_person.png',
        f'{FRAME}_leftImg8bit_2_bicycle.png']
    assert list(theirs.values()) == [(26, 0.75), (24, 0.5), (33, 0.125)]
    for path, mask in zip(theirs, masks):
        png = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and png.shape == (20, 30)
        np.testing.assert_array_equal(png, mask.astype(np.uint8) * 255)
    # a None mask (nothing predicted) is an empty PNG
    write_frame(str(tmp_path / 'none'), f'{FRAME}_leftImg8bit.png', (4, 5),
                [28], [0.5], [None], names)
    png = cv2.imread(str(tmp_path / 'none' / f'{FRAME}_leftImg8bit_0_bus.png'),
                     cv2.IMREAD_UNCHANGED)
    assert png.shape == (4, 5) and not png.any()


def _gt(root, city, frame):
    path = osp.join(root, city, f'{frame}_gtFine_instanceIds.png')
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((20, 30), 26000, np.uint16))
    return path


def test_read_results_pairs_frames(tmp_path):
    gt_dir = str(tmp_path / 'gt')
    gts = [_gt(gt_dir, 'lindau', 'lindau_000001_000019'),
           _gt(gt_dir, 'aachen', 'aachen_000002_000019'),
           _gt(gt_dir, 'aachen', 'aachen_000001_000019')]
    assert find_gt_files(gt_dir) == sorted(gts)
    res = tmp_path / 'res'
    (res / 'sub').mkdir(parents=True)
    (res / 'sub' / 'aachen_000001_000019_leftImg8bit_pred.txt').write_text(
        'm.png 26 0.5\n')
    (res / 'notes.txt').write_text('not a prediction file')
    tasks, missing = read_results(gts, str(res))
    assert missing == [gts[0], gts[1]]
    assert tasks == [FrameTask(gts[0], [], []), FrameTask(gts[1], [], []),
                     FrameTask(gts[2], [26], [0.5],
                               mask_paths=[str(res / 'sub' / 'm.png')])]
    # the file name needs only CITY_SEQUENCE_FRAME, as the official one
    (res / 'lindau_000001_000019.txt').write_text('l.png 24 0.25\n')
    tasks, missing = read_results(gts, str(res))
    assert missing == [gts[1]]
    assert tasks[0] == FrameTask(gts[0], [24], [0.25],
                                 mask_paths=[str(res / 'l.png')])
    os.remove(res / 'lindau_000001_000019.txt')
    (res / 'aachen_000001_000019_other.txt').write_text('')
    assert error(read_results, gts, str(res)).startswith(
        f'several prediction files for {gts[2]}: ')
    assert error(read_results, gts, str(tmp_path / 'nope')) == (
        f'results folder {tmp_path}/nope does not exist')


def test_gt_folders_and_names(tmp_path):
    assert error(find_gt_files, str(tmp_path / 'nope')) == \
        f'ground-truth folder {tmp_path}/nope does not exist'
    assert error(find_gt_files, str(tmp_path)) == (
        f'no *_gtFine_instanceIds.png under {tmp_path} (e.g. '
        'data/cityscapes/gtFine/val; the test split has no public ground '
        'truth)')
    assert frame_key('/a/b/lindau_000001_000019_gtFine_instanceIds.png') == \
        'lindau_000001_000019'
    assert frame_key('lindau_000001_000019') == 'lindau_000001_000019'
    # any depth below the folder given: gtFine/ finds every split's files
    deep = tmp_path / 'gtFine' / 'val' / 'lindau'
    deep.mkdir(parents=True)
    (deep / f'{FRAME}_gtFine_instanceIds.png').write_bytes(b'')
    assert find_gt_files(str(tmp_path / 'gtFine')) == [
        str(deep / f'{FRAME}_gtFine_instanceIds.png')]
    assert error(frame_key, '/a/lindau_000001.png') == (
        '/a/lindau_000001.png is not named like a Cityscapes file '
        '(CITY_SEQUENCE_FRAME_...)')


def test_read_masks(tmp_path):
    path, mask = str(tmp_path / 'm.png'), np.zeros((20, 30), np.uint8)
    mask[4:9, 5:7] = 255
    cv2.imwrite(path, mask)
    # like the official script: only evaluated labels' masks are decoded
    crops = read_masks([path, str(tmp_path / 'unread.png'), path],
                       [26, 29, 33], (20, 30))
    assert len(crops) == 3 and crops[1] is None
    for i in (0, 2):
        np.testing.assert_array_equal(crops[i], crop_masks(mask[None] > 0)[0])
    assert error(read_masks, [path], [26], (40, 30)) == (
        f"{path} is 30x20, its ground truth 30x40: masks must have the "
        "image's size")


def test_label_id_report():
    def tasks(*ids):
        return [FrameTask('g', list(ids), [0.5] * len(ids))]

    assert label_id_report(tasks(24, 33)) is None
    assert label_id_report(tasks()) is None
    assert label_id_report(tasks(24, 99, 7)) == (
        '2 of 3 predictions have label ids outside the 8 instance classes '
        '(24, 25, 26, 27, 28, 31, 32, 33) (ids 7, 99), which the evaluation '
        'ignores')
    # train ids (cityscapesscripts' trainId of each class) ...
    train = {id2label[i].trainId: i for i in LABEL_IDS}
    msg = label_id_report(tasks(24, *sorted(train)))
    assert msg.endswith(
        "; they look like train ids: the results format wants label ids "
        "(cityscapesscripts' labels, " +
        ', '.join(f'{t}->{i}' for t, i in sorted(train.items())) + ')')
    assert msg.startswith('8 of 9 predictions')
    # ... or class indices
    msg = label_id_report(tasks(24, 0, 1))
    assert msg.endswith('; they look like class indices: the results format '
                        'wants label ids (0->24, 1->25, 2->26, 3->27, 4->28, '
                        '5->31, 6->32, 7->33)')
    msg = label_id_report(tasks(24, *range(8)))  # every class index
    assert 'they look like class indices' in msg
    msg = label_id_report(tasks(24, *range(100, 110)))
    assert '(ids 100, 101, 102, 103, 104, 105, 106, 107), which' in msg
    msg = error(label_id_report, tasks(11, 12))
    assert msg.startswith('2 of 2 predictions')
    assert msg.endswith('; nothing left to evaluate')


def test_hostile_results_are_refused_before_reading(tmp_path):
    """Paths out (``../``, symlinks to a file or /dev/zero), FIFOs, files
    over the cap: refused with file and line, nothing read."""
    gts, res = [_gt(str(tmp_path / 'gt'), 'lindau', FRAME)], tmp_path / 'res'
    (res / 'sub').mkdir(parents=True)
    txt = res / 'sub' / f'{FRAME}_leftImg8bit_pred.txt'
    (tmp_path / 'secret.png').write_bytes(b'x')
    (res / 'zero.png').symlink_to('/dev/zero')
    for line, why in [('../ok.png 26 0.5', None),  # still inside
                      ('../../secret.png 26 0.5', "'../secret.png' "
                       'resolves to '),
                      ('../zero.png 26 0.5', "resolves to '/dev/zero'")]:
        txt.write_text(f'ok.png 24 0.5\n{line}\n')
        if why is None:
            assert read_results(gts, str(res))[0][0].mask_paths == [
                str(res / 'sub' / 'ok.png'), str(res / 'ok.png')]
            continue
        msg = error(read_results, gts, str(res))
        assert msg.startswith(f'{txt}:2: ') and why in msg
    # the prediction file itself: a symlink out, a FIFO, too big
    os.remove(txt)
    txt.symlink_to(tmp_path / 'secret.png')
    with pytest.raises(CitymaskError, match='secret.png.*outside'):
        read_results(gts, str(res))
    os.remove(txt)
    os.mkfifo(txt)  # a blocking open would never return
    assert error(read_results, gts, str(res)) == f'{txt}: not a regular file'
    os.remove(txt)
    txt.write_text('ok.png 24 0.5\n' * 100)
    assert error(read_prediction_txt, str(txt), str(res), max_bytes=1000) == (
        f'{txt}: 1400 bytes, more than the 1000 a real Cityscapes submission '
        'needs; not read')
    assert MAX_PRED_BYTES == 2**20  # the default
