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


def test_smoke_benchmark_train_cpu_tiny(tmp_path):
    res = ok(run_tool('tools/analysis_tools/benchmark_train.py', '--device',
                      'cpu', '--num-images', '2', '--width', '256',
                      '--height', '128', '--iters', '2', '--warmup', '1',
                      '--infer-iters', '2', '--workers', '0', '--work-dir',
                      str(tmp_path), timeout=900))
    for row in ('stock mmdet, fp32', 'citymask, fp32'):
        assert re.search(row + r' +[\d.]+ +[\d.]+ +[\d.]+', res.stdout), \
            res.stdout
    assert 'citymask, AMP' in res.stdout and 'n/a on CPU' in res.stdout
    assert re.search(r'citymask, fp32 +[\d.]+$', res.stdout, re.M)
