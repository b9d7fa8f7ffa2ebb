"""tools/rehearse.py: the main job's steps at CPU size, its table, its one
line when a step fails, and the GPU memory sampling (with a stand-in
nvidia-smi)."""
import json
import os
import os.path as osp
import re
import stat
import time
import zipfile

import pytest

from citymask.rehearsal import GpuMemory, make_plan
from ..conftest import REPO, run_tool
from .conftest import ok

TOOL = 'tools/rehearse.py'
STEPS = ['data', 'convert', 'checkpoint', 'surgery', 'train', 'test',
         'submission', 'infer']


def _table(stdout):
    """``{step: (wall s, throughput, memory, outcome)}`` of the table (its
    columns are where the dashes under the heading are)."""
    lines = stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith('step '))
    spans = [m.span() for m in re.finditer(r'-+', lines[head + 1])]
    rows = {}
    for ln in lines[head + 2:]:
        if not ln.strip() or ln.startswith('total '):
            break
        cells = [ln[a:b].strip() for a, b in spans[:-1]]
        cells.append(ln[spans[-1][0]:].strip())
        rows[cells[0]] = (float(cells[1]), *cells[2:])
    return rows


@pytest.fixture(scope='module')
def cpu_run(tmp_path_factory):
    work = tmp_path_factory.mktemp('rehearsal')
    res = ok(run_tool(TOOL, '--device', 'cpu', '--work-dir', str(work),
                      timeout=600))
    return str(work), res


def test_cpu_rehearsal_runs_every_step(cpu_run):
    work, res = cpu_run
    rows = _table(res.stdout)
    assert list(rows) == STEPS
    plan = make_plan('cpu', 0, 2)
    # data and conversion: the plan's frames, converted by the tool
    ann = osp.join(work, 'cityscapes', 'annotations')
    for split, n in plan.frames.items():
        with open(osp.join(
                ann, f'instancesonly_filtered_gtFine_{split}.json')) as f:
            assert len(json.load(f)['images']) == n
    assert re.search(r'[\d.]+ frames/s', rows['convert'][1])
    # training ran its iterations through dist_train.sh (torchrun) ...
    with open(osp.join(work, 'logs', '5_train.log')) as f:
        train_log = f.read()
    assert f'Iter(train) [{plan.iters}/{plan.iters}]' in train_log
    assert 'Distributed training: True' in train_log
    assert osp.isfile(osp.join(work, 'train', f'iter_{plan.iters}.pth'))
    assert re.match(r'[\d.]+ img/s \([\d.]+ incl. start-up\)',
                    rows['train'][1])
    assert 'fp32' in rows['train'][3]  # no AMP without a GPU
    # ... the test step's AP is the one in the Cityscapes result file ...
    with open(osp.join(work, 'test', 'cityscapes',
                       'resultInstanceLevelSemanticLabeling.json')) as f:
        ap = json.load(f)['averages']['allAp']
    assert f'mask AP {100 * ap:.1f}' in rows['test'][3]
    # ... and the submission holds one prediction file per test image
    with zipfile.ZipFile(osp.join(work, 'submission.zip')) as zf:
        preds = [n for n in zf.namelist() if n.endswith('_pred.txt')]
    assert len(preds) == plan.frames['test']
    assert f'{len(preds)} prediction file(s)' in rows['submission'][3]
    if osp.isfile(osp.join(REPO, 'tools', 'infer.py')):
        assert not rows['infer'][3].startswith('skipped')
    else:
        assert rows['infer'][3] == 'skipped: tools/infer.py not present'
    # no GPU here: no memory column values
    assert {r[2] for r in rows.values()} == {'-'}


