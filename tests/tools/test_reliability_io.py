"""Outputs, disks and Ctrl-C, tried with the tools as a user meets them:
checked writable before the work, written whole or not at all, a failure
one line with its exit status (docs/reliability.md lists each case)."""
import errno
import glob
import os
import os.path as osp
import signal
import subprocess
import sys

import numpy as np
import pytest

from citymask.cli import EXIT_INTERRUPTED, EXIT_IO
from citymask.datasets.cityscapes_converter import ann_file_name
from citymask.fileio import atomic_dir
from .. import fs_fixtures
from ..conftest import REPO, run_tool, tool_env
from .conftest import CFG, fails, ok

tiny_fs = fs_fixtures.tiny_fs
WEIRD = 'wé ird, dir'  # a space, a comma and a non-ASCII letter


def _fill(folder, leave):
    """Fill the file system of ``folder`` but ``leave`` bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(osp.join(folder, 'filler'), 'wb') as f:
        f.write(b'\0' * max(0, free - leave))


@pytest.mark.parametrize('args,message', [
    (['tools/dataset_converters/cityscapes.py', '{data}', '-o', '{out}'],
     'cannot write output '),
    (['tools/surgery.py', '{standin}', '{out}.pth'],
     'cannot write output checkpoint '),
    (['tools/test.py', CFG, '{standin}', '--work-dir', '{work}', '--out',
      '{out}.pkl', '--cfg-options', 'data_root={data}'],
     'cannot write --out '),
    (['tools/test.py', CFG, '{standin}', '--work-dir', '{work}', '--split',
      'test', '--format-only', '--outfile-prefix', '{out}', '--cfg-options',
      'data_root={data}'], 'cannot write --outfile-prefix '),
    (['tools/analysis_tools/eval_cityscapes.py', '{data}/gtFine/val',
      '{work}', '--out', '{out}.json'], 'cannot write --out '),
    (['tools/analysis_tools/plot_curves.py', '{work}', '--out', '{out}.png'],
     'cannot write --out '),
    (['tools/misc/make_coco_standin.py', CFG, '{out}.pth'],
     'cannot write output checkpoint '),
], ids=['converter', 'surgery', 'test --out', 'test --outfile-prefix',
        'eval_cityscapes', 'plot_curves', 'make_coco_standin'])
def test_an_output_under_a_file_fails_before_the_work(mini_data, tmp_path,
                                                      args, message):
    root, data = mini_data
    standin = osp.join(root, 'standin.pth')
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    (tmp_path / 'work').mkdir()
    line = fails(run_tool(*(a.format(data=data, standin=standin,
                                     work=tmp_path / 'work',
                                     out=blocker / 'out') for a in args)),
                 message)
    assert f'{blocker} is a file, not a folder' in line
    assert os.listdir(tmp_path / 'work') == []  # nothing was started


def test_surgery_onto_a_full_disk(mini_data, tiny_fs):
    # torch.save says "unexpected pos N vs M"; the user reads this
    dst = tiny_fs / 'cs.pth'
    line = fails(run_tool('tools/surgery.py',
                          osp.join(mini_data[0], 'standin.pth'), str(dst)),
                 f'no space left on {dst} (', EXIT_IO)
    assert 'MiB needed, ' in line and 'nothing was written' in line
    assert os.listdir(tiny_fs) == []


def test_the_converter_onto_a_full_disk_writes_no_split(mini_data, tiny_fs):
    _, data = mini_data
    sizes = [osp.getsize(osp.join(data, 'annotations', ann_file_name(s)))
             for s in ('train', 'val')]
    _fill(tiny_fs, sizes[0] + sizes[1] // 2)  # train fits, val doesn't
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


def test_format_only_never_replaces_a_folder_of_user_files(mini_data,
                                                           tmp_path):
    root, data = mini_data
    mine = tmp_path / 'cityscapes'  # e.g. the dataset root, by a typo
    (mine / 'leftImg8bit').mkdir(parents=True)
    (mine / 'leftImg8bit' / 'a.png').write_bytes(b'image')
    (mine / 'stale_pred.txt').write_text('old.png 26 0.9\n')
    for flags in ([], ['--overwrite']):
        fails(run_tool('tools/test.py', CFG, osp.join(root, 'standin_cs.pth'),
                       '--split', 'test', '--format-only', '--outfile-prefix',
                       str(mine), *flags, '--work-dir', str(tmp_path / 'w'),
                       '--cfg-options', f'data_root={data}'),
              f'--outfile-prefix {mine} is not empty (2 entries, e.g. '
              'leftImg8bit) and not an earlier output of this tool (no record '
              f'of it in {tmp_path}/.citymask-cityscapes), so it is never '
              'replaced; choose a new or empty folder')
    assert sorted(p.name for p in mine.rglob('*')) == [
        'a.png', 'leftImg8bit', 'stale_pred.txt']
    assert sorted(os.listdir(tmp_path)) == ['cityscapes']  # no work dir


def test_paths_with_spaces_commas_and_non_ascii(mini_data, tmp_path):
    """Data root, checkpoint and outputs under 'wé ird, dir': converted,
    converted by surgery, tested with --format-only over an older
    submission (--overwrite), whose stale file is gone."""
    root, data = mini_data
    weird = tmp_path / WEIRD
    weird.mkdir()
    os.symlink(data, weird / 'mini data')
    ann = weird / 'annotations, new'
    ok(run_tool('tools/dataset_converters/cityscapes.py',
                str(weird / 'mini data'), '-o', str(ann), '--splits',
                'test'))
    assert os.listdir(ann) == ['instancesonly_filtered_gtFine_test.json']
    ckpt = weird / 'stand in, cs.pth'
    ok(run_tool('tools/surgery.py', osp.join(root, 'standin.pth'),
                str(ckpt)))
    prefix = weird / 'sub mission'
    with atomic_dir(str(prefix)) as older:  # an earlier submission
        open(osp.join(older, 'stale_pred.txt'), 'w').close()
    res = ok(run_tool('tools/test.py', CFG, str(ckpt), '--split', 'test',
                      '--format-only', '--outfile-prefix', str(prefix),
                      '--overwrite', '--work-dir', str(weird / 'w'),
                      '--cfg-options', f'data_root={weird / "mini data"}'))
    assert f'submission: {prefix}.zip' in res.stdout
    txts = sorted(p for p in os.listdir(prefix) if p.endswith('.txt'))
    tests = glob.glob(osp.join(data, 'leftImg8bit', 'test', '*', '*.png'))
    assert txts == sorted(osp.basename(p)[:-4] + '_pred.txt' for p in tests)
    assert sorted(os.listdir(weird)) == [
        '.citymask-sub mission', 'annotations, new', 'mini data',
        'stand in, cs.pth', 'sub mission', 'sub mission.zip',
        'w']  # no temporary folders left


@pytest.mark.parametrize('args,message', [
    (['--resume', '{standin}'], '--resume {standin}: it holds model weights '
     'only, no training state (optimizer, iteration) to resume; to train '
     'from these weights pass --cfg-options load_from={standin} instead'),
    (['--cfg-options', 'max_iters=6'], 'max_iters is a variable of the '
     'config file, read only while the file is parsed, so setting it '
     'changes nothing; set it where it is used: train_cfg.max_iters'),
    (['--cfg-options', 'optim_wrapper.optimizer.lr=-1'],
     'optim_wrapper.optimizer.lr=-1: lr must be greater than 0'),
    (['--launcher', 'pytorch'], '--launcher pytorch: RANK, WORLD_SIZE, '
     'MASTER_ADDR, MASTER_PORT not set'),
])
def test_train_refuses_what_it_would_ignore_or_fail_on(mini_data, tmp_path,
                                                       args, message):
    root, data = mini_data
    standin = osp.join(root, 'standin_cs.pth')
    args = [a.format(standin=standin) for a in args]
    fails(run_tool('tools/train.py', CFG, '--work-dir', str(tmp_path / 'w'),
                   *args, *([] if '--cfg-options' in args else
                            ['--cfg-options']), f'data_root={data}'),
          message.format(standin=standin))
    assert not osp.exists(tmp_path / 'w') or \
        os.listdir(tmp_path / 'w') == []  # refused before the work


# the evaluators' outputs, in-process


def _metric_results(n, size=64):
    """What CityscapesInstanceMetric.process() collects for ``n`` images."""
    from citymask.evaluation.crops import crop_masks
    masks = np.zeros((2, size, size), bool)
    masks[0, 5:20, 5:20] = masks[1, 30:50, 10:60] = True
    return [dict(img_path=f'/x/berlin_{i:06d}_000019_leftImg8bit.png',
                 ori_shape=(size, size), label_ids=[24, 26],
                 scores=[0.9, 0.4], masks=crop_masks(masks))
            for i in range(n)]


def _format_only_metric(prefix, **kwargs):
    import citymask.register  # noqa: F401
    from citymask.classes import CLASSES
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    metric = CityscapesInstanceMetric(format_only=True,
                                      outfile_prefix=str(prefix), **kwargs)
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def test_format_only_results_are_whole_or_absent(tmp_path, monkeypatch):
    from citymask.evaluation import results_format
    prefix = tmp_path / 'results'
    metric = _format_only_metric(prefix)
    real = results_format.write_bytes_atomic
    calls = []

    def disk_full_at_the_fifth_mask(data, path):
        calls.append(path)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(data, path)

    monkeypatch.setattr(results_format, 'write_bytes_atomic',
                        disk_full_at_the_fifth_mask)
    with pytest.raises(OSError):
        metric.compute_metrics(_metric_results(4))
    assert os.listdir(tmp_path) == []  # no partial folder, no temp folder
    monkeypatch.setattr(results_format, 'write_bytes_atomic', real)
    metric.compute_metrics(_metric_results(4))
    assert len(os.listdir(prefix)) == 4 * 3  # 4 txt + 8 masks
    # a second run into it: refused at build time unless overwrite
    with pytest.raises(Exception, match='is not empty'):
        _format_only_metric(prefix)
    _format_only_metric(prefix, overwrite=True).compute_metrics(
        _metric_results(1))
    assert len(os.listdir(prefix)) == 3
    assert sorted(os.listdir(tmp_path)) == ['.citymask-results', 'results']


def test_out_pickle_is_whole_or_absent(tmp_path):
    from mmdet.evaluation import DumpDetResults

    import citymask.register  # noqa: F401  (the atomic dump)
    out = tmp_path / 'results.pkl'
    DumpDetResults(out_file_path=str(out)).compute_metrics([{'a': 1}])
    before = out.read_bytes()
    # fails half-way through pickling: mmengine alone would leave half
    with pytest.raises(Exception):
        DumpDetResults(out_file_path=str(out)).compute_metrics(
            [{'a': np.zeros(10**6)}, {'b': lambda: 0}])
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ['results.pkl']
    from citymask.checkpoint import load_pickle
    assert load_pickle(str(out)) == [{'a': 1}]
