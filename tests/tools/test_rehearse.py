"""tools/rehearse.py: every step of the path a user walks, run by the real
tools at CPU size; the table's figures are what mmengine and the tools
wrote; a failing step is one line."""
import json
import os.path as osp
import re
import sys
import zipfile
from glob import glob

import pytest

from citymask import rehearsal
from citymask.rehearsal import MARKER, steps
from ..conftest import run_tool
from .conftest import error, fails, ok

TOOL = 'tools/rehearse.py'
STEPS = ['data', 'convert', 'checkpoint', 'surgery', 'train', 'test',
         'submit', 'check', 'infer']
FRAMES = {'train': 2, 'val': 1, 'test': 1}


def _table(stdout):
    """``{step: (seconds, figures)}`` of the final table."""
    lines = stdout[stdout.rindex('\nstep '):].strip().splitlines()[1:]
    cells = [re.split(r'\s{2,}', ln.strip(), maxsplit=2) for ln in lines]
    return {c[0]: (float(c[1]), c[2] if len(c) > 2 else '') for c in cells}


def _json(work, step, name=None):
    """A JSON file of ``work/step``; None: mmengine's metric JSON in its one
    ``TIMESTAMP`` folder; ``scalars.json``: that folder's, one a line."""
    runs = glob(osp.join(work, step, '2*_*'))
    assert len(runs) == 1, runs
    path = osp.join(runs[0], 'vis_data', name) if name else osp.join(
        runs[0], osp.basename(runs[0]) + '.json')
    with open(path) as f:
        return [json.loads(ln) for ln in f] if name else json.load(f)


def test_every_step_runs_with_its_figures(tmp_path):
    work = str(tmp_path)
    rows = _table(ok(run_tool(TOOL, '--work-dir', work, '--iters', '2',
                              '--frames', *map(str, FRAMES.values()))).stdout)
    assert list(rows) == STEPS + ['total']
    # each printed figure is rounded to 0.1 s, so off by at most 0.05
    steps = [s for name, (s, _) in rows.items() if name != 'total']
    assert rows['total'][0] == pytest.approx(
        sum(steps), abs=0.05 * len(rows) + 1e-9)
    # training went through dist_train.sh (torchrun) and saved iteration 2
    with open(osp.join(work, 'logs', 'train.log')) as f:
        assert 'Distributed training: True' in f.read()
    assert osp.isfile(osp.join(work, 'train', 'iter_2.pth'))

    assert rows['data'][1] == f'{sum(FRAMES.values())} frames 512x256'
    instances = 0
    for split, n in FRAMES.items():
        with open(osp.join(work, 'cityscapes', 'annotations', 'instancesonly'
                           f'_filtered_gtFine_{split}.json')) as f:
            coco = json.load(f)
        assert len(coco['images']) == n
        instances += len(coco['annotations'])
    assert rows['convert'][1] == f'{instances} instances; images ' + ', '.join(
        f'{split} {n}' for split, n in FRAMES.items())
    # training: what scalars.json holds
    logged = _json(work, 'train', 'scalars.json')
    train = [r for r in logged if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2]  # logger interval 1
    t = train[1]['time']  # the first interval is warm-up
    # 2 images per iteration: the mini config's batch size, one process
    assert rows['train'][1] == (
        f'loss {train[0]["loss"]:.4g} -> {train[1]["loss"]:.4g}, lr '
        f'{train[1]["lr"]:.4g}, {2 / t:.3g} img/s ({t:.3g} s/iter, data '
        f'{train[1]["data_time"]:.3g} s)')  # no GPU: no memory
    assert not any('memory' in r for r in logged)

    metrics = _json(work, 'test')
    # the official evaluator's own result file holds the same AP
    with open(osp.join(work, 'test', 'cityscapes',
                       'resultInstanceLevelSemanticLabeling.json')) as f:
        official = json.load(f)['averages']
    assert metrics['cityscapes/mAP'] == pytest.approx(official['allAp'])
    assert rows['test'][1] == (
        f'mask AP {100 * official["allAp"]:.1f}, AP50 '
        f'{100 * official["allAp50%"]:.1f}, {1 / metrics["time"]:.3g} img/s')
    with zipfile.ZipFile(osp.join(work, 'submission.zip')) as zf:
        preds = [n for n in zf.namelist() if n.endswith('_pred.txt')]
    assert len(preds) == FRAMES['test']
    time = _json(work, 'submit')['time']
    assert rows['submit'][1] == f'1 prediction files, {1 / time:.3g} img/s'
    assert rows['check'][1] == 'valid'
    assert len(glob(osp.join(work, 'infer', 'preds', '*', '*.json'))) == 1
    assert rows['infer'][1] == '1 images'


