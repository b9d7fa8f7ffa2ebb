"""citymask.errors and citymask.cli: what a tool prints when it fails."""
import argparse
import errno
import os

import pytest

from citymask.cli import EXIT_IO, exit_on_error, parse_tool_args
from citymask.errors import CheckpointError, CitymaskError, one_line

TORCHRUN = dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                MASTER_PORT='29500')


@pytest.mark.parametrize('message,line', [
    ('  x.pth not found\n', 'x.pth not found'),
    # what mmengine's dataloader re-raises from a worker process
    ('Caught CitymaskError in DataLoader worker process 0.\nOriginal '
     'Traceback (most recent call last):\n  File "loading.py", line 40, in '
     'transform\ncitymask.errors.CitymaskError: cannot read image a.png: '
     'truncated file', 'cannot read image a.png: truncated file'),
])
def test_one_line_keeps_only_the_message(message, line):
    assert one_line(CitymaskError(message)) == line


def _os_error(code):
    return OSError(code, os.strerror(code), '/d/x.pkl')


@pytest.mark.parametrize('error,line,status', [
    (CheckpointError('ckpt.pth is not a checkpoint'),
     'error: ckpt.pth is not a checkpoint', 2),
    (KeyboardInterrupt(), 'interrupted', 130),
    (_os_error(errno.ENOSPC), 'error: no space left on /d/x.pkl', EXIT_IO),
    (_os_error(errno.EDQUOT), 'error: disk quota exceeded on /d/x.pkl', 74),
    (_os_error(errno.EIO), 'error: /d/x.pkl: Input/output error', 74),
    (_os_error(errno.EROFS), 'error: cannot write /d/x.pkl: read-only file '
     'system; write elsewhere', 2),
    (_os_error(errno.EACCES), 'error: cannot access /d/x.pkl: permission '
     'denied', 2),
    (_os_error(errno.EPERM), 'error: cannot access /d/x.pkl: permission '
     'denied', 2),
    (_os_error(errno.ENOTDIR), 'error: cannot use /d/x.pkl: a part of it is '
     'a file, not a folder', 2),
    (_os_error(errno.EISDIR), 'error: cannot use /d/x.pkl: it is a folder, '
     'a file was expected', 2),
    (_os_error(errno.ENOENT), 'error: /d/x.pkl does not exist', 2),
], ids=lambda v: getattr(v, 'errno', None) and errno.errorcode[v.errno])
def test_errors_are_one_line_with_their_exit_status(capsys, error, line,
                                                    status):

    def main():
        raise error

    with pytest.raises(SystemExit) as e:
        exit_on_error(main)()
    assert e.value.code == status
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(line)
    # results and other errors pass through
    assert exit_on_error(lambda: 7)() == 7
    with pytest.raises(ValueError):
        exit_on_error(lambda: int('x'))()


def _parse(*argv):
    return parse_tool_args(argparse.ArgumentParser(), argv)


def test_common_args_parse_cfg_options(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = _parse('--cfg-options', 'data_root=/d/', 'train_cfg.max_iters=6',
                  '--local-rank', '1')
    assert args.cfg_options == {'data_root': '/d/',
                                'train_cfg.max_iters': 6}
    assert args.launcher == 'none' and os.environ['LOCAL_RANK'] == '1'
    for pair, expected in (('foo', "--cfg-options 'foo': expected KEY=VALUE"),
                           ('x=[1,2', 'cannot parse the value (Imbalanced '
                            'brackets')):
        with pytest.raises(CitymaskError) as e:  # malformed: one error
            _parse('--cfg-options', pair)
        assert expected in str(e.value)
    # a launcher needs the processes it starts
    for var in TORCHRUN:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(CitymaskError) as e:
        _parse('--launcher', 'pytorch')
    assert str(e.value) == (
        '--launcher pytorch: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not '
        'set, so this process was not started for it; start it with '
        'torchrun: tools/dist_train.sh or tools/dist_test.sh, or drop '
        '--launcher')
    for var, value in TORCHRUN.items():  # what torchrun sets
        monkeypatch.setenv(var, value)
    assert _parse('--launcher', 'pytorch').launcher == 'pytorch'
