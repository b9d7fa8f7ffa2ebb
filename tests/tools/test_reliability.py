"""Faults, unsafe checkpoints and bad input, tried as a user meets them.
Each case is listed in docs/reliability.md."""
import glob
import json
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import torch

import citymask.register  # noqa: F401  (allow-list for torch.load)
from citymask.cli import EXIT_INTERRUPTED
from citymask.testing.pause_hook import (paused_config, release,
                                         wait_until_paused)
from ..conftest import REPO, run_tool, tool_env
from ..unsafe_loads import scan_source
from .conftest import CFG, fails, ok

# 12 iterations, lr warm-up over 6 and a step at 8: the schedule position
# matters at every iteration; checkpoints every 4
SHORT = [
    'train_cfg.max_iters=12', 'train_cfg.val_interval=100',
    'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1',
    'param_scheduler.0.end=6', 'param_scheduler.1.milestones=[8]',
    'param_scheduler.1.end=12', 'randomness.seed=0',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False'
]


def _train(data, work, *extra, load_from=None, **kw):
    return run_tool('tools/train.py', CFG, '--work-dir', str(work), *extra,
                    '--cfg-options', f'data_root={data}',
                    f'load_from={load_from}', *SHORT, **kw)


def _state(path):
    ckpt = torch.load(path, weights_only=True)  # citymask's allow-list
    return (ckpt['meta']['iter'],
            [g['lr'] for g in ckpt['optimizer']['param_groups']],
            ckpt['param_schedulers'][1]['last_step'])


def _run_scalars(work):
    """Per-iteration scalars (loss, lr, ...) of each run in ``work``, oldest
    first: ``[{step: record}]`` from mmengine's ``vis_data/scalars.json``.
    """
    runs = []
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        runs.append({r['step']: r for r in records if 'loss' in r})
    return runs


@pytest.fixture(scope='module')
def short_run(mini_data, tmp_path_factory):
    """The short training run, uninterrupted, from the stand-in weights."""
    root, data = mini_data
    work = tmp_path_factory.mktemp('ref')
    ok(_train(data, work, load_from=osp.join(root, 'standin_cs.pth')))
    return work


def _paused_run(mini_data, tmp_path, iteration, name='run'):
    """tools/train.py's short run in the background, held after
    ``iteration`` by PauseAtIterHook: ``(process, fifo folder, work dir,
    log)``."""
    root, data = mini_data
    fifo = tmp_path / f'{name}_fifo'
    fifo.mkdir()
    cfg = paused_config(osp.join(REPO, CFG), str(fifo), iteration)
    work, log = tmp_path / name, tmp_path / f'{name}.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, 'tools/train.py', cfg, '--work-dir', str(work),
             '--cfg-options', f'data_root={data}',
             f'load_from={osp.join(root, "standin_cs.pth")}', *SHORT],
            cwd=REPO, env=tool_env(), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
    assert wait_until_paused(proc, str(fifo)), log.read_text()[-3000:]
    return proc, str(fifo), work, log


def _resume_matches_the_uninterrupted_run(mini_data, short_run, work, at,
                                          logged):
    """Resume ``work`` (its last checkpoint: iteration ``at``; iterations
    up to ``logged`` were logged) to the end: same final state as the
    uninterrupted run, and the same lr at every iteration it trained."""
    root, data = mini_data
    [uninterrupted] = _run_scalars(short_run)
    assert sorted(uninterrupted) == list(range(1, 13))
    res = ok(_train(data, work, '--resume',
                    load_from=osp.join(root, 'standin_cs.pth')))
    # mmengine's own record of where it resumed (a run that only loaded
    # the weights would start again at iteration 0) ...
    assert f'resumed epoch: 0, iter: {at}' in res.stdout
    # ... and the resumed run logged iterations at+1..12 only, each with
    # the lr of the uninterrupted run at that iteration
    first, resumed = _run_scalars(work)
    assert sorted(first) == list(range(1, logged + 1))
    assert sorted(resumed) == list(range(at + 1, 13))
    for step, record in resumed.items():
        assert record['lr'] == uninterrupted[step]['lr'], step
    # until the stop the run was the uninterrupted one
    for step, record in first.items():
        assert record['loss'] == uninterrupted[step]['loss'], step
    reference = _state(short_run / 'iter_12.pth')
    assert _state(work / 'iter_12.pth') == reference
    # iteration 12, and the lr past the step at 8: 0.02 * 0.1
    assert reference[0] == 12
    assert reference[1] == pytest.approx([0.002])


