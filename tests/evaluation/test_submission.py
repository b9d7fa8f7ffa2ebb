"""The submission check: a valid submission passes (and the official
evaluator reads it), each fault the server rejects is reported."""
import glob
import os
import os.path as osp
import shutil
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label

from citymask.classes import CLASSES, LABEL_IDS
from citymask.evaluation.crops import crop_masks
from citymask.evaluation.results_format import (find_gt_files, frame_key,
                                                write_frame)
from citymask.evaluation.submission import check_submission, zip_results
from citymask.testing.mini_cityscapes import make_mini_cityscapes
from citymask.testing.official import run_official
from ..conftest import ok, run_tool
from ..tools.conftest import error, fails

NAMES = dict(zip(LABEL_IDS, CLASSES))
W, H = 256, 128


@pytest.fixture(scope='module')
def test_split(tmp_path_factory):
    """3 test images (256x128), a valid submission: predictions on two, an
    empty file for the third."""
    root = str(tmp_path_factory.mktemp('cs'))
    make_mini_cityscapes(root, dict(test=3), width=W, height=H, seed=5)
    images = sorted(glob.glob(osp.join(root, 'leftImg8bit', 'test', '*',
                                       '*.png')))
    results = str(tmp_path_factory.mktemp('sub') / 'results')
    for k, img in enumerate(images):
        n = 0 if k == 2 else 3
        masks = np.zeros((n, H, W), bool)
        for i in range(n):
            masks[i, 10 + 20 * i:40 + 20 * i, 30 * i:30 * i + 50] = True
        labels = [LABEL_IDS[(k + i) % 8] for i in range(n)]
        write_frame(results, img, (H, W), labels, [0.9, 0.5, 0.25][:n],
                    crop_masks(masks), NAMES)
    return root, osp.join(root, 'leftImg8bit', 'test'), results


@pytest.fixture
def sub(test_split, tmp_path):
    """A fresh copy of the valid submission to break."""
    root, images, results = test_split
    copy = str(tmp_path / 'results')
    shutil.copytree(results, copy)
    return copy, images


def _pred_files(folder):
    return sorted(glob.glob(osp.join(folder, '*_pred.txt')))


def _rewrite(txt, fn):
    with open(txt) as f:
        lines = [ln.rstrip('\n').split(' ') for ln in f]
    with open(txt, 'w') as f:
        f.writelines(' '.join(fn(p)) + '\n' for p in lines)


def _a_mask(folder, k):
    """The k-th mask named (each fault breaks another one)."""
    with open(_pred_files(folder)[0]) as f:
        return osp.join(folder, f.readlines()[k].split(' ')[0])


def test_valid_submission_passes(test_split, tmp_path):
    root, images, results = test_split
    report = check_submission(results, images)
    assert report.ok, report.problems
    assert (report.pred_files, report.instances, report.images) == (3, 6, 3)
    assert report.summary().startswith('OK: ')
    # the empty file of the image without objects is there and counted
    assert [osp.getsize(p) == 0 for p in _pred_files(results)].count(True) == 1
    # the official evaluator reads it all (test gtFine: void regions only)
    gt = find_gt_files(osp.join(root, 'gtFine', 'test'))
    run_official(gt, results, str(tmp_path / 'official'))


def _missing_pred(folder):
    # the empty file of the image without objects (the server needs it)
    empty, = [p for p in _pred_files(folder) if osp.getsize(p) == 0]
    os.remove(empty)
    return empty


def _train_ids(folder):
    for txt in _pred_files(folder):
        _rewrite(txt, lambda p: [p[0], str(id2label[int(p[1])].trainId), p[2]])


def _nan_confidence(folder):
    lines = iter(range(100))  # the first line's
    _rewrite(_pred_files(folder)[0],
             lambda p: [p[0], p[1], 'nan' if next(lines) == 0 else p[2]])


