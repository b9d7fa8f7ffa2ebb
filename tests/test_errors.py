"""citymask.errors and citymask.cli: what a tool prints when it fails."""
import argparse

import pytest

from citymask.cli import EXIT_INTERRUPTED, add_common_args, exit_on_error
from citymask.errors import (CheckpointError, CitymaskError, ConversionError,
                             one_line)


def test_error_classes_are_citymask_errors():
    for cls in (CheckpointError, ConversionError):
        assert issubclass(cls, CitymaskError)


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
