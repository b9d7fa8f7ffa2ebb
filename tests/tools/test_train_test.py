"""tools/{train,test}.py and tools/dist_{train,test}.sh on mini-Cityscapes:
results, and the faults and bad input docs/reliability.md lists."""
import errno
import glob
import json
import os
import os.path as osp
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import citymask.register  # noqa: F401  (allow-list for torch.load)
from citymask import fileio
from citymask.cli import EXIT_INTERRUPTED
from citymask.fileio import atomic_dir
from citymask.testing.pause_hook import (paused_config, release,
                                         wait_until_paused)
from .. import fs_fixtures
from ..conftest import REPO, RunsCode, run_tool, tool_env
from .conftest import CFG, fails, ok

# mask AP: the stand-in after surgery scores 0.0; after the mini config's
# 300 iterations about 0.23-0.25, 6-7 of 8 classes above 0.1
LEARNED_AP = 0.15
UNTRAINED_AP = 0.01
# 12 iterations, lr warm-up over 6 and a step at 8: the schedule position
# matters at every iteration; checkpoints every 4
SHORT = ['train_cfg.max_iters=12', 'train_cfg.val_interval=100',
         'default_hooks.checkpoint.interval=4',
         'default_hooks.logger.interval=1', 'param_scheduler.0.end=6',
         'param_scheduler.1.milestones=[8]', 'param_scheduler.1.end=12',
         'randomness.seed=0', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False']


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_env(**extra):
    """For tools/dist_*.sh: CPU processes (GPUs hidden), a free port."""
    return {**os.environ, 'PYTHON': sys.executable, 'PORT': str(free_port()),
            'CUDA_VISIBLE_DEVICES': '', **extra}


def dist(script, *args, **env):
    """A finished ``tools/SCRIPT CFG ARGS`` run (:func:`dist_env`)."""
    return subprocess.run(['bash', f'tools/{script}', CFG, *args], cwd=REPO,
                          env=dist_env(**env), capture_output=True,
                          text=True)


def _train(mini_data, work, *extra):  # the short run
    root, data = mini_data
    return run_tool('tools/train.py', CFG, '--work-dir', str(work), *extra,
                    '--cfg-options', f'data_root={data}',
                    f'load_from={osp.join(root, "standin_cs.pth")}', *SHORT)


def _averages(work):
    with open(osp.join(work, 'cityscapes',
                       'resultInstanceLevelSemanticLabeling.json')) as f:
        return json.load(f)['averages']


def _test_ap(ckpt, data, work, *extra, env=None):
    ok(run_tool('tools/test.py', CFG, ckpt, '--work-dir', work, *extra,
                '--cfg-options', f'data_root={data}', env=env))
    return _averages(work)


def state(path):
    """``(iteration, lrs, step scheduler's last step)`` of a checkpoint."""
    ckpt = torch.load(path, weights_only=True)  # citymask's allow-list
    return (ckpt['meta']['iter'],
            [g['lr'] for g in ckpt['optimizer']['param_groups']],
            ckpt['param_schedulers'][1]['last_step'])


def paused_train(mini_data, tmp_path, iteration, *args, options=(),
                 launch=(sys.executable, 'tools/train.py'), env=None,
                 name='run', **popen):
    """The short run (``launch`` CFG ``args``, ``options`` after SHORT) held
    after ``iteration`` by PauseAtIterHook: ``(process, fifo, work, log)``."""
    root, data = mini_data
    fifo = tmp_path / f'{name}_fifo'
    fifo.mkdir()
    cfg = paused_config(osp.join(REPO, CFG), str(fifo), iteration)
    work, log = tmp_path / name, tmp_path / f'{name}.log'
    popen.setdefault('stderr', subprocess.STDOUT)
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [*launch, cfg, *args, '--work-dir', str(work), '--cfg-options',
             f'data_root={data}',
             f'load_from={osp.join(root, "standin_cs.pth")}', *SHORT,
             *options], cwd=REPO, env=env or tool_env(),
            stdin=subprocess.DEVNULL, stdout=out, text=True, **popen)
    assert wait_until_paused(proc, str(fifo)), log.read_text()[-3000:]
    return proc, str(fifo), work, log


def _run_scalars(work):
    """``[{step: record}]`` of each run's vis_data/scalars.json, oldest 1st."""
    runs = []
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        runs.append({r['step']: r for r in records if 'loss' in r})
    return runs


@pytest.fixture(scope='module')
def short_run(mini_data, tmp_path_factory):
    work = tmp_path_factory.mktemp('ref')
    ok(_train(mini_data, work))
    return work