def test_sigterm_stops_at_the_boundary_then_resume(mini_data, short_run,
                                                   tmp_path):
    # held after iteration 6 (checkpoints come at 4, 8, 12) ...
    proc, fifo, work, log = _paused_run(mini_data, tmp_path, 6)
    proc.send_signal(signal.SIGTERM)  # what Slurm sends before the kill
    release(fifo)  # the handler ran before the hook returns
    assert proc.wait() == 128 + signal.SIGTERM, log.read_text()[-3000:]
    # ... it stops there, with a checkpoint of iteration 6 of its own
    lines = log.read_text().splitlines()
    assert lines[-1] == (
        f'stopped by SIGTERM after iteration 6 of 12, saved {work}/'
        'iter_6.pth; to continue, run the same command with --resume')
    assert 'Traceback' not in log.read_text()
    assert (work / 'last_checkpoint').read_text() == f'{work}/iter_6.pth'
    assert _state(work / 'iter_6.pth')[0] == 6
    assert not (work / 'iter_8.pth').exists()
    _resume_matches_the_uninterrupted_run(mini_data, short_run, work, 6, 6)


def test_sigkill_then_resume(mini_data, short_run, tmp_path):
    proc, fifo, work, _ = _paused_run(mini_data, tmp_path, 6)
    proc.kill()  # no polite stop: the checkpoint of iteration 4 is the last
    proc.wait()
    assert (work / 'iter_4.pth').exists()
    assert not (work / 'iter_6.pth').exists()
    # the killed run's lock file is left behind; it holds nothing
    assert f'pid {proc.pid} on ' in (work / '.train.lock').read_text()
    # (held before iteration 6 was logged)
    _resume_matches_the_uninterrupted_run(mini_data, short_run, work, 4, 5)


def test_one_run_per_work_dir_and_ctrl_c(mini_data, tmp_path):
    root, data = mini_data
    proc, fifo, work, log = _paused_run(mini_data, tmp_path, 2)
    holder = f'pid {proc.pid} on {socket.gethostname()}'
    res = _train(data, work, load_from=osp.join(root, 'standin_cs.pth'))
    line = fails(res, f'work dir {work} is in use by another training run '
                 f'({holder}); wait for it to end or stop it, or choose '
                 'another --work-dir')
    # with torchrun: rank 0 is refused, the launcher ends rank 1
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()),
               CUDA_VISIBLE_DEVICES='')
    dist = subprocess.run(
        ['bash', 'tools/dist_train.sh', CFG, '2', '--work-dir', str(work),
         '--cfg-options', f'data_root={data}', 'load_from=None'],
        cwd=REPO, env=env, capture_output=True, text=True)
    assert dist.returncode == 2, dist.stderr[-3000:]
    assert dist.stderr.strip().splitlines() == [line]
    # nothing of theirs in the work dir: one run's log folder
    assert len([p for p in work.iterdir() if p.is_dir()]) == 1
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    release(fifo)
    assert proc.wait() == EXIT_INTERRUPTED, log.read_text()[-3000:]
    assert log.read_text().splitlines()[-1] == (
        f'stopped by SIGINT after iteration 2 of 12, saved {work}/'
        'iter_2.pth; to continue, run the same command with --resume')
    assert _state(work / 'iter_2.pth')[0] == 2


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_partial_checkpoint_write_is_never_latest(tmp_path, monkeypatch):
    from citymask.checkpoint import latest_checkpoint
    from ..test_compat import make_runner
    runner = make_runner(tmp_path, 2)
    runner.train()  # writes iter_2.pth
    assert latest_checkpoint(str(tmp_path)).endswith('iter_2.pth')

    real_save = torch.save

    def killed_mid_write(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)  # half a file on disk ...
        raise KeyboardInterrupt  # ... when the job dies

    monkeypatch.setattr(torch, 'save', killed_mid_write)
    later = make_runner(tmp_path, 4, resume=True)
    with pytest.raises(KeyboardInterrupt):
        later.train()
    monkeypatch.setattr(torch, 'save', real_save)
    assert not (tmp_path / 'iter_4.pth').exists()
    assert not glob.glob(str(tmp_path / '.iter_4.pth.*'))  # no temp left
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read().strip().endswith('iter_2.pth')
    # a pointer emptied by a kill falls back to the newest complete file
    (tmp_path / 'last_checkpoint').write_text('')
    assert latest_checkpoint(str(tmp_path)).endswith('iter_2.pth')
    torch.load(latest_checkpoint(str(tmp_path)), weights_only=True)


