"""Outputs, disks and Ctrl-C, tried with the tools as a user meets them:
every output is checked writable before the work, written whole or not at
all, and a failure is one line with the right exit status
(docs/reliability.md lists each case with its test)."""
import errno
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from citymask.cli import EXIT_INTERRUPTED, EXIT_IO
from citymask.datasets.cityscapes_converter import ann_file_name
from citymask.errors import CitymaskError
from .. import fs_fixtures
from ..conftest import REPO, run_tool, tool_env
from .conftest import CFG, fails, ok

tiny_fs = fs_fixtures.tiny_fs
read_only_fs = fs_fixtures.read_only_fs
WEIRD = 'wé ird, dir'  # a space, a comma and a non-ASCII letter


def _fails_io(res, message):
    """One ``error:`` line with ``message`` and exit status 74."""
    assert res.returncode == EXIT_IO, (res.stdout + res.stderr)[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    assert message in lines[0], lines[0]


def _fill(folder, leave):
    """Fill the file system of ``folder`` but ``leave`` bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(osp.join(folder, 'filler'), 'wb') as f:
        f.write(b'\0' * max(0, free - leave))


@pytest.fixture(scope='module')
def standin(mini_data):
    root, _ = mini_data
    return osp.join(root, 'standin.pth')


def _tools_writing_under(blocker, data, standin, work):
    out = osp.join(blocker, 'out')
    return {
        'converter': (['tools/dataset_converters/cityscapes.py', data, '-o',
                       out], 'cannot write output '),
        'surgery': (['tools/surgery.py', standin, out + '.pth'],
                    'cannot write output checkpoint '),
        'test --out': (['tools/test.py', CFG, standin, '--work-dir', work,
                        '--out', out + '.pkl', '--cfg-options',
                        f'data_root={data}'], 'cannot write --out '),
        'test --outfile-prefix': (
            ['tools/test.py', CFG, standin, '--work-dir', work, '--split',
             'test', '--format-only', '--outfile-prefix', out,
             '--cfg-options', f'data_root={data}'],
            'cannot write --outfile-prefix '),
        'eval_cityscapes': (['tools/analysis_tools/eval_cityscapes.py',
                             osp.join(data, 'gtFine', 'val'), work, '--out',
                             out + '.json'], 'cannot write --out '),
        'plot_curves': (['tools/analysis_tools/plot_curves.py', work,
                         '--out', out + '.png'], 'cannot write --out '),
        'make_coco_standin': (['tools/misc/make_coco_standin.py', CFG,
                               out + '.pth'],
                              'cannot write output checkpoint '),
    }


TOOLS = ['converter', 'surgery', 'test --out', 'test --outfile-prefix',
         'eval_cityscapes', 'plot_curves', 'make_coco_standin']


@pytest.mark.parametrize('tool', TOOLS)
def test_an_output_under_a_file_fails_before_the_work(mini_data, standin,
                                                      tmp_path, tool):
    _, data = mini_data
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    (tmp_path / 'work').mkdir()
    args, message = _tools_writing_under(str(blocker), data, standin,
                                         str(tmp_path / 'work'))[tool]
    line = fails(run_tool(*args), message)
    assert f'{blocker} is a file, not a folder' in line
    assert os.listdir(tmp_path / 'work') == []  # nothing was started


def test_show_dir_is_checked_with_the_other_test_outputs(tmp_path):
    # tools/test.py passes all its outputs here (--out, --outfile-prefix:
    # above, through the tool)
    from citymask.preflight import check_test_outputs
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(CitymaskError,
                       match=f'cannot write --show-dir {blocker}/vis: '
                       f'{blocker} is a file, not a folder'):
        check_test_outputs(str(tmp_path / 'w'), show_dir=str(blocker / 'vis'))
    with pytest.raises(CitymaskError, match='cannot write --show-dir '):
        check_test_outputs(str(blocker), show_dir='vis')  # relative
    check_test_outputs(str(tmp_path / 'w'), show_dir='vis')
    assert os.listdir(tmp_path) == ['a_file']


@pytest.mark.parametrize('tool', ['converter', 'surgery', 'eval_cityscapes'])
def test_an_output_on_a_read_only_disk_fails_before_the_work(
        mini_data, standin, tmp_path, read_only_fs, tool):
    _, data = mini_data
    (tmp_path / 'work').mkdir()
    args, message = _tools_writing_under(
        str(read_only_fs / 'sub'), data, standin,
        str(tmp_path / 'work'))[tool]
    line = fails(run_tool(*args), message)
    assert 'Read-only file system' in line


def test_surgery_onto_a_full_disk(standin, tiny_fs):
    # torch.save says "unexpected pos N vs M"; the user reads this
    dst = tiny_fs / 'cs.pth'
    _fails_io(run_tool('tools/surgery.py', standin, str(dst)),
              f'no space left on {dst} (')
    res = run_tool('tools/surgery.py', standin, str(dst))
    assert 'MiB needed, ' in res.stderr and 'nothing was written' in \
        res.stderr
    assert os.listdir(tiny_fs) == []


def test_the_converter_onto_a_full_disk_writes_no_split(mini_data, tiny_fs):
    _, data = mini_data
    sizes = [osp.getsize(osp.join(data, 'annotations', ann_file_name(s)))
             for s in ('train', 'val')]
    _fill(tiny_fs, sizes[0] + sizes[1] // 2)  # train fits, val doesn't
    out = tiny_fs / 'ann'
    _fails_io(run_tool('tools/dataset_converters/cityscapes.py', data, '-o',
                       str(out)), 'no space left on ')
    assert not out.exists() or os.listdir(out) == []  # no split at all
    assert sorted(os.listdir(tiny_fs)) in (['filler'], ['ann', 'filler'])


def _pool_processes(pid):
    """Descendants of process ``pid`` that multiprocessing started (spawned
    workers, or a forkserver and its workers), its resource tracker aside.
    """
    parent, cmdline = {}, {}
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            with open(stat[:-4] + 'cmdline', 'rb') as f:
                cmdline[stat] = f.read()
        except OSError:
            continue
        parent[int(stat.split('/')[2])] = (ppid, cmdline[stat])
    found = 0
    for p, (ppid, cmd) in parent.items():
        while ppid not in (pid, 0, 1) and ppid in parent:
            ppid = parent[ppid][0]
        found += (ppid == pid and b'multiprocessing' in cmd
                  and b'resource_tracker' not in cmd)
    return found


def _replicate_train(root, dest, copies):
    """A tree whose train split is ``copies`` renamed copies (symlinks) of
    the train frames of ``root``: work that takes the converter seconds
    whatever the machine, without generating more frames."""
    for kind in ('leftImg8bit', 'gtFine'):
        for city_dir in glob.glob(osp.join(root, kind, 'train', '*')):
            city = osp.basename(city_dir)
            for k in range(copies):
                new_city = city + 'abcdefghijklmnopqrstuvwxyz'[k % 26] * (
                    1 + k // 26)
                folder = osp.join(dest, kind, 'train', new_city)
                os.makedirs(folder, exist_ok=True)
                for name in os.listdir(city_dir):
                    os.symlink(osp.join(city_dir, name), osp.join(
                        folder, new_city + name[len(city):]))


def test_ctrl_c_in_the_converter_workers(mini_cityscapes, tmp_path):
    # 300 full-resolution frames: many seconds of work in the workers, so
    # the Ctrl-C lands inside it even on a fast machine
    root = tmp_path / 'many'
    _replicate_train(mini_cityscapes, str(root), 30)
    out = tmp_path / 'ann'
    proc = subprocess.Popen(
        [sys.executable, 'tools/dataset_converters/cityscapes.py',
         str(root), '-o', str(out), '--nproc', '2', '--splits', 'train'],
        cwd=REPO,
        env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    deadline = time.time() + 120
    while (_pool_processes(proc.pid) < 2 and proc.poll() is None
           and time.time() < deadline):
        time.sleep(0.01)
    time.sleep(1)  # inside the work
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, stdout + stderr
    assert stderr == 'interrupted\n'  # no worker tracebacks
    assert not out.exists()


SAVE_BIG = '''
import sys, torch
from citymask.checkpoint import save_checkpoint
from citymask.cli import exit_on_error
exit_on_error(save_checkpoint)(
    dict(state_dict={'w': torch.ones(2**27)}), sys.argv[1])
'''


def test_ctrl_c_during_a_checkpoint_write(tmp_path):
    folder = tmp_path / 'ckpts'
    folder.mkdir()
    proc = subprocess.Popen(
        [sys.executable, '-c', SAVE_BIG, str(folder / 'iter_8.pth')],
        cwd=REPO, env=tool_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.listdir(folder) and time.time() < deadline:
        time.sleep(0.001)
    assert os.listdir(folder)[0].endswith('.tmp')  # being written
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert stderr == 'interrupted\n'
    assert os.listdir(folder) == []  # neither a partial file nor a temp


def test_format_only_into_a_folder_with_files(mini_data, tmp_path):
    root, data = mini_data
    prefix = tmp_path / 'submission'
    prefix.mkdir()
    (prefix / 'stale_pred.txt').write_text('old.png 26 0.9\n')
    fails(run_tool('tools/test.py', CFG, osp.join(root, 'standin_cs.pth'),
                   '--split', 'test', '--format-only', '--outfile-prefix',
                   str(prefix), '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', f'data_root={data}'),
          f'--outfile-prefix {prefix} is not empty (1 entries, e.g. '
          'stale_pred.txt): its files would mix with this run\'s; choose a '
          'new or empty folder, or pass --overwrite to replace it')
    assert not (tmp_path / 'w').exists()  # refused before the work


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
    prefix.mkdir()
    (prefix / 'stale_pred.txt').write_text('old.png 26 0.9\n')
    res = ok(run_tool('tools/test.py', CFG, str(ckpt), '--split', 'test',
                      '--format-only', '--outfile-prefix', str(prefix),
                      '--overwrite', '--work-dir', str(weird / 'w'),
                      '--cfg-options', f'data_root={weird / "mini data"}'))
    assert f'submission: {prefix}.zip' in res.stdout
    txts = sorted(p for p in os.listdir(prefix) if p.endswith('.txt'))
    tests = glob.glob(osp.join(data, 'leftImg8bit', 'test', '*', '*.png'))
    assert txts == sorted(osp.basename(p)[:-4] + '_pred.txt' for p in tests)
    assert sorted(os.listdir(weird)) == [
        'annotations, new', 'mini data', 'stand in, cs.pth', 'sub mission',
        'sub mission.zip', 'w']  # no temporary folders left


def test_train_refuses_what_it_would_ignore(mini_data, tmp_path):
    root, data = mini_data
    standin = osp.join(root, 'standin_cs.pth')
    fails(run_tool('tools/train.py', CFG, '--work-dir', str(tmp_path / 'w'),
                   '--resume', standin, '--cfg-options',
                   f'data_root={data}'),
          f'--resume {standin}: it holds model weights only, no training '
          'state (optimizer, iteration) to resume; to train from these '
          f'weights pass --cfg-options load_from={standin} instead')
    fails(run_tool('tools/train.py', CFG, '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', f'data_root={data}', 'max_iters=6'),
          'max_iters is a variable of the config file, read only while the '
          'file is parsed, so setting it changes nothing; set it where it '
          'is used: train_cfg.max_iters')
    assert os.listdir(tmp_path / 'w') == []  # refused before the work


# the evaluators' outputs, in-process


def _metric_results(n, size=64):
    """What CityscapesInstanceMetric.process() collects, for ``n`` images.
    """
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
    assert os.listdir(tmp_path) == ['results']


def test_format_only_onto_a_real_full_disk(tiny_fs):
    prefix = tiny_fs / 'results'
    metric = _format_only_metric(prefix)
    _fill(tiny_fs, 16 * 1024)
    with pytest.raises(OSError) as e:
        metric.compute_metrics(_metric_results(200, size=256))
    assert e.value.errno == errno.ENOSPC
    assert os.listdir(tiny_fs) == ['filler']


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


def test_out_pickle_onto_a_real_full_disk(tiny_fs):
    from mmdet.evaluation import DumpDetResults

    import citymask.register  # noqa: F401
    out = tiny_fs / 'results.pkl'
    with pytest.raises(OSError) as e:
        DumpDetResults(out_file_path=str(out)).compute_metrics(
            [{'a': np.zeros(2**18)}])
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(out)
    assert os.listdir(tiny_fs) == []
