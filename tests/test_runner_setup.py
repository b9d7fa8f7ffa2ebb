"""citymask.runner_setup: what tools/train.py and tools/test.py flags do to
the config, and the checkpoint a resume takes (it must fit the model)."""
import os
import os.path as osp
import signal
import socket
from types import SimpleNamespace

import pytest
import torch

from citymask.config import dataset_of, load_config
from citymask.errors import CitymaskError
from citymask.preflight import check_checkpoint
from citymask.runner_setup import (is_test_split, setup_test, setup_train,
                                   show_dir_written_whole, work_dir_lock)
from .conftest import CONFIGS, MINI_CFG, REPO
from .test_preflight import _save, _shapes

FT = osp.join(CONFIGS, 'maskrcnn_r50_fpn_cityscapes_ft.py')


@pytest.fixture
def cfg():
    return load_config(FT)


@pytest.fixture
def ckpt(tmp_path):
    torch.save({}, tmp_path / 'c.pth')
    return str(tmp_path / 'c.pth')


def test_resume_auto_takes_the_latest_checkpoint(cfg, tmp_path, ckpt):
    # which one is the latest: tests/test_checkpoint.py
    for i in (4, 12, 8):  # "iter_8" sorts after "iter_12" as text
        torch.save({}, tmp_path / f'iter_{i}.pth')
    setup_train(cfg, FT, work_dir=str(tmp_path), resume='auto')
    assert cfg.resume is True
    assert cfg.load_from == str(tmp_path / 'iter_12.pth')
    # the one last_checkpoint names, if it exists (mmengine: no newline)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))
    setup_train(cfg, FT, work_dir=str(tmp_path), resume='auto')
    assert cfg.load_from == str(tmp_path / 'iter_8.pth')
    # an explicit one (no --resume: test_no_flags_change_nothing_else)
    with pytest.raises(CitymaskError, match='--resume checkpoint .* not '
                       'found'):
        setup_train(cfg, FT, resume=str(tmp_path / 'x.pth'))
    setup_train(cfg, FT, work_dir=str(tmp_path), resume=ckpt)
    assert cfg.resume is True and cfg.load_from == ckpt
    # the work dir: --work-dir, else the config's, else mmdet's default
    assert cfg.work_dir == str(tmp_path)
    cfg.work_dir = 'from_cfg'
    assert setup_train(cfg, FT).work_dir == 'from_cfg'
    assert setup_train(load_config(FT), FT).work_dir == osp.join(
        './work_dirs', 'maskrcnn_r50_fpn_cityscapes_ft')


def test_resume_into_a_work_dir_of_another_model(cfg, tmp_path):
    # written by the R-50 recipe, resumed with the mini config: the
    # Runner would fail in the optimizer's state, after building it all
    _save(tmp_path / 'iter_8.pth', _shapes(cfg), meta=dict(iter=8),
          optimizer=dict(state={}, param_groups=[]))
    mini = setup_train(load_config(osp.join(REPO, MINI_CFG)), MINI_CFG,
                       work_dir=str(tmp_path), resume='auto')
    with pytest.raises(CitymaskError) as e:
        check_checkpoint(mini, mini.load_from, resume=True)
    assert str(e.value).startswith(
        f'checkpoint {tmp_path}/iter_8.pth does not match the config\'s '
        'model (maskrcnn_r18_fpn_mini_cityscapes.py): backbone.layer1.0.'
        'conv1.weight is (64, 64, 1, 1) in it, (64, 64, 3, 3) in the model;')
    assert str(e.value).endswith('use the config it was trained with, or a '
                                 "checkpoint of this config's model")


def test_no_flags_change_nothing_else(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    before = cfg.to_dict()
    setup_train(cfg, 'configs/x.py', work_dir=str(tmp_path))
    after = cfg.to_dict()
    # a single-process run: no launcher, no DDP wrapper, no gloo
    assert after.pop('launcher') == 'none'
    assert after.pop('work_dir') == str(tmp_path)
    assert after == before


def test_flag_errors_say_what_to_do(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)

    def error(**kwargs):
        with pytest.raises(CitymaskError) as e:
            setup_train(cfg, 'configs/x.py', **kwargs)
        return str(e.value)

    assert error(amp=True) == (
        "--amp needs a GPU (mmengine's AmpOptimWrapper refuses to run on "
        'CPU); train without --amp here')
    assert error(work_dir=str(tmp_path), resume='auto') == (
        f'--resume: no checkpoint in {tmp_path} to resume from; train '
        'without --resume, or pass --resume CHECKPOINT')
    cfg.pop('auto_scale_lr')  # a config without the section at all
    assert error(auto_scale_lr=True) == (
        'configs/x.py has no auto_scale_lr.base_batch_size; '
        '--auto-scale-lr needs it')


@pytest.mark.parametrize('amp,dtype', [(True, 'float16'),
                                       ('fp16', 'float16'),
                                       ('bf16', 'bfloat16')])
def test_amp(cfg, monkeypatch, amp, dtype):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    setup_train(cfg, FT, amp=amp, auto_scale_lr=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == dtype
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.auto_scale_lr.enable is True
    # the wrapper mmengine builds from it autocasts to that dtype
    from mmengine.optim import AmpOptimWrapper
    wrapper = AmpOptimWrapper(
        optimizer=torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), 0.1),
        dtype=cfg.optim_wrapper.dtype)
    assert wrapper.cast_dtype == getattr(torch, dtype)