def test_nan_loss_stops_with_the_iteration(mini_data, short_run, tmp_path):
    root, data = mini_data
    # the same run trains with the normal lr (short_run): the lr is the cause
    assert (short_run / 'iter_12.pth').exists()
    line = fails(_train(data, tmp_path / 'nan', '--cfg-options',
                        'optim_wrapper.optimizer.lr=1e12',
                        load_from=osp.join(root, 'standin_cs.pth')),
                 'loss is ')
    assert re.search(r'loss is (nan|inf|-inf) at iteration \d+ \(loss_',
                     line), line


def test_corrupt_image_names_the_file(mini_data, tmp_path):
    _, data = mini_data
    broken = tmp_path / 'cs'
    shutil.copytree(data, broken)
    for png in glob.glob(str(broken / 'leftImg8bit' / 'train' / '*' / '*')):
        with open(png, 'wb') as f:
            f.write(b'\x89PNG broken')
    res = run_tool('tools/train.py', CFG, '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', f'data_root={broken}', 'load_from=None',
                   'train_dataloader.num_workers=1', 'train_cfg.max_iters=2')
    line = fails(res, 'cannot read image ')
    assert '/leftImg8bit/train/' in line and line.count('.png') == 1


class Exploit:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_malicious_checkpoint_refused_everywhere(mini_data, tmp_path):
    _, data = mini_data
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Exploit(marker)}, evil)
    work = tmp_path / 'w'
    cases = [
        ('tools/train.py', CFG, '--work-dir', str(work), '--resume',
         str(evil), '--cfg-options', f'data_root={data}'),
        ('tools/train.py', CFG, '--work-dir', str(work), '--cfg-options',
         f'data_root={data}', f'load_from={evil}'),
        ('tools/test.py', CFG, str(evil), '--work-dir', str(work),
         '--cfg-options', f'data_root={data}'),
        ('tools/surgery.py', str(evil), str(tmp_path / 'out.pth')),
    ]
    for args in cases:
        fails(run_tool(*args), 'could run code')
    assert not marker.exists()
    # the download path (http/torchvision/open-mmlab) is covered in
    # tests/test_compat.py::test_downloads_load_weights_only


def test_no_unsafe_load_in_the_project():
    offenders = []
    for top in ('citymask', 'tools', 'tests', 'configs'):
        for path in sorted(glob.glob(osp.join(REPO, top, '**', '*.py'),
                                     recursive=True)):
            with open(path) as f:
                offenders += scan_source(f.read(), osp.relpath(path, REPO))
    assert offenders == []