@pytest.mark.parametrize('cmd,why', [
    # the tool's last `error:` line (torchrun prints more after it)
    ([sys.executable, '-c', 'print("error: not this one"); print("error: '
      'no data"); print("Traceback ..."); raise SystemExit(2)'],
     'no data (exit status 2)'),
    ([sys.executable, '-c', 'print("last line"); raise SystemExit(3)'],
     'last line (exit status 3)'),
    (['false'], 'no output (exit status 1)'),
    (['true'], 'its output could not be read: FileNotFoundError'),
])
def test_a_failing_step_is_one_line_and_stops_there(tmp_path, monkeypatch,
                                                    capsys, cmd, why):
    # a work dir an earlier rehearsal wrote is emptied first
    (tmp_path / MARKER).write_text('')
    (tmp_path / 'old.txt').write_text('from the last rehearsal')
    todo = [('data', ['true'], lambda: 'fine'),
            ('train', cmd, lambda: open(tmp_path / 'missing').read()),
            ('test', ['touch', str(tmp_path / 'ran')], lambda: 'not run')]
    monkeypatch.setattr(rehearsal, 'steps', lambda *args, **kwargs: todo)
    msg = error(rehearsal.rehearse, str(tmp_path))
    assert msg.startswith(f"step 'train' failed: {why}")
    assert msg.endswith(f'(full log: {tmp_path}/logs/train.log)')
    rows = _table(capsys.readouterr().out)
    assert list(rows) == ['data', 'train', 'total']
    assert rows['data'][1] == 'fine' and rows['train'][1] == 'FAILED'
    assert not (tmp_path / 'ran').exists()
    assert not (tmp_path / 'old.txt').exists()
    assert (tmp_path / MARKER).exists()


@pytest.mark.parametrize('flags', [[], ['--iters', '0'], ['--gpus', '-1'], [
    '--frames', '1', '0', '1'], ['--batch-size', '0']])
def test_refusals_are_one_line_and_touch_nothing(tmp_path, flags):
    """A work dir no rehearsal wrote; sizes that measure nothing."""
    (tmp_path / 'precious.txt').write_text('keep me')
    fails(run_tool(TOOL, '--work-dir', str(tmp_path), *flags), 'not empty'
          if not flags else '--iters, --frames and --batch-size >= 1')
    assert [p.name for p in tmp_path.iterdir()] == ['precious.txt']
    assert (tmp_path / 'precious.txt').read_text() == 'keep me'


def test_gpu_size_commands(tmp_path):
    # what runs on a GPU node: the main config at full size, every GPU
    # through the launchers, AMP, 8 images per GPU, options passed on
    cmds = {name: cmd for name, cmd, _ in steps(
        str(tmp_path), gpus=2, batch_size=8, cfg_options=['a.b=1'])}
    assert list(cmds) == STEPS
    assert ' --width 2048 --height 1024 ' in ' '.join(cmds['data'])
    assert cmds['train'][:4] == ['bash', 'tools/dist_train.sh',
                                 'configs/maskrcnn_r50_fpn_cityscapes_ft.py',
                                 '2']
    assert {'--amp', '--auto-scale-lr', 'train_dataloader.batch_size=8',
            'train_cfg.max_iters=200', 'a.b=1'} <= set(cmds['train'])
    assert cmds['test'][:2] + cmds['test'][4:5] == [
        'bash', 'tools/dist_test.sh', '2']
    assert all('a.b=1' in cmds[name] for name in ('test', 'submit', 'infer'))
    assert ' --device cuda' in ' '.join(cmds['infer'])
    # CPU size: one process, no AMP, the config's own batch size
    cpu = {name: cmd for name, cmd, _ in steps(str(tmp_path))}
    assert cpu['train'][2:4] == [
        'configs/mini/maskrcnn_r18_fpn_mini_cityscapes.py', '1']
    assert not any('--amp' in a or 'batch_size' in a for a in cpu['train'])
    assert cpu['data'][0] == sys.executable