def test_failing_step_is_one_line_and_stops_there(tmp_path):
    bad = tmp_path / 'coco.pth'
    bad.write_bytes(b'not a checkpoint')
    work = tmp_path / 'work'
    res = run_tool(TOOL, '--device', 'cpu', '--work-dir', str(work),
                   '--checkpoint', str(bad), timeout=600)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: step 'surgery' failed: ")
    assert str(bad) in lines[0] and 'pass --checkpoint' in lines[0]
    assert 'full log: ' in lines[0]
    rows = _table(res.stdout)
    assert list(rows) == ['data', 'convert', 'checkpoint', 'surgery']
    assert rows['surgery'][3] == 'FAILED'
    assert not (work / 'train').exists()


def test_refuses_a_work_dir_it_did_not_write(tmp_path):
    (tmp_path / 'precious.txt').write_text('keep me')
    res = run_tool(TOOL, '--device', 'cpu', '--work-dir', str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.startswith('error: ') and 'not empty' in res.stderr
    assert (tmp_path / 'precious.txt').read_text() == 'keep me'


def test_default_sizes_fit_the_main_job():
    gpu = make_plan('cuda', 1, 16)
    assert gpu.config == 'configs/maskrcnn_r50_fpn_cityscapes_ft.py'
    assert (gpu.width, gpu.height) == (2048, 1024) and gpu.amp
    assert sum(gpu.frames.values()) >= 50 and gpu.iters >= 100
    double = make_plan('cuda', 1, 16, budget=16)
    assert double.iters == 2 * gpu.iters
    assert double.frames == {s: 2 * n for s, n in gpu.frames.items()}
    cpu = make_plan('cpu', 0, 2)
    assert cpu.config.startswith('configs/mini/') and not cpu.amp
    assert cpu.gpus == 1


def test_gpu_memory_peak_from_nvidia_smi(tmp_path, monkeypatch):
    # a stand-in nvidia-smi: two GPUs; while "sampling" (-lms) GPU 0 rises
    # from 1000 to 3500 MiB, GPU 1 stays at its 800
    smi = tmp_path / 'nvidia-smi'
    smi.write_text(
        '#!/bin/sh\n'
        'case "$*" in *-lms*) printf "0, 1500\\n1, 800\\n0, 3500\\n'
        '1, 800\\n0, 2000\\n"; exec sleep 60;;\n'
        '*) printf "0, 1000\\n1, 800\\n";; esac\n')
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}'
                       f'{os.environ["PATH"]}')
    baseline = GpuMemory.query()
    assert baseline == {'0': 1000, '1': 800}
    with GpuMemory(baseline) as memory:
        deadline = time.time() + 10
        while memory.peak < 2500 and time.time() < deadline:
            time.sleep(0.05)
    assert memory.peak == 2500


def test_gpu_commands_are_the_readme_ones(tmp_path):
    # what runs on a GPU node (no GPU here to run it): every visible GPU,
    # full size, AMP, the converter on every core, inference on the GPU
    from citymask.rehearsal import Rehearsal
    rehearsal = Rehearsal(make_plan('cuda', 2, 16), str(tmp_path))
    steps = {s.name: s for s in rehearsal.steps()}
    assert list(steps) == STEPS
    data = steps['data'].cmd
    assert data[1] == 'tools/dataset_converters/make_mini_cityscapes.py'
    assert data[data.index('--width') + 1:data.index('--width') + 4] == [
        '2048', '--height', '1024']
    assert steps['convert'].cmd[-2:] == ['--nproc', '16']
    train = steps['train'].cmd
    assert train[:5] == ['bash', 'tools/dist_train.sh',
                         'configs/maskrcnn_r50_fpn_cityscapes_ft.py', '2',
                         '--work-dir']
    assert '--amp' in train and '--auto-scale-lr' in train
    assert 'train_cfg.max_iters=200' in train
    test = steps['test'].cmd
    assert test[:2] == ['bash', 'tools/dist_test.sh'] and test[4] == '2'
    assert steps['submission'].cmd[1:2] == ['tools/test.py']
    assert {'--split', 'test', '--format-only'} <= set(
        steps['submission'].cmd)
    assert steps['infer'].cmd[-2:] == ['--device', 'cuda']