PLANTED = {
    # multi-line, without weights_only
    'import torch\nckpt = torch.load(\n    path,\n    map_location="cpu")\n':
    ['2: torch.load without'],
    # aliases of torch and of torch.load
    'import torch as t\nt.load(p, weights_only=False)\n':
    ['2: torch.load without'],
    'from torch import load\nload(p)\n': ['2: torch.load without'],
    'from torch import load as read\nread(p, weights_only=None)\n':
    ['2: torch.load without'],
    'from torch import serialization\nserialization.load(p)\n':
    ['2: torch.serialization.load without'],
    'import torch.hub\ntorch.hub.load_state_dict_from_url(u)\n':
    ['2: torch.hub.load_state_dict_from_url without'],
    'import torch\nflag = True\ntorch.load(p, weights_only=flag)\n':
    ['3: torch.load without'],
    'import torch\ntorch.load(p, **kw)\n': ['2: torch.load without'],
    # passed around instead of called
    'import functools, torch\nf = functools.partial(torch.load)\n':
    ['2: torch.load used as a value'],
    'import torch\nf = getattr(torch, "load")\n':
    ['2: torch.load reached through getattr'],
    # numpy pickles
    'import numpy as np\nnp.load(f, allow_pickle=True)\n':
    ['2: numpy.load with allow_pickle'],
    'from numpy import load\nload(f, None, True)\n':
    ['2: numpy.load with allow_pickle by position'],
    # pickle itself, under any name
    'import pickle as pk\nobj = pk.loads(data)\n':
    ['2: pickle.loads unpickles'],
    'from pickle import Unpickler\nUnpickler(f).load()\n':
    ['2: pickle.Unpickler unpickles'],
    # another library told to unpickle
    'from mmengine.runner import load_checkpoint\n'
    'load_checkpoint(m, p, weights_only=False)\n':
    ['2: weights_only is not True'],
    # safe: nothing to report
    'import torch\nckpt = torch.load(\n    path,\n    weights_only=True)\n':
    [],
    'import numpy as np\nnp.load(f)\nnp.load(f, allow_pickle=False)\n': [],
    'import json\njson.load(f)\nRestrictedUnpickler(f).load()\n'
    's = "torch.load(p)"\nmodel.load(p)\n': [],
}


@pytest.mark.parametrize('source', list(PLANTED))
def test_unsafe_load_scanner_catches_planted_examples(source):
    found = scan_source(source, 'x.py')
    assert len(found) == len(PLANTED[source]), found
    for line, expected in zip(found, PLANTED[source]):
        assert line.startswith('x.py:' + expected), (line, expected)


def test_bad_inputs(mini_data, tmp_path):
    root, data = mini_data
    standin = osp.join(root, 'standin_cs.pth')
    on_data = ('--cfg-options', f'data_root={data}')
    for args in (['tools/train.py'], ['tools/test.py', standin]):
        fails(run_tool(args[0], 'configs/nope.py', *args[1:]),
              'config configs/nope.py does not exist')
    empty = tmp_path / 'cityscapes'
    shutil.copytree(osp.join(data, 'leftImg8bit'), empty / 'leftImg8bit')
    line = fails(run_tool('tools/train.py', CFG, '--cfg-options',
                          f'data_root={empty}'), 'not found')
    assert 'tools/dataset_converters/cityscapes.py' in line
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}}, other)
    line = fails(run_tool('tools/test.py', CFG, str(other), '--work-dir',
                          str(tmp_path / 't'), *on_data),
                 "does not match the config's model")
    assert '1 unexpected (fc.weight)' in line and 'missing' in line
    fails(run_tool('tools/train.py', CFG, '--work-dir', str(tmp_path / 'e'),
                   '--resume', *on_data), '--resume: no checkpoint in')
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    fails(run_tool('tools/train.py', CFG, '--work-dir', str(blocker / 'w'),
                   *on_data), 'cannot write to work dir')
    for flags, message in (
            (['--out', 'x.json'], '--out must end with .pkl'),
            (['--split', 'test'], 'no public ground truth, so no AP can be '
             'computed here; write a submission for the benchmark server '
             'with --format-only'),
            (['--split', 'test', '--format-only'], '--format-only needs '
             '--outfile-prefix')):
        fails(run_tool('tools/test.py', CFG, standin, *flags, *on_data),
              message)


def test_amp_without_gpu_is_refused(tmp_path):
    # the tool as a user without a GPU runs it (GPUs hidden where present);
    # what --amp does with a GPU: tests/test_runner_setup.py::test_amp
    for amp in (['--amp'], ['--amp', 'bf16']):
        fails(run_tool('tools/train.py', CFG, *amp, '--work-dir',
                       str(tmp_path), env=dict(CUDA_VISIBLE_DEVICES='')),
              '--amp needs a GPU')