def test_work_dir_lock(tmp_path, monkeypatch):
    work = str(tmp_path / 'w')
    with work_dir_lock(work):
        # (flock is per open file: a second open in this process contends
        # as another process would)
        with pytest.raises(CitymaskError) as e:
            with work_dir_lock(work):
                pass
        assert str(e.value) == (
            f'work dir {work} is in use by another training run (pid '
            f'{os.getpid()} on {socket.gethostname()}); wait for it to end '
            'or stop it, or choose another --work-dir')
        # other ranks take no lock (rank 0 holds it for them)
        monkeypatch.setenv('RANK', '1')
        with work_dir_lock(work, 'pytorch'):
            pass
        monkeypatch.setenv('SLURM_PROCID', '0')
        with pytest.raises(CitymaskError):
            with work_dir_lock(work, 'slurm'):
                pass
    with pytest.raises(RuntimeError):
        with work_dir_lock(work):  # released at the end of the block ...
            raise RuntimeError  # ... and on an exception
    with work_dir_lock(work):
        pass


def test_cpu_distributed_uses_gloo(cfg, ckpt, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for setup in (lambda c: setup_train(c, FT, launcher='pytorch'),
                  lambda c: setup_test(c, FT, ckpt, launcher='pytorch')):
        cfg = setup(load_config(FT))
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.device_ids is None
        assert cfg.launcher == 'pytorch'


def test_val_outputs_and_the_declared_test_split(cfg, tmp_path, ckpt):
    with pytest.raises(CitymaskError, match='checkpoint .* not found'):
        setup_test(cfg, FT, str(tmp_path / 'none.pth'))
    setup_test(cfg, FT, ckpt, work_dir=str(tmp_path / 'w'),
               out=str(tmp_path / 'p.pkl'), show_dir='vis')
    [cs] = [e for e in cfg.test_evaluator
            if e.type == 'CityscapesInstanceMetric']
    assert cs.outfile_prefix == str(tmp_path / 'w' / 'cityscapes')
    assert cs.plot_ap is True
    assert cfg.test_evaluator[-1] == dict(
        type='DumpDetResults', out_file_path=str(tmp_path / 'p.pkl'))
    assert cfg.load_from == ckpt
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.default_hooks.visualization.test_out_dir == 'vis'
    cfg = load_config(FT)
    assert not is_test_split(cfg)
    setup_test(cfg, FT, ckpt, split='test', format_only=True,
               outfile_prefix=str(tmp_path / 'sub'))
    ds = dataset_of(cfg.test_dataloader)
    assert ds.ann_file == \
        'annotations/instancesonly_filtered_gtFine_test.json'
    assert ds.data_prefix.img == 'leftImg8bit/test/'
    assert is_test_split(cfg)
    assert cfg.test_evaluator == dict(
        type='CityscapesInstanceMetric', format_only=True,
        outfile_prefix=str(tmp_path / 'sub'))
    # a folder merely named like the split is not the test split
    assert not is_test_split(load_config(FT, {'data_root': '/d/test/cs'}))


@pytest.mark.parametrize('config,kwargs,message', [
    (FT, dict(split='test'), 'no public ground truth, so no AP can be '
     'computed here; write a submission for the benchmark server with '
     '--format-only'),
    (FT, dict(format_only=True), '--format-only needs --outfile-prefix'),
    (FT, dict(out='x.json'), '--out must end with .pkl'),
    ('mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py',
     dict(split='test', format_only=True, outfile_prefix='sub'),
     'this config declares no test_split'),
])
def test_test_split_needs_format_only(ckpt, config, kwargs, message):
    with pytest.raises(CitymaskError, match=message):
        setup_test(load_config(config), config, ckpt, **kwargs)


def test_show_dir_is_written_whole(tmp_path):
    from mmdet.engine.hooks import DetVisualizationHook
    hook = DetVisualizationHook.__new__(DetVisualizationHook)  # no
    hook.test_out_dir = 'vis'  # visualizer needed for this test
    runner = SimpleNamespace(work_dir=str(tmp_path), timestamp='20261130',
                             hooks=[object(), hook])
    final = tmp_path / '20261130' / 'vis'
    with show_dir_written_whole(runner, 'vis'):
        # the hook draws into the hidden partial folder
        assert hook.test_out_dir == str(tmp_path / '20261130' / '.vis.partial')
        assert osp.isdir(hook.test_out_dir) and not final.exists()
        open(osp.join(hook.test_out_dir, 'a.png'), 'w').close()
    assert sorted(p.name for p in final.parent.iterdir()) == ['vis']
    assert [p.name for p in final.iterdir()] == ['a.png']
    # (interrupted: atomic_dir, tests/test_fileio.py)
    with show_dir_written_whole(runner, None):  # no --show-dir
        pass


def test_a_dead_worker_seen_first_as_a_reset_connection():
    # the worker's pipe closes before the kernel reports it dead: the error
    # the loader raises may be a ConnectionResetError; torch's own check
    # then names the worker
    from torch.utils.data._utils.signal_handling import _remove_worker_pids

    from citymask.runner_setup import _dead_worker
    assert _dead_worker(RuntimeError('DataLoader worker (pid(s) 12, 34) '
                                     'exited unexpectedly')) == '12, 34'
    assert _dead_worker(RuntimeError('CUDA error')) is None
    # torch's SIGCHLD handler, left by an earlier loader in this process,
    # would raise where the child's death lands (as in train())
    handler = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    torch._C._set_worker_pids(id(pid), (pid,))
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, unreaped
        assert _dead_worker(ConnectionResetError(104, 'reset')) == str(pid)
    finally:
        _remove_worker_pids(id(pid))
        os.waitpid(pid, 0)
        signal.signal(signal.SIGCHLD, handler)
