"""Smoke tests: the benchmark scripts run end to end at tiny sizes and print
their tables. Timings are reported in docs/benchmarks.md and never asserted
here; only the correctness checks the scripts make (e.g. identical AP) are.
"""
import re

from ..conftest import run_tool
from .conftest import ok


def test_smoke_benchmark_eval_tiny(tmp_path):
    res = ok(run_tool('tools/analysis_tools/benchmark_eval.py',
                      '--num-images', '3', '--width', '512', '--height',
                      '256', '--preds', '20', '--nproc', '2', '--work-dir',
                      str(tmp_path), timeout=600))
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
                      '512', '--repeat', '1', '--work-dir', str(tmp_path),
                      timeout=600))
    rates = re.findall(r'^\((?:a|b|c)\) .*? ([\d.]+) +[\d.]+ +[\d.]+x$',
                       res.stdout, re.M)
    assert len(rates) == 4 and all(float(r) > 0 for r in rates)
    iou = float(re.search(r'mean IoU ([\d.]+)', res.stdout).group(1))
    assert iou >= 0.95  # polygons give the bitmap path's targets


def test_gpu_check_on_the_cpu_tiny(tmp_path):
    res = ok(run_tool('tools/gpu_check.py', '--device', 'cpu',
                      '--num-images', '2', '--width', '256', '--height',
                      '128', '--iters', '1', '--warmup', '0',
                      '--infer-iters', '1', '--metric-images', '2',
                      '--workers', '0', '--work-dir', str(tmp_path),
                      timeout=900))
    table = res.stdout[res.stdout.index('| check | setting | result |'):]
    rows = {line.split(' | ')[0][2:]: line.split(' | ')[2]
            for line in table.splitlines()[2:]}
    for name in ('CUDA op nms', 'CUDA op RoIAlign fwd + bwd',
                 'train: citymask AMP fp16', 'infer: citymask fp16'):
        assert rows[name] == 'not measured: needs a CUDA GPU |', rows
    for name in ('train: stock mmdet fp32', 'train: citymask fp32'):
        assert re.match(r'[\d.]+ img/s \([\d.]+x stock\), data wait \d+%',
                        rows[name]), rows[name]
    assert rows['train: stock mmdet fp32'].startswith(
        rows['train: stock mmdet fp32'].split()[0] + ' img/s (1.00x stock)')
    assert re.match(r'[\d.]+ ms/img', rows['infer: citymask fp32'])
    # both metrics on the same predictions give the same AP (> 0)
    ap = {name: re.search(r'mAP ([\d.]+)', rows[name]).group(1)
          for name in ('metric: mmdet CityScapesMetric',
                       'metric: citymask CityscapesInstanceMetric')}
    assert len(set(ap.values())) == 1 and float(ap.popitem()[1]) > 0, ap
    assert 'same AP: True' in rows['metric: speed-up']


def test_gpu_check_refuses_sizes_that_measure_nothing():
    for flag in ('--num-images', '--iters', '--infer-iters'):
        res = run_tool('tools/gpu_check.py', flag, '0')
        assert res.returncode == 2
        assert res.stderr.strip().splitlines()[-1] == (
            f'gpu_check.py: error: {flag} must be at least 1')
