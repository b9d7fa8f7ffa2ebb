"""citymask.errors and citymask.cli: what a tool prints when it fails."""
import argparse

import pytest

from citymask.cli import (EXIT_INTERRUPTED, add_common_args, check_launcher,
                          exit_on_error)
from citymask.errors import CheckpointError, CitymaskError, one_line


def test_one_line_keeps_a_plain_message():
    assert one_line(CitymaskError('  x.pth not found\n')) == 'x.pth not found'


def test_one_line_keeps_only_the_workers_message():
    # what mmengine's dataloader re-raises from a worker process
    worker = ('Caught CitymaskError in DataLoader worker process 0.\n'
              'Original Traceback (most recent call last):\n'
              '  File "loading.py", line 40, in transform\n'
              'citymask.errors.CitymaskError: cannot read image a.png: '
              'truncated file')
    assert one_line(CitymaskError(worker)) == \
        'cannot read image a.png: truncated file'


def test_exit_on_error_prints_one_line_and_exits_2(capsys):

    @exit_on_error
    def main():
        raise CheckpointError('ckpt.pth is not a checkpoint')

    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    assert capsys.readouterr().err == 'error: ckpt.pth is not a checkpoint\n'


def test_exit_on_error_ctrl_c_exits_130(capsys):

    @exit_on_error
    def main():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == 'interrupted\n'


def test_exit_on_error_passes_results_and_other_errors():
    assert exit_on_error(lambda: 7)() == 7
    with pytest.raises(ValueError):
        exit_on_error(lambda: int('x'))()


def test_common_args_parse_cfg_options():
    parser = argparse.ArgumentParser()
    add_common_args(parser)
    args = parser.parse_args(['--cfg-options', 'data_root=/d/',
                              'train_cfg.max_iters=6', '--local-rank', '1'])
    assert args.cfg_options == {'data_root': '/d/',
                                'train_cfg.max_iters': 6}
    assert args.launcher == 'none' and args.local_rank == 1
    for pair, expected in (('foo', "--cfg-options 'foo': expected KEY=VALUE"),
                           ('x=[1,2', 'cannot parse the value (Imbalanced '
                            'brackets')):
        with pytest.raises(CitymaskError) as e:  # malformed: one error
            parser.parse_args(['--cfg-options', pair])
        assert expected in str(e.value)


def test_a_launcher_needs_the_processes_it_starts(monkeypatch):
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    check_launcher('none')
    with pytest.raises(CitymaskError) as e:
        check_launcher('pytorch')
    assert str(e.value) == (
        '--launcher pytorch: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not '
        'set, so this process was not started for it; start it with '
        'torchrun: tools/dist_train.sh or tools/dist_test.sh, or drop '
        '--launcher')
    # what torchrun sets
    for var, value in dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT='29500').items():
        monkeypatch.setenv(var, value)
    check_launcher('pytorch')
