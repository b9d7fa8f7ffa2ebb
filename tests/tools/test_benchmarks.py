"""Smoke tests: the benchmark scripts run end to end at tiny sizes and print
their tables. Timings are reported in docs/benchmarks.md and never asserted
here; only the correctness checks the scripts make (e.g. identical AP) are.
"""
import importlib.util
import os.path as osp
import re

import pytest

from ..conftest import REPO, run_tool
from .conftest import ok


def test_smoke_benchmark_eval_tiny(tmp_path):
    res = ok(run_tool('tools/analysis_tools/benchmark_eval.py',
                      '--num-images', '3', '--width', '512', '--height',
                      '256', '--preds', '20', '--nproc', '2', '--work-dir',
                      str(tmp_path)))
    # the script exits 1 unless every AP is identical to 1e-12
    assert 'identical: True' in res.stdout
    assert 'CLI results identical to the official script: True' \
        in res.stdout
    for name in ('mmdet CityScapesMetric', 'CityscapesInstanceMetric'):
        assert name in res.stdout
    writers = ('OpenCV (mmdet)', 'OpenCV (cv2.imwrite)', 'PIL (detectron2)')
    reads = re.findall(r'^(OpenCV \(mmdet\)|OpenCV \(cv2\.imwrite\)|'
                       r'PIL \(detectron2\)) +([\d.]+) +([\d.]+) +([\d.]+)$',
                       res.stdout, re.M)
    # one row per writer in each of the CLI and PNG-reading tables
    assert sorted({r[0] for r in reads}) == sorted(writers)
    assert all(float(t) > 0 for r in reads for t in r[1:])


def test_smoke_benchmark_pipeline_tiny(tmp_path):
    # 1024x512: at smaller sizes half-pixel rasterisation differences
    # dominate tiny objects' 28x28 targets
    res = ok(run_tool('tools/analysis_tools/benchmark_pipeline.py',
                      '--num-images', '3', '--width', '1024', '--height',
                      '512', '--repeat', '1', '--work-dir', str(tmp_path)))
    rates = re.findall(r'^\((?:a|b|c)\) .*? ([\d.]+) +[\d.]+ +[\d.]+x$',
                       res.stdout, re.M)
    assert len(rates) == 4 and all(float(r) > 0 for r in rates)
    iou = float(re.search(r'mean IoU ([\d.]+)', res.stdout).group(1))
    assert iou >= 0.95  # polygons give the bitmap path's targets


def test_gpu_check_on_the_cpu_tiny(tmp_path):
    res = ok(run_tool('tools/gpu_check.py', '--device', 'cpu',
                      '--num-images', '2', '--width', '256', '--height',
                      '128', '--batch-sizes', '1', '2', '--warmup', '1',
                      '--steps', '2', '--infer-batch-sizes', '1', '2',
                      '--infer-steps', '1', '--workers', '0', '--work-dir',
                      str(tmp_path)))
    out = res.stdout
    # the plan comes before any measurement
    assert out.index('plan: 6 training rows of 1 warm-up + 2 measured '
                     'steps (18 images)') < out.index('| images/GPU |')
    rows = [(b, p, cells.rstrip(' |')) for b, p, cells in re.findall(
        r'^\| (\d+) \| (fp32|fp16|bf16) \| (.*)\|$', out, re.M)]
    train, infer = rows[:6], rows[6:]
    assert [r[:2] for r in train] == [(b, p) for b in '12'
                                      for p in ('fp32', 'fp16', 'bf16')]
    assert [r[:2] for r in infer] == [r[:2] for r in train]
    for batch, precision, cells in rows:
        if precision == 'fp16':  # CPU autocast: fp32 and bf16 only
            assert cells.startswith('not measured: needs a CUDA GPU')
    for _, precision, cells in train:
        if precision != 'fp16':
            img_s, gib, wait, loss, minutes = cells.split(' | ')
            assert float(img_s) > 0 and gib == '-'
            assert re.fullmatch(r'\d+%', wait)
            assert 0 < float(loss) < 100
            # the fine-tune config: 4000 iterations of 8 images, at the
            # rate printed to 2 decimals
            low, high = (32000 / 60 / (float(img_s) + d)
                         for d in (5e-3, -5e-3))
            assert low - 1 <= int(minutes.split()[0]) <= high + 1, cells
    for _, precision, cells in infer:
        if precision != 'fp16':
            ms, img_s, gib = cells.split(' | ')
            assert float(ms) > 0 and float(img_s) > 0
    fastest = max(float(c.split(' | ')[0]) for _, p, c in train
                  if p != 'fp16')
    assert re.search(rf'fastest: [12] images/GPU (fp32|bf16), '
                     rf'{fastest:.2f} img/s', out)
    assert re.search(r'data loader workers to feed [\d.]+ img/s: [1-9]\d* '
                     r'\(this run: 0\)', out)
    # the exit status (0) says every departure is within the default 10%
    checks = re.findall(r'^loss bf16 vs fp32, ([12]) images/GPU: '
                        r'([-+][\d.]+)% \(tolerance 10%\)$', out, re.M)
    assert [c[0] for c in checks] == ['1', '2']
    assert all(abs(float(c[1])) <= 10 for c in checks)


@pytest.fixture(scope='module')
def gpu_check():
    spec = importlib.util.spec_from_file_location(
        'gpu_check', osp.join(REPO, 'tools', 'gpu_check.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_loss_check(gpu_check):
    train = {(1, 'fp32'): dict(loss=2.0), (1, 'bf16'): dict(loss=2.09),
             (2, 'fp32'): 'out of GPU memory', (2, 'bf16'): dict(loss=1.0),
             (4, 'fp32'): dict(loss=2.0), (4, 'fp16'): dict(loss=1.8)}
    got = {(b, p): (round(rel, 6), ok)
           for b, p, rel, ok in gpu_check.loss_check(train, 0.05)}
    # 2 images/GPU: no fp32 row to compare with
    assert got == {(1, 'bf16'): (0.045, True), (4, 'fp16'): (-0.1, False)}
    assert [c[3] for c in gpu_check.loss_check(
        {(1, 'fp32'): dict(loss=2.0), (1, 'fp16'): dict(loss=float('nan'))},
        0.05)] == [False]


def test_gpu_check_refuses_sizes_that_measure_nothing():
    for flag in ('--num-images', '--steps', '--infer-steps'):
        res = run_tool('tools/gpu_check.py', flag, '0')
        assert res.returncode == 2
        assert res.stderr.strip().splitlines()[-1] == (
            f'gpu_check.py: error: {flag} must be at least 1')
    res = run_tool('tools/gpu_check.py', '--batch-sizes', '4', '0')
    assert res.returncode == 2
    assert res.stderr.strip().endswith('batch sizes must be at least 1')
