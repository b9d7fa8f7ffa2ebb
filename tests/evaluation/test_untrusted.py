"""Untrusted results: paths inside their folder, regular files only, sizes
capped, short excerpts (hostile folders, zips, masks: their own tests)."""
import os

import cv2
import numpy as np

from citymask.evaluation.untrusted import excerpt, inside, read_regular
from ..conftest import run_tool
from ..tools.conftest import error, fails

FRAME = 'lindau_000001_000019'


def test_inside_resolves_symlinks_and_dots(tmp_path):
    (tmp_path / 'res' / 'sub').mkdir(parents=True)
    (tmp_path / 'res' / 'a.png').write_bytes(b'x')
    (tmp_path / 'res' / 'sub' / 'link.png').symlink_to('../a.png')
    res = str(tmp_path / 'res')
    assert inside(res, f'{res}/sub/../a.png') == f'{res}/a.png'
    assert inside(res, f'{res}/sub/link.png') == f'{res}/a.png'
    (tmp_path / 'res' / 'zero.png').symlink_to('/dev/zero')
    assert error(inside, res, f'{res}/zero.png') == (
        f"'zero.png' resolves to '/dev/zero', outside {res}; results must "
        'stay inside their folder')
    assert 'outside' in error(inside, res, f'{res}/sub/../../secret.txt')
    # a sibling folder whose name starts like the results folder's
    (tmp_path / 'res2').mkdir()
    assert 'outside' in error(inside, res, str(tmp_path / 'res2' / 'a.png'))
    # what messages quote of a path or line
    assert excerpt('a b\r') == "'a b\\r'"
    assert excerpt('x' * 81) == f"'{'x' * 80}'... (81 characters)"


def test_read_regular_refuses_what_is_not_a_small_regular_file(tmp_path):
    path = tmp_path / 'a.txt'
    path.write_bytes(b'0123456789')
    assert read_regular(str(path), 10) == b'0123456789'
    assert read_regular(str(path), 10, head=4) == b'0123'
    assert error(read_regular, str(path), 9) == (
        f'{path}: 10 bytes, more than the 9 a real Cityscapes submission '
        'needs; not read')
    # a FIFO nobody writes to: refused unopened (the open would block)
    fifo = tmp_path / 'fifo.txt'
    os.mkfifo(fifo)
    assert error(read_regular, str(fifo), 10) == f'{fifo}: not a regular file'
    assert error(read_regular, '/dev/zero', 10) == (
        '/dev/zero: not a regular file')
    assert 'No such file' in error(read_regular, str(tmp_path / 'missing'), 10)
    # a last symlink (swapped in after resolving) is not followed
    (tmp_path / 'link.txt').symlink_to(path)
    assert error(read_regular, f'{tmp_path}/link.txt', 10).startswith(
        f'cannot read {tmp_path}/link.txt: ')


def test_eval_cityscapes_refuses_hostile_results(tmp_path):
    gt_dir = tmp_path / 'gt' / 'lindau'
    gt_dir.mkdir(parents=True)
    cv2.imwrite(str(gt_dir / f'{FRAME}_gtFine_instanceIds.png'),
                np.full((20, 30), 26000, np.uint16))
    res = tmp_path / 'res'
    res.mkdir()
    (res / f'{FRAME}_leftImg8bit_pred.txt').write_text('m.png 26 0.5\n')
    for make, why in [(lambda m: m.symlink_to('/dev/zero'),
                       "resolves to '/dev/zero', outside"),
                      (os.mkfifo, 'm.png: not a regular file')]:
        make(res / 'm.png')
        fails(run_tool('tools/analysis_tools/eval_cityscapes.py',
                       str(gt_dir), str(res), '--nproc', '1'), why)
        os.remove(res / 'm.png')