def test_learnability(mini_data, trained, tmp_path):
    root, data = mini_data
    before = _test_ap(
        osp.join(root, 'standin_cs.pth'), data, str(tmp_path / 'before'))
    after = _test_ap(trained, data, str(tmp_path / 'after'), '--show-dir',
                     'overlays')
    print(f'mini val mask AP: untrained {before["allAp"]:.4f}, '
          f'trained {after["allAp"]:.4f}')
    assert before['allAp'] < UNTRAINED_AP
    assert after['allAp'] >= LEARNED_AP
    # learnt across classes, not one lucky class
    learnt = [c for c, v in after['classes'].items() if v['ap'] > 0.1]
    assert len(learnt) >= 5, after['classes']
    assert osp.getsize(tmp_path / 'after' / 'cityscapes' /
                       'cityscapes_class_ap.png') > 1000
    # one overlay per val image, in the Cityscapes palette (car: 0, 0, 142)
    overlays = glob.glob(str(tmp_path / 'after' / '*' / 'overlays' / '*'))
    assert len(overlays) == 12
    # drawn into a hidden folder, published whole
    assert not glob.glob(str(tmp_path / 'after' / '*' / '.overlays*'))
    pixels = np.concatenate(
        [np.asarray(Image.open(p).convert('RGB')).reshape(-1, 3)
         for p in overlays])
    assert (pixels == (0, 0, 142)).all(1).any()


def test_plot_curves(trained, tmp_path):
    work = osp.dirname(trained)
    res = ok(run_tool('tools/analysis_tools/plot_curves.py', work, '--out',
                      str(tmp_path / 'curves.png')))
    assert 'loss, lr, cityscapes/mAP' in res.stdout
    # read back: one panel per key (8 x 2.6 inches each at 100 dpi), each
    # with its curve drawn in matplotlib's first colour (C0)
    img = np.asarray(Image.open(tmp_path / 'curves.png').convert('RGB'))
    assert img.shape == (3 * 260, 800, 3)
    curve = (np.abs(img.astype(int) - (31, 119, 180)).sum(2) < 30)
    for k, panel in enumerate(np.split(curve, 3)):
        assert panel.sum() > 50, k  # a curve, or the mAP point's marker
    # loss and lr: a line across most of the panel (300 iterations)
    for panel in np.split(curve, 3)[:2]:
        cols = np.flatnonzero(panel.any(0))
        assert cols.max() - cols.min() > 500
    res = run_tool('tools/analysis_tools/plot_curves.py', str(tmp_path))
    assert res.returncode == 2 and 'not a training work dir' in res.stderr


