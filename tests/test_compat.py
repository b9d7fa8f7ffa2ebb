"""The pinned stack's checkpoint compatibility (citymask.compat)."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

import citymask.register  # noqa: F401  (applies the allow-list)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        return dict(loss=((self.linear(inputs) - labels)**2).mean())


def _toy_data(i):
    g = torch.Generator().manual_seed(i)
    return dict(inputs=torch.randn(2, generator=g),
                labels=torch.randn(1, generator=g))


def make_runner(work_dir, max_iters, resume=False, init_seed=0):
    torch.manual_seed(init_seed)  # the initial weights
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=[_toy_data(i) for i in range(8)], batch_size=2,
            sampler=dict(type='InfiniteSampler', shuffle=False),
            collate_fn=dict(type='default_collate'), num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        # `end` fixed, as in citymask's configs: mmengine would default it
        # to this run's max_iters and the short run stands for a long one
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, begin=0, end=4,
            milestones=[3], gamma=0.1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=2)),
        randomness=dict(seed=7), resume=resume, default_scope='mmengine')


def test_numpy_scalars_in_meta_load_only_with_citymask(tmp_path):
    # the upstream reproduction: mmengine writes numpy scalars into meta
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint(dict(meta=dict(seed=np.int64(3), score=np.float32(0.5)),
                         state_dict={'w': torch.ones(2)}), path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['seed'] == 3 and ckpt['meta']['score'] == 0.5
    # what the allow-list fixes: without citymask torch refuses the file
    out = subprocess.run([sys.executable, '-c',
                          f'import torch; torch.load({path!r})'],
                         capture_output=True, text=True)
    assert out.returncode == 1 and 'UnpicklingError' in out.stderr


class _RunsCode:
    """Pickles as a call of ``target(*args)``, made when it is loaded."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return (self.target, self.args)


@pytest.mark.parametrize('target', ['os.system', 'subprocess.call', 'eval',
                                    'exec'])
def test_allow_list_still_refuses_code(tmp_path, target):
    marker = tmp_path / 'ran'
    code = f'open({str(marker)!r}, "w").close()'
    call = {'os.system': (os.system, f'touch {marker}'),
            'subprocess.call': (subprocess.call, ['touch', str(marker)]),
            'eval': (eval, code), 'exec': (exec, code)}[target]
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'meta': _RunsCode(*call)}, f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    # mmengine's loader (load_from / resume) takes the same path
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def _torch_own(entry):
    """What torch allow-lists itself: its own types (e.g. DTensor placements,
    once imported) and, from torch 2.14, the builtin exceptions and
    traceback summaries ``torch.distributed`` passes between ranks."""
    import builtins
    import traceback
    return entry.__module__.startswith('torch.') or \
        entry in (traceback.StackSummary, traceback.FrameSummary) or (
            isinstance(entry, type) and issubclass(entry, BaseException)
            and getattr(builtins, entry.__name__, None) is entry)


def test_allow_list_holds_data_types_only():
    from mmengine.logging.history_buffer import HistoryBuffer

    from citymask.compat import _history_buffer_getattr, mmengine_safe_globals
    allowed = torch.serialization.get_safe_globals()
    assert allowed
    # citymask's own entries are all in the registry, none of them torch's
    ours = mmengine_safe_globals()
    assert ours and all(entry in allowed for entry in ours)
    assert not any(_torch_own(e) for e in ours if not isinstance(e, tuple))
    for entry in allowed:
        if isinstance(entry, tuple):  # (stand-in, the name it answers)
            assert entry == (_history_buffer_getattr, 'builtins.getattr')
            continue
        if _torch_own(entry):
            continue
        # numpy's array / scalar / dtype rebuilders and HistoryBuffer: no
        # callable of os, subprocess, builtins or anything else
        assert entry is HistoryBuffer or \
            entry.__module__.split('.')[0] == 'numpy', entry


def test_runner_resume_restores_iter_optimizer_and_lr(tmp_path):
    # Uninterrupted reference run: 4 iterations.
    ref = make_runner(tmp_path / 'ref', 4)
    ref.train()
    # Interrupted run: 2 iterations, checkpoint, then resume to 4.
    make_runner(tmp_path / 'run', 2).train()
    # a fresh interpreter loads it weights-only, as tools/test.py or a
    # resumed job would: meta and the message hub's HistoryBuffers
    code = ('import citymask.register, torch; c = torch.load({!r}); '
            'print(c["meta"]["iter"], sorted(c["message_hub"]))'
            ).format(str(tmp_path / 'run' / 'iter_2.pth'))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith('2 ')

    # other initial weights: only what it resumes can match the reference
    cont = make_runner(tmp_path / 'run', 4, resume=True, init_seed=1)
    cont.train()
    assert cont.iter == 4
    # lr passed the milestone at 3 in both runs: same schedule position;
    # the same weights need the weights and the momentum restored
    assert cont.optim_wrapper.get_lr()['lr'] == pytest.approx(
        ref.optim_wrapper.get_lr()['lr'])
    for a, b in zip(cont.model.parameters(), ref.model.parameters()):
        torch.testing.assert_close(a, b)


class _GetattrExploit:
    # what a crafted checkpoint could do with a real getattr: reach a
    # method of an allow-listed class (ndarray.tofile writes files)
    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_getattr_stand_in_only_resolves_history_buffer(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': _GetattrExploit()}, path)
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        torch.load(path, weights_only=True)


def test_downloads_load_weights_only(tmp_path):
    # mmengine's http/torchvision/open-mmlab loaders all call this function;
    # a file:// URL exercises the real download path without a network.
    from mmengine.runner import checkpoint
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict={'w': torch.ones(2)}), good)
    ckpt = checkpoint.load_from_http(good.as_uri(),
                                     model_dir=str(tmp_path / 'hub'))
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))

    evil = tmp_path / 'evil.pth'
    torch.save({'meta': _RunsCode(print, 'pwned')}, evil)
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.load_from_http(evil.as_uri(),
                                  model_dir=str(tmp_path / 'hub'))
