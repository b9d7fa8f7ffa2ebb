"""Launch failures of tools/dist_train.sh (torchrun through
tools/misc/dist_launch.py) and tools/train.py, each one line, with real
processes on CPU (gloo)."""
import os
import signal
import socket
import subprocess

from citymask.testing.pause_hook import release
from ..conftest import REPO
from .conftest import CFG
from .test_train_test import (dist, dist_env, free_port, paused_train, state,
                              stopped_line)


def test_port_in_use(tmp_path):
    with socket.socket() as other:  # another run's rendezvous
        other.bind(('127.0.0.1', 0))
        other.listen()
        port = other.getsockname()[1]
        res = dist('dist_train.sh', '2', '--work-dir', str(tmp_path),
                   PORT=str(port))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f'error: PORT {port} is in use on this machine (another distributed '
        f'run?); choose a free one, e.g. PORT={port + 1}']


def test_rendezvous_timeout(tmp_path):
    port = free_port()
    # node 0 of 2; the other node never comes
    res = dist('dist_train.sh', '1', '--work-dir', str(tmp_path),
               PORT=str(port), NNODES='2', RDZV_TIMEOUT='2')
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
        env=dist_env(NNODES='2', RDZV_TIMEOUT='3600'))
    assert proc.stderr.readline().startswith('waiting up to 3600 s')
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()  # not after an hour
    assert proc.returncode == -signal.SIGINT
    assert err == ''


def test_sigterm_to_the_torchrun_group(mini_data, tmp_path):
    """Two ranks of the mini config; SIGTERM to every process (as Slurm and
    a terminal's kill send it): both stop after the same iteration, rank 0
    writes its checkpoint, one line, no traceback."""
    proc, fifo, work, log = paused_train(
        mini_data, tmp_path, 2, '2', launch=('bash', 'tools/dist_train.sh'),
        env=dist_env(), start_new_session=True)
    os.killpg(proc.pid, signal.SIGTERM)
    release(fifo)
    assert proc.wait() == 128 + signal.SIGTERM, log.read_text()[-3000:]
    text = log.read_text()
    assert 'Traceback' not in text, text
    assert not [ln for ln in text.splitlines() if ln.startswith('error')]
    assert text.splitlines()[-1] == stopped_line('SIGTERM', 2, work)
    assert state(work / 'iter_2.pth')[0] == 2


def test_dead_dataloader_worker(mini_data, tmp_path):
    proc, fifo, _, _ = paused_train(
        mini_data, tmp_path, 2, options=(
            'load_from=None', 'train_dataloader.num_workers=1',
            'train_dataloader.persistent_workers=True'),
        stderr=subprocess.PIPE)
    # the training's one child: its dataloader worker (as the OOM killer)
    with open(f'/proc/{proc.pid}/task/{proc.pid}/children') as f:
        [worker] = f.read().split()
    os.kill(int(worker), signal.SIGKILL)
    release(fifo)
    _, err = proc.communicate()
    assert proc.returncode == 2, err[-3000:]
    assert err.splitlines() == [
        f'error: a data loader worker (pid {worker}) died (out of memory? '
        'see `dmesg`); lower train_dataloader.num_workers or batch_size, '
        'then continue with --resume']