def test_format_only_submission(mini_data, trained, tmp_path):
    from cityscapesscripts.helpers.labels import name2label
    _, data = mini_data
    prefix = tmp_path / 'submission'
    res = ok(run_tool('tools/test.py', CFG, trained, '--split', 'test',
                      '--format-only', '--outfile-prefix', str(prefix),
                      '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                      f'data_root={data}'))
    assert 'submission.zip' in res.stdout
    tests = sorted(glob.glob(osp.join(data, 'leftImg8bit', 'test', '*',
                                      '*.png')))
    assert len(tests) == 4
    with zipfile.ZipFile(str(prefix) + '.zip') as zf:
        names = set(zf.namelist())
        txts = sorted(n for n in names if n.endswith('_pred.txt'))
        # one prediction file per test image, named after it
        assert txts == sorted(osp.basename(p)[:-len('.png')] + '_pred.txt'
                              for p in tests)
        listed = set()
        for txt, image in zip(txts, tests):
            with Image.open(image) as im:
                width, height = im.size
            lines = zf.read(txt).decode().splitlines()
            assert lines, f'{txt} is empty: the trained model found nothing'
            foreground = 0
            for line in lines:
                png, label, score = line.split(' ')
                # cityscapesscripts' label of the class the file is named
                # after is the label id written beside it
                assert name2label[png[:-4].rsplit('_', 1)[1]].id == \
                    int(label)
                assert int(label) in (24, 25, 26, 27, 28, 31, 32, 33)
                assert 0 <= float(score) <= 1
                mask = cv2.imdecode(np.frombuffer(zf.read(png), np.uint8),
                                    cv2.IMREAD_UNCHANGED)
                assert mask.shape == (height, width)  # the image's size
                assert set(np.unique(mask)) <= {0, 255}
                foreground += int((mask == 255).sum())
                listed.add(png)
            assert foreground > 0
        assert names == listed | set(txts)  # no stray files


def _dist_ok(script, *args):
    res = dist(script, *args)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'GPU number: 2' in out
    return out


def test_dist_train_two_processes_on_cpu(mini_data, tmp_path):
    work = tmp_path / 'dist'
    out = _dist_ok('dist_train.sh', '2', '--work-dir', str(work),
                   '--cfg-options', f'data_root={mini_data[1]}',
                   'load_from=None', 'env_cfg.dist_cfg.backend=gloo', *SHORT,
                   'train_cfg.max_iters=4')
    # world size 2, and DDP's gradient all-reduce needs both ranks to step
    assert 'Distributed training: True' in out
    assert 'Iter(train) [4/4]' in out
    assert [p.name for p in work.glob('iter_*.pth')] == ['iter_4.pth']


def test_dist_test_two_processes_gives_the_single_process_ap(
        mini_data, trained, tmp_path):
    _, data = mini_data
    # both on the CPU (GPUs hidden), so both compute the same predictions
    single = _test_ap(trained, data, str(tmp_path / 'single'),
                      env=dict(CUDA_VISIBLE_DEVICES=''))
    out = _dist_ok('dist_test.sh', trained, '2', '--work-dir',
                   str(tmp_path / 'dist'), '--cfg-options',
                   f'data_root={data}', 'test_dataloader.num_workers=0',
                   'test_dataloader.persistent_workers=False')
    assert 'Distributed launcher: pytorch' in out
    averages, keys = _averages(tmp_path / 'dist'), ('allAp', 'allAp50%')
    assert single['allAp'] > 0
    assert [averages[k] for k in keys] == pytest.approx(
        [single[k] for k in keys], abs=1e-12)


def test_dist_train_refuses_more_gpus_than_present(monkeypatch):
    from citymask.errors import CitymaskError
    from citymask.preflight import check_gpu_count
    for bad in ('0', '-1', 'two', '', '²', '+2'):
        with pytest.raises(CitymaskError, match='positive integer'):
            check_gpu_count(bad)
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    check_gpu_count('8')  # CPU processes: any count
    monkeypatch.setattr('torch.cuda.is_available', lambda: True)
    monkeypatch.setattr('torch.cuda.device_count', lambda: 1)
    check_gpu_count('1')
    with pytest.raises(CitymaskError, match='asked for 8 GPUs but this '
                       'machine has 1; pass 1 or fewer'):
        check_gpu_count('8')
    res = dist('dist_train.sh', 'two')
    assert (res.returncode, res.stderr.strip()) == (
        2, "error: GPUS must be a positive integer, got 'two'")


def _resume_matches_the_uninterrupted_run(mini_data, short_run, work, at,
                                          logged):
    """Resume ``work`` (last checkpoint ``at``, logged up to ``logged``): the
    uninterrupted run's final state, and its lr at every iteration."""
    [uninterrupted] = _run_scalars(short_run)
    assert sorted(uninterrupted) == list(range(1, 13))
    res = ok(_train(mini_data, work, '--resume'))
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
    reference = state(short_run / 'iter_12.pth')
    assert state(work / 'iter_12.pth') == reference
    # iteration 12, and the lr past the step at 8: 0.02 * 0.1
    assert reference[0] == 12
    assert reference[1] == pytest.approx([0.002])


def stopped_line(signame, at, work):
    """tools/train.py's last line when ``signame`` stopped the short run."""
    return (f'stopped by {signame} after iteration {at} of 12, saved {work}/'
            f'iter_{at}.pth; to continue, run the same command with --resume')


def test_sigterm_stops_at_the_boundary_then_resume(mini_data, short_run,
                                                   tmp_path):
    # held after iteration 6 (checkpoints come at 4, 8, 12) ...
    proc, fifo, work, log = paused_train(mini_data, tmp_path, 6)
    proc.send_signal(signal.SIGTERM)  # what Slurm sends before the kill
    release(fifo)  # the handler ran before the hook returns
    assert proc.wait() == 128 + signal.SIGTERM, log.read_text()[-3000:]
    # ... it stops there, with a checkpoint of iteration 6 of its own
    assert log.read_text().splitlines()[-1] == stopped_line('SIGTERM', 6,
                                                            work)
    assert 'Traceback' not in log.read_text()
    assert (work / 'last_checkpoint').read_text() == f'{work}/iter_6.pth'
    assert state(work / 'iter_6.pth')[0] == 6
    assert not (work / 'iter_8.pth').exists()
    _resume_matches_the_uninterrupted_run(mini_data, short_run, work, 6, 6)


def test_sigkill_then_resume(mini_data, short_run, tmp_path):
    proc, fifo, work, _ = paused_train(mini_data, tmp_path, 6)
    proc.kill()  # no polite stop: the checkpoint of iteration 4 is the last
    proc.wait()
    assert (work / 'iter_4.pth').exists()
    assert not (work / 'iter_6.pth').exists()
    # the killed run's lock file is left behind; it holds nothing
    assert f'pid {proc.pid} on ' in (work / '.train.lock').read_text()
    # (held before iteration 6 was logged)
    _resume_matches_the_uninterrupted_run(mini_data, short_run, work, 4, 5)


def test_one_run_per_work_dir_and_ctrl_c(mini_data, tmp_path):
    proc, fifo, work, log = paused_train(mini_data, tmp_path, 2)
    holder = f'pid {proc.pid} on {socket.gethostname()}'
    line = fails(_train(mini_data, work), f'work dir {work} is in use by '
                 f'another training run ({holder}); wait for it to end or '
                 'stop it, or choose another --work-dir')
    # with torchrun: rank 0 is refused, the launcher ends rank 1
    res = dist('dist_train.sh', '2', '--work-dir', str(work),
               '--cfg-options', f'data_root={mini_data[1]}',
               'load_from=None')
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr.strip().splitlines() == [line]
    # nothing of theirs in the work dir: one run's log folder
    assert len([p for p in work.iterdir() if p.is_dir()]) == 1
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    release(fifo)
    assert proc.wait() == EXIT_INTERRUPTED, log.read_text()[-3000:]
    assert log.read_text().splitlines()[-1] == stopped_line('SIGINT', 2,
                                                            work)
    assert state(work / 'iter_2.pth')[0] == 2


def test_nan_loss_stops_with_the_iteration(mini_data, short_run, tmp_path):
    # the same run trains with the normal lr (short_run): the lr is the cause
    assert (short_run / 'iter_12.pth').exists()
    line = fails(_train(mini_data, tmp_path / 'nan', '--cfg-options',
                        'optim_wrapper.optimizer.lr=1e12'), 'loss is ')
    assert re.search(r'loss is (nan|inf|-inf) at iteration \d+ \(loss_',
                     line), line


def test_corrupt_image_names_the_file(mini_data, tmp_path):
    broken = tmp_path / 'cs'
    shutil.copytree(mini_data[1], broken)
    for png in glob.glob(str(broken / 'leftImg8bit' / 'train' / '*' / '*')):
        open(png, 'wb').write(b'\x89PNG broken')
    res = run_tool('tools/train.py', CFG, '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', f'data_root={broken}', 'load_from=None',
                   'train_dataloader.num_workers=1', 'train_cfg.max_iters=2')
    line = fails(res, 'cannot read image ')
    assert '/leftImg8bit/train/' in line and line.count('.png') == 1


def test_malicious_checkpoint_refused_everywhere(mini_data, tmp_path):
    # downloads: tests/test_compat.py::test_downloads_load_weights_only
    _, data = mini_data
    marker, evil, pkl = (tmp_path / n for n in ('pwned', 'evil.pth', 'e.pkl'))
    exploit = RunsCode(os.system, f'touch {marker}')
    torch.save({'state_dict': {}, 'meta': exploit}, evil)
    pkl.write_bytes(pickle.dumps(dict(model={  # detectron2's plain pickle
        'roi_heads.box_predictor.cls_score.weight': exploit})))
    on_data = ('--work-dir', str(tmp_path / 'w'), '--cfg-options',
               f'data_root={data}')
    out = str(tmp_path / 'out.pth')
    for args in (('tools/train.py', CFG, '--resume', str(evil), *on_data),
                 ('tools/train.py', CFG, *on_data, f'load_from={evil}'),
                 ('tools/test.py', CFG, str(evil), *on_data),
                 ('tools/surgery.py', str(evil), out),
                 ('tools/surgery.py', str(pkl), out)):
        fails(run_tool(*args), ('would' if args[1] == str(pkl) else 'could') +
              ' run code')
    assert not marker.exists() and not osp.exists(out)


@pytest.mark.parametrize('args,message', [
    (['--resume', '{standin}'], '--resume {standin}: it holds model weights '
     'only, no training state (optimizer, iteration) to resume; to train '
     'from these weights pass --cfg-options load_from={standin} instead'),
    (['--resume'], '--resume: no checkpoint in'),
    (['--cfg-options', 'max_iters=6'], 'max_iters is a variable of the '
     'config file, read only while the file is parsed, so setting it '
     'changes nothing; set it where it is used: train_cfg.max_iters'),
    (['--cfg-options', 'optim_wrapper.optimizer.lr=-1'],
     'optim_wrapper.optimizer.lr=-1: lr must be greater than 0'),
    (['--launcher', 'pytorch'], '--launcher pytorch: RANK, WORLD_SIZE, '
     'MASTER_ADDR, MASTER_PORT not set'),
    # as a user without a GPU runs it (GPUs hidden); what --amp does with
    # one: tests/test_runner_setup.py::test_amp
    (['--amp'], '--amp needs a GPU'),
    (['--amp', 'bf16'], '--amp needs a GPU'),
])
def test_train_refuses_what_it_would_ignore_or_fail_on(mini_data, tmp_path,
                                                       args, message):
    root, data = mini_data
    standin = osp.join(root, 'standin_cs.pth')
    args = [a.format(standin=standin) for a in args]
    fails(run_tool('tools/train.py', CFG, '--work-dir', str(tmp_path / 'w'),
                   *args, *([] if '--cfg-options' in args else
                            ['--cfg-options']), f'data_root={data}',
                   env=dict(CUDA_VISIBLE_DEVICES='')),
          message.format(standin=standin))
    assert not osp.exists(tmp_path / 'w') or \
        os.listdir(tmp_path / 'w') == []  # refused before the work


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
    (blocker := tmp_path / 'a_file').write_text('')
    fails(run_tool('tools/train.py', CFG, '--work-dir', str(blocker / 'w'),
                   *on_data), 'cannot write to work dir')
    # test.py's flag errors (unit: tests/test_runner_setup.py), one line
    fails(run_tool('tools/test.py', CFG, standin, '--split', 'test',
                   *on_data), 'no public ground truth')


def test_paths_with_spaces_commas_and_non_ascii(mini_data, tmp_path):
    """Everything under 'wé ird, dir': converter, surgery, --format-only
    over an older submission (--overwrite), whose stale file is gone."""
    root, data = mini_data
    weird = tmp_path / 'wé ird, dir'
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
    with atomic_dir(str(prefix)) as older:  # an earlier submission
        open(osp.join(older, 'stale_pred.txt'), 'w').close()
    res = ok(run_tool('tools/test.py', CFG, str(ckpt), '--split', 'test',
                      '--format-only', '--outfile-prefix', str(prefix),
                      '--overwrite', '--work-dir', str(weird / 'w'),
                      '--cfg-options', f'data_root={weird / "mini data"}'))
    assert f'submission: {prefix}.zip' in res.stdout
    txts = sorted(p for p in os.listdir(prefix) if p.endswith('.txt'))
    tests = glob.glob(osp.join(data, 'leftImg8bit', 'test', '*', '*.png'))
    assert txts == sorted(osp.basename(p)[:-4] + '_pred.txt' for p in tests)
    assert sorted(os.listdir(weird)) == [  # no temporary folders left
        '.citymask-sub mission', 'annotations, new', 'mini data',
        'stand in, cs.pth', 'sub mission', 'sub mission.zip', 'w']


def _metric_results(n, size=64):
    """What CityscapesInstanceMetric.process() collects for ``n`` images."""
    from citymask.evaluation.crops import crop_masks
    masks = np.zeros((2, size, size), bool)
    masks[0, 5:20, 5:20] = masks[1, 30:50, 10:60] = True
    return [dict(img_path=f'/x/berlin_{i:06d}_000019_leftImg8bit.png',
                 ori_shape=(size, size), label_ids=[24, 26],
                 scores=[0.9, 0.4], masks=crop_masks(masks))
            for i in range(n)]


def _format_only_metric(prefix, **kwargs):
    from citymask.classes import CLASSES
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    metric = CityscapesInstanceMetric(format_only=True,
                                      outfile_prefix=str(prefix), **kwargs)
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def test_format_only_results_are_whole_or_absent(tmp_path, monkeypatch):
    # the --format-only metric in-process, the disk full after about half
    # the masks (some 200 bytes each)
    prefix = tmp_path / 'results'
    metric = _format_only_metric(prefix)
    fs_fixtures.fail_writes(monkeypatch, fileio, OSError(
        errno.ENOSPC, os.strerror(errno.ENOSPC)), budget=dict(left=900))
    with pytest.raises(OSError):
        metric.compute_metrics(_metric_results(4))
    assert os.listdir(tmp_path) == []  # no partial folder, no temp folder
    monkeypatch.undo()
    metric.compute_metrics(_metric_results(4))
    assert len(os.listdir(prefix)) == 4 * 3  # 4 txt + 8 masks
    # a second run into it: refused at build time unless overwrite
    with pytest.raises(Exception, match='is not empty'):
        _format_only_metric(prefix)
    _format_only_metric(prefix, overwrite=True).compute_metrics(
        _metric_results(1))
    assert len(os.listdir(prefix)) == 3
    assert sorted(os.listdir(tmp_path)) == ['.citymask-results', 'results']