def _wrong_size(folder):
    cv2.imwrite(_a_mask(folder, 1), np.full((H // 2, W // 2), 255, np.uint8))


FAULTS = {
    'missing pred file': (_missing_pred, 'no prediction file for test image'),
    'missing mask': (lambda f: os.remove(_a_mask(f, 0)), 'does not exist'),
    'wrong size': (_wrong_size, f'{W // 2}x{H // 2} pixels, its image'),
    '3-channel mask': (lambda f: cv2.imwrite(
        _a_mask(f, 2), np.full((H, W, 3), 255, np.uint8)), '3 channels'),
    'train id': (_train_ids, 'look like train ids'),
    'NaN confidence': (_nan_confidence, 'nan is not a finite number'),
    'stray file': (lambda f: Path(f, 'notes.md').write_text('x'),
                   'notes.md: stray file'),
}


@pytest.mark.parametrize('fault', list(FAULTS))
def test_each_fault_is_reported(sub, fault, tmp_path):
    folder, images = sub
    break_it, message = FAULTS[fault]
    break_it(folder)
    report = check_submission(folder, images)
    assert not report.ok
    assert len(report.problems) == 1, report.problems
    assert message in report.problems[0], report.problems
    # the same from its zip
    from_zip = check_submission(_zip_of(folder, folder + '.zip'), images)
    assert from_zip.problems == report.problems
    if fault == 'missing pred file':  # where the official script stops
        gt = find_gt_files(images.replace('leftImg8bit', 'gtFine'))
        with pytest.raises(SystemExit):
            run_official(gt, folder, str(tmp_path / 'official'))
    if fault == 'train id':  # cityscapesscripts' train id -> label id
        for label_id in LABEL_IDS[:3]:
            assert f'{id2label[label_id].trainId}->{label_id}' in \
                report.problems[0]


def test_line_format_as_the_official_reader(sub):
    folder, images = sub
    txt = _pred_files(folder)[0]
    with open(txt) as f:
        first, *rest = f.readlines()
    png, label, score = first.split(' ')
    with open(txt, 'w') as f:
        f.write(f'{png}\t{label} {score}')  # a tab is not a separator
        f.write('\n')  # a blank line breaks the official reader
        f.write(f'/abs/{png} {label} {score}')
        f.write(f'../{png} {label} {score}')
        f.writelines(rest)
    problems = check_submission(folder, images).problems
    assert any(':1: expected "relative/mask.png' in p for p in problems)
    assert any(':2: expected "relative/mask.png' in p for p in problems)
    assert any(":3: mask path '/abs/" in p and 'relative' in p
               for p in problems)
    assert any(":4: mask path '../" in p and 'outside' in p for p in problems)
    # the mask of line 1 is now named by no line
    assert any(f'{png}: stray file' in p for p in problems)


def test_cli(sub, tmp_path):
    folder, images = sub
    assert ok(run_tool('tools/check_submission.py', folder, '--images',
                       images)).stdout.startswith('OK: ')
    FAULTS['stray file'][0](folder)
    _nan_confidence(folder)
    res = run_tool('tools/check_submission.py', folder, '--images', images)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert len(lines) == 3 and lines[-1].startswith('INVALID: ')
    assert 'stray file' in res.stdout and 'not a finite number' in res.stdout
    # bad input of the tool itself: one error line, status 2
    for args in ([str(tmp_path / 'nothing')],
                 [folder, '--images', str(tmp_path / 'nothing')]):
        fails(run_tool('tools/check_submission.py', *args), 'nothing')


def test_zip_results(sub):
    """The folder's files deflated, only if valid (against the images;
    without them, the structure only)."""
    folder, images = sub
    path = zip_results(folder, images)
    assert path == folder + '.zip'
    assert check_submission(path, images).ok
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(os.listdir(folder))
        for name in zf.namelist():
            with open(osp.join(folder, name), 'rb') as f:
                assert zf.read(name) == f.read()
        assert {i.compress_type for i in zf.infolist()} == {
            zipfile.ZIP_DEFLATED}
    os.remove(path)
    assert zip_results(folder + '/', images) == path  # 'folder/'
    os.remove(path)
    # a frame without its prediction file: only the images tell
    empty = _missing_pred(folder)
    report = check_submission(folder)
    assert report.ok and 'without --images' in report.summary()
    assert osp.isfile(zip_results(folder))  # nothing to compare with
    os.remove(path)
    msg = error(zip_results, folder, images)
    assert msg.startswith(f'{folder} is not a valid submission, not zipped: '
                          '1 problems, first: ')
    assert frame_key(empty) in msg
    assert msg.endswith(f'(all of them: `python tools/check_submission.py '
                        f'{folder} --images {images}`)')
    assert not osp.exists(path)
    _wrong_size(folder)  # without images: masks of one frame of two sizes
    problem, = check_submission(folder).problems
    assert 'masks of different sizes' in problem


def _zip_of(folder, path, size=None):
    """``folder`` zipped; with ``size``, every member's declared size
    rewritten to it (a zip that lies about what it expands to)."""
    shutil.make_archive(path[:-4], 'zip', folder)
    if size is not None:
        data = bytearray(open(path, 'rb').read())
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
        for info in infos:  # the local header: uncompressed size at +22
            struct.pack_into('<I', data, info.header_offset + 22, size)
        start = data.rfind(b'PK\x05\x06')
        cd = struct.unpack_from('<I', data, start + 16)[0]
        for _ in infos:  # central directory: at +24; next entry
            struct.pack_into('<I', data, cd + 24, size)
            n, m, k = struct.unpack_from('<HHH', data, cd + 28)
            cd += 46 + n + m + k
        open(path, 'wb').write(bytes(data))
    return path


def test_a_zip_bomb_is_not_read(sub, tmp_path):
    """A 2 KB zip expanding to a 2 MiB line (cap 1 MiB): reported from its
    declared size, not read or quoted; one that lies fails its CRC."""
    folder, images = sub
    txt = _pred_files(folder)[0]
    with open(txt, 'w') as f:
        f.write('x' * 2 * 2**20)
    bomb = _zip_of(folder, str(tmp_path / 'bomb.zip'))
    assert osp.getsize(bomb) < 20000
    res = run_tool('tools/check_submission.py', bomb)
    assert res.returncode == 1, res.stderr
    name = osp.basename(txt)
    assert f'  - {name}: 2097152 bytes, more than the 1048576 a real ' \
        'Cityscapes submission needs; not read\n' in res.stdout
    assert len(res.stdout) < 2000  # no line quoted whole
    # the cap is a parameter: a smaller one refuses a normal file
    os.remove(txt)
    shutil.copy(_pred_files(folder)[0], txt)
    small = check_submission(_zip_of(folder, str(tmp_path / 'a.zip')),
                             max_pred_bytes=100)
    assert f'{name}: {osp.getsize(txt)} bytes, more than the 100' in \
        small.problems[0]
    # declared sizes of 10 bytes: reading stops there and the CRC fails
    liar = check_submission(_zip_of(folder, str(tmp_path / 'l.zip'), 10))
    assert liar.problems and all(
        'damaged zip member (Bad CRC-32' in p or 'stray file' in p
        or 'not a readable image' in p for p in liar.problems), \
        liar.problems


def test_hostile_folder_files_are_problems_not_hangs(sub, tmp_path):
    """Masks that are a FIFO or a symlink (/dev/zero, out): reported, not
    opened."""
    folder, images = sub
    for k, make in enumerate([os.mkfifo,
                              lambda p: os.symlink('/dev/zero', p),
                              lambda p: os.symlink(tmp_path, p)]):
        mask = _a_mask(folder, k)
        os.remove(mask)
        make(mask)
    problems = check_submission(folder, images).problems
    txt = osp.basename(_pred_files(folder)[0])
    # a symlink to a folder is not walked into: the mask is missing
    assert problems[0] == (f"{txt}:3: mask '{osp.basename(mask)}' does not "
                           'exist')
    assert problems[1].endswith(f': not a regular file (named in {txt}:1)')
    assert "resolves to '/dev/zero', outside" in problems[2]
    assert len(problems) == 3, problems
