"""tools/dataset_converters/cityscapes.py onto a full disk and under Ctrl-C
(what it writes: tests/datasets/test_cityscapes_converter.py)."""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys

from citymask.cli import EXIT_INTERRUPTED, EXIT_IO
from citymask.datasets.cityscapes_converter import ann_file_name
from .. import fs_fixtures
from ..conftest import REPO, run_tool, tool_env
from .conftest import fails

tiny_fs = fs_fixtures.tiny_fs


def test_the_converter_onto_a_full_disk_writes_no_split(mini_data, tiny_fs):
    _, data = mini_data
    sizes = [osp.getsize(osp.join(data, 'annotations', ann_file_name(s)))
             for s in ('train', 'val')]
    # fill the disk but what train needs and half of val
    free = os.statvfs(tiny_fs).f_bavail * os.statvfs(tiny_fs).f_frsize
    with open(tiny_fs / 'filler', 'wb') as f:
        f.write(b'\0' * max(0, free - sizes[0] - sizes[1] // 2))
    out = tiny_fs / 'ann'
    fails(run_tool('tools/dataset_converters/cityscapes.py', data, '-o',
                   str(out)), 'no space left on ', EXIT_IO)
    assert not out.exists() or os.listdir(out) == []  # no split at all
    assert sorted(os.listdir(tiny_fs)) in (['filler'], ['ann', 'filler'])


def test_ctrl_c_in_the_converter_workers(mini_cityscapes, tmp_path):
    # two frames' images are FIFOs: the worker that reads one is inside the
    # work when the test opens the other end, and stays there until then;
    # once both are open, both workers have started (a worker still starting
    # would take Ctrl-C as a KeyboardInterrupt of its own)
    root = tmp_path / 'tree'
    for kind in ('leftImg8bit', 'gtFine'):
        for path in glob.glob(osp.join(mini_cityscapes, kind, 'train', '*',
                                       '*')):
            dst = root / osp.relpath(path, mini_cityscapes)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, dst)
    fifos = sorted(root.glob('leftImg8bit/train/*/*.png'))[-2:]
    for fifo in fifos:  # frames with ground truth: a work unit each
        os.remove(fifo)
        os.mkfifo(fifo)
    out = tmp_path / 'ann'
    proc = subprocess.Popen(
        [sys.executable, 'tools/dataset_converters/cityscapes.py',
         str(root), '-o', str(out), '--nproc', '2', '--splits', 'train'],
        cwd=REPO, env=tool_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    # each open returns once a worker opens that frame
    with open(fifos[0], 'wb'), open(fifos[1], 'wb'):
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the group
    stdout, stderr = proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, stdout + stderr
    assert stderr == 'interrupted\n'  # no worker tracebacks
    assert not out.exists()
