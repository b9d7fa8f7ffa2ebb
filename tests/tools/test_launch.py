"""Launch failures of tools/dist_train.sh (torchrun through
tools/misc/dist_launch.py) and tools/train.py, each one line, with real
processes on CPU (gloo)."""
import os
import os.path as osp
import signal
import socket
import subprocess
import sys

from citymask.testing.pause_hook import (paused_config, release,
                                         wait_until_paused)
from ..conftest import REPO
from .conftest import CFG
from .test_reliability import SHORT, _free_port, _state


def _dist_env(**extra):
    # GPUs hidden: CPU processes on any machine
    return dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES='',
                **extra)


def _dist_train(*args, **env):
    return subprocess.run(['bash', 'tools/dist_train.sh', CFG, *args],
                          cwd=REPO, env=_dist_env(**env),
                          capture_output=True, text=True)


def test_port_in_use(tmp_path):
    with socket.socket() as other:  # another run's rendezvous
        other.bind(('127.0.0.1', 0))
        other.listen()
        port = other.getsockname()[1]
        res = _dist_train('2', '--work-dir', str(tmp_path), PORT=str(port))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f'error: PORT {port} is in use on this machine (another distributed '
        f'run?); choose a free one, e.g. PORT={port + 1}']


def test_rendezvous_timeout(tmp_path):
    port = _free_port()
    # node 0 of 2; the other node never comes
    res = _dist_train('1', '--work-dir', str(tmp_path), PORT=str(port),
                      NNODES='2', RDZV_TIMEOUT='2')
    assert res.returncode == 2
    waiting, line = res.stderr.splitlines()
    assert waiting == (f'waiting up to 2 s for 2 nodes at 127.0.0.1:{port} '
                       '(Ctrl-C stops)')
    where = f'error: the rendezvous at 127.0.0.1:{port}'
    assert line.startswith(f'{where} did not complete in 2 s (Timed out ')
    # torch's own words in between: "... after N seconds waiting for ..."
    assert line.endswith(
        '1/2 clients joined.): start the same command on every one of the 2 '
        'nodes (NODE_RANK=0..), with MASTER_ADDR naming node 0, or raise '
        'RDZV_TIMEOUT')


def test_ctrl_c_during_the_rendezvous(tmp_path):
    proc = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', CFG, '1', '--work-dir',
         str(tmp_path)], cwd=REPO, stderr=subprocess.PIPE, text=True,
        env=_dist_env(PORT=str(_free_port()), NNODES='2',
                      RDZV_TIMEOUT='3600'))
    assert proc.stderr.readline().startswith('waiting up to 3600 s')
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()  # not after an hour
    assert proc.returncode == -signal.SIGINT
    assert err == ''


def test_sigterm_to_the_torchrun_group(mini_data, tmp_path):
    """Two ranks of the mini config; SIGTERM to every process (as Slurm and
    a terminal's kill send it): both stop after the same iteration, rank 0
    writes its checkpoint, one line, no traceback."""
    root, data = mini_data
    cfg = paused_config(osp.join(REPO, CFG), str(tmp_path), 2)
    work, log = tmp_path / 'work', tmp_path / 'log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir',
             str(work), '--cfg-options', f'data_root={data}',
             f'load_from={osp.join(root, "standin_cs.pth")}', *SHORT],
            cwd=REPO, env=_dist_env(PORT=str(_free_port())),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    assert wait_until_paused(proc, str(tmp_path)), log.read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGTERM)
    release(str(tmp_path))
    assert proc.wait() == 128 + signal.SIGTERM, log.read_text()[-3000:]
    text = log.read_text()
    assert 'Traceback' not in text, text
    assert not [ln for ln in text.splitlines() if ln.startswith('error')]
    assert text.splitlines()[-1] == (
        f'stopped by SIGTERM after iteration 2 of 12, saved {work}/'
        'iter_2.pth; to continue, run the same command with --resume')
    assert _state(work / 'iter_2.pth')[0] == 2


def test_dead_dataloader_worker(mini_data, tmp_path):
    root, data = mini_data
    cfg = paused_config(osp.join(REPO, CFG), str(tmp_path), 2)
    with open(tmp_path / 'out', 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, 'tools/train.py', cfg, '--work-dir',
             str(tmp_path / 'work'), '--cfg-options', f'data_root={data}',
             'load_from=None', *SHORT, 'train_dataloader.num_workers=1',
             'train_dataloader.persistent_workers=True'],
            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), stdout=out,
            stderr=subprocess.PIPE, text=True)
    assert wait_until_paused(proc, str(tmp_path))
    # the training's one child: its dataloader worker (as the OOM killer)
    with open(f'/proc/{proc.pid}/task/{proc.pid}/children') as f:
        [worker] = f.read().split()
    os.kill(int(worker), signal.SIGKILL)
    release(str(tmp_path))
    _, err = proc.communicate()
    assert proc.returncode == 2, err[-3000:]
    assert err.splitlines() == [
        f'error: a data loader worker (pid {worker}) died (out of memory? '
        'see `dmesg`); lower train_dataloader.num_workers or batch_size, '
        'then continue with --resume']
