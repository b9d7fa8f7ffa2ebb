"""citymask.checkpoint: safe loading, CRC checks, atomic saving, latest."""
import errno
import glob
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from citymask.checkpoint import (latest_checkpoint, load_checkpoint_file,
                                 save_checkpoint)
from citymask.cli import EXIT_INTERRUPTED
from citymask.errors import CheckpointError
from . import fs_fixtures
from .conftest import MINI_CFG, REPO, tool_env

tiny_fs = fs_fixtures.tiny_fs


def test_damaged_or_truncated_checkpoints_are_named(tmp_path):
    from citymask.config import load_config
    from citymask.preflight import check_checkpoint
    from citymask.surgery import convert_file
    path = tmp_path / 'model.pth'
    state = {'w': torch.randn(64, 256), 'b': torch.randn(64)}
    save_checkpoint(dict(state_dict=state, meta=dict(note='x')), str(path))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:  # flip bytes inside a tensor record
        info = next(i for i in zf.infolist() if '/data/' in i.filename)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 100:start + 104] = b'\xde\xad\xbe\xef'
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(data)
    # the reference: torch loads it without a word, with other numbers
    loaded = torch.load(bad, weights_only=True)['state_dict']
    assert not all(torch.equal(loaded[k], state[k]) for k in state)
    cfg = load_config(osp.join(REPO, MINI_CFG))
    for check in (load_checkpoint_file,
                  lambda p: check_checkpoint(cfg, p),
                  lambda p: convert_file(p, str(tmp_path / 'out.pth'))):
        with pytest.raises(CheckpointError,
                           match=f'checkpoint {bad} is damaged: its record '
                           f'.*{info.filename.split("/", 1)[1]} fails its '
                           'CRC-32 check'):
            check(str(bad))
    assert not (tmp_path / 'out.pth').exists()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(CheckpointError,
                       match=f'checkpoint {cut} is truncated'):
        load_checkpoint_file(str(cut))


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
def test_a_pkl_of_numpy_arrays_loads_in_every_protocol(tmp_path, protocol):
    weights = {'conv1.w': np.arange(24, dtype=np.float32).reshape(2, 3, 4),
               'fc.b': np.float64(0.5), 'ids': np.arange(3)}
    path = tmp_path / 'model.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(model=weights, __author__='Detectron'), f,
                    protocol=protocol)
    loaded = load_checkpoint_file(str(path))
    assert loaded['__author__'] == 'Detectron'
    for k, v in weights.items():
        assert np.array_equal(loaded['model'][k], v)
        assert loaded['model'][k].dtype == v.dtype


class _Rot13:
    def __reduce__(self):
        return __import__('_codecs').encode, ('x', 'rot13')


def test_protocol_2_codecs_only_encode_latin1(tmp_path):
    path = tmp_path / 'sneaky.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'a': _Rot13()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="encode.*'rot13'"):
        load_checkpoint_file(str(path))


def test_an_interrupted_checkpoint_write_leaves_nothing(tmp_path,
                                                        monkeypatch):
    import citymask.checkpoint as ckpt_module
    fs_fixtures.fail_writes(monkeypatch, ckpt_module, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):  # not torch's "unexpected pos"
        save_checkpoint(dict(state_dict={'w': torch.zeros(1000)}),
                        str(tmp_path / 'ckpt.pth'))
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_on_a_real_full_disk(tiny_fs):
    from citymask.cli import os_error_line
    dst = tiny_fs / 'ckpt.pth'
    with pytest.raises(OSError) as e:
        save_checkpoint(dict(state_dict={'w': torch.zeros(2**19)}), str(dst))
    assert e.value.errno == errno.ENOSPC
    assert e.value.filename == str(dst) and e.value.needed_bytes == 2**21
    assert os_error_line(e.value).startswith(
        f'no space left on {dst} (2.0 MiB needed, ')
    assert os.listdir(tiny_fs) == []


# the child is inside torch.save when the test opens the FIFO for reading;
# it then waits there for the signal
SAVE_UNTIL_CTRL_C = '''
import os, sys, time, torch
from citymask.checkpoint import save_checkpoint
from citymask.cli import exit_on_error

class InsideTheWrite:
    def __reduce__(self):
        open(sys.argv[2], 'wb').close()  # returns once the test reads
        while True:  # not signal.pause(): it misses a signal that came first
            time.sleep(0.01)

exit_on_error(save_checkpoint)(
    dict(state_dict={'w': torch.ones(2**20)}, late=InsideTheWrite()),
    sys.argv[1])
'''


def test_ctrl_c_during_a_checkpoint_write(tmp_path):
    folder = tmp_path / 'ckpts'
    folder.mkdir()
    inside = tmp_path / 'inside'
    os.mkfifo(inside)
    proc = subprocess.Popen(
        [sys.executable, '-c', SAVE_UNTIL_CTRL_C, str(folder / 'iter_8.pth'),
         str(inside)], cwd=REPO, env=tool_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    with open(inside, 'rb'):
        pass
    [tmp] = os.listdir(folder)
    assert tmp.endswith('.tmp')  # being written
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert stderr == 'interrupted\n'
    assert os.listdir(folder) == []  # neither a partial file nor a temp


def test_last_checkpoint_names_it_else_the_highest_iteration(tmp_path):
    for name in ('iter_8.pth', 'iter_4.pth', 'iter_9.pth', 'iter_100.pth'):
        (tmp_path / name).write_bytes(b'')
    named = str(tmp_path / 'iter_4.pth')
    # mmengine writes the path and no newline; a newline must not matter
    (tmp_path / 'last_checkpoint').write_text(named + '\n')
    assert latest_checkpoint(str(tmp_path)) == named
    # emptied by a kill, the file deleted; "iter_9" sorts after "iter_100"
    for content in ('', '   \n', str(tmp_path / 'iter_120.pth')):
        (tmp_path / 'last_checkpoint').write_text(content)
        assert latest_checkpoint(str(tmp_path)) == \
            str(tmp_path / 'iter_100.pth'), content


def test_nothing_to_resume(tmp_path):
    for name in ('epoch_3.pth', 'best.pth', 'iter_.pth.tmp'):
        (tmp_path / name).write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    assert latest_checkpoint(str(tmp_path)) is None
    assert latest_checkpoint(str(tmp_path / 'missing')) is None
    assert not (tmp_path / 'missing').exists()


def test_partial_checkpoint_write_is_never_latest(tmp_path, monkeypatch):
    # through the Runner, mmengine's save patched (citymask.compat)
    from .test_compat import make_runner
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
    torch.load(latest_checkpoint(str(tmp_path)), weights_only=True)
