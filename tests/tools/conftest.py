import os.path as osp

import pytest

from ..conftest import run_tool

CFG = 'configs/mini/maskrcnn_r18_fpn_mini_cityscapes.py'


def ok(res):
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return res


def fails(res, message):
    """One ``error:`` line with ``message``, exit status 2, no traceback."""
    assert res.returncode == 2, (res.stdout + res.stderr)[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    assert message in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope='session')
def mini_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('mini'))
    data = osp.join(root, 'mini_cityscapes')
    ok(
        run_tool('tools/dataset_converters/make_mini_cityscapes.py', data,
                 '--train', '48', '--val', '12', '--test', '4', '--width',
                 '512', '--height', '256'))
    ok(
        run_tool('tools/dataset_converters/cityscapes.py', data, '--nproc',
                 '2'))
    ok(
        run_tool('tools/misc/make_coco_standin.py', CFG,
                 osp.join(root, 'standin.pth')))
    ok(
        run_tool('tools/surgery.py', osp.join(root, 'standin.pth'),
                 osp.join(root, 'standin_cs.pth')))
    return root, data
