"""The benchmark tools end to end at tiny sizes: their tables and the
correctness checks they exit 1 on (timings are never asserted)."""
import re
import sys

import pytest

from citymask.datasets.cityscapes_converter import available_cores
from ..conftest import REPO, run_tool
from .conftest import ok


def rows(out, first):
    """The cells of the Markdown rows whose first cell matches ``first``."""
    return [r.split(' | ') for r in re.findall(
        rf'^\| ((?:{first}) \| .*) \|$', out, re.M)]


def test_benchmark_eval_tiny(tmp_path):
    out = ok(run_tool('tools/analysis_tools/benchmark_eval.py',
                      '--num-images', '3', '--width', '512', '--height',
                      '256', '--preds', '20', '--nproc', '2', '--work-dir',
                      str(tmp_path))).stdout
    # the script exits 1 unless every AP is identical to 1e-12
    assert 'identical: True' in out
    assert 'CLI results identical to the official script: True' in out
    metric = rows(out, r'mmdet CityScapesMetric|citymask \w+')
    assert len(metric) == 2 and metric[0][-1] == metric[1][-1]
    names = ['OpenCV (mmdet)', 'OpenCV (cv2.imwrite)', 'PIL (detectron2)']
    writers = rows(out, '|'.join(map(re.escape, names)))
    # CLI, profile and PNG-reading tables: a row per writer each
    assert [r[0] for r in writers] == 3 * names
    assert [len(r) for r in writers] == [7] * 3 + [6] * 3 + [4] * 3
    assert all(float(c.rstrip('x')) > 0 for r in writers for c in r[1:])


def test_benchmark_pipeline_tiny(tmp_path):
    # 1024x512: at smaller sizes half-pixel rasterisation differences
    # dominate tiny objects' 28x28 targets
    out = ok(run_tool('tools/analysis_tools/benchmark_pipeline.py',
                      '--num-images', '3', '--width', '1024', '--height',
                      '512', '--repeat', '1', '--work-dir',
                      str(tmp_path))).stdout
    rates = rows(out, r'\([abc]\) [^|]*')
    assert len(rates) == 4 and all(float(r[1]) > 0 for r in rates)
    assert rates[0][3] == '1.0x'
    # the polygons are the instance PNGs' regions pixel for pixel
    assert re.search(r'instanceIds\.png, \d+ instances .*: mean IoU 1\.0000,'
                     r' area-weighted 1\.0000, worst of \d+ >= 1000 px '
                     r'1\.0000', out)
    iou = float(re.search(r'polygons vs bitmaps: mean IoU ([\d.]+)',
                          out).group(1))
    assert iou >= 0.95  # polygons give the bitmap path's targets


def test_benchmark_convert_tiny(tmp_path):
    out = ok(run_tool('tools/analysis_tools/benchmark_convert.py',
                      '--num-frames', '3', '--width', '512', '--height',
                      '256', '--nproc', '1', '2', '--repeat', '1',
                      '--work-dir', str(tmp_path))).stdout
    # --nproc 2 runs 2 workers, or as many as there are cores
    assert [r[:2] for r in rows(out, r'\d+')] == [
        ['1', '1'], ['2', str(min(2, available_cores()))]]
    for label in ('one worker', 'every core'):
        assert re.search(rf'projected from {label} .*: 5000 frames on 16 '
                         r'cores in [\d.]+ min', out)
    # the script exits 1 when --nproc 1 and 2 wrote different JSON
    assert 'identical output for every --nproc: True' in out


def test_benchmark_padding_tiny(tmp_path):
    out = ok(run_tool('tools/analysis_tools/benchmark_padding.py',
                      '--batches', '2', '--batch-size', '2', '--num-images',
                      '2', '--width', '512', '--height', '256', '--workers',
                      '0', '--work-dir', str(tmp_path))).stdout
    per_image, per_batch = rows(out, r'\(a\) [^|]*'), rows(out, r'\(b\) [^|]*')
    assert float(per_image[0][5].rstrip('x')) >= 1  # padding costs
    # one scale per batch: nothing padded
    assert per_batch[0][3:] == ['0.0%', '0.0%', '1.000x']


# fewer RoIs than the fine-tune's 512 sampled / 1000 proposals per image:
# the CPU's time goes to them, not to the rows' logic
FEW_ROIS = ['--cfg-options', 'model.train_cfg.rpn_proposal.max_per_img=64',
            'model.train_cfg.rcnn.sampler.num=32',
            'model.test_cfg.rpn.max_per_img=64',
            'model.test_cfg.rcnn.max_per_img=10']


def test_gpu_check_on_the_cpu_tiny(tmp_path):
    out = ok(run_tool('tools/gpu_check.py', '--device', 'cpu',
                      '--num-images', '2', '--width', '256', '--height',
                      '128', '--batch-sizes', '1', '2', '--warmup', '0',
                      '--steps', '1', '--infer-batch-sizes', '1', '2',
                      '--infer-steps', '1', '--workers', '0', '--work-dir',
                      str(tmp_path), *FEW_ROIS)).stdout
    # the plan comes before any measurement
    assert out.index('plan: 6 training rows of 0 warm-up + 1 measured '
                     'steps (6 images), 6 inference rows of 1 + 1 batches '
                     '(12 images)') < out.index('| images/GPU |')
    grid = rows(out, r'[12] \| fp\d\d|[12] \| bf16')
    train, infer = grid[:6], grid[6:]
    assert [r[:2] for r in train] == [[b, p] for b in '12'
                                      for p in ('fp32', 'fp16', 'bf16')]
    assert [r[:2] for r in infer] == [r[:2] for r in train]
    for row in grid:  # CPU autocast: fp32 and bf16 only
        assert (row[1] == 'fp16') == (row[2:] == [
            'not measured: needs a CUDA GPU'])
    train, infer = ([r for r in t if r[1] != 'fp16'] for t in (train, infer))
    for _, _, img_s, gib, wait, loss, minutes in train:
        assert float(img_s) > 0 and gib == '-'
        assert re.fullmatch(r'\d+%', wait) and 0 < float(loss) < 100
        # the fine-tune config: 4000 iterations of 8 images, at the rate
        # printed to 2 decimals
        low, high = (32000 / 60 / (float(img_s) + d) for d in (5e-3, -5e-3))
        assert low - 1 <= int(minutes.split()[0]) <= high + 1
    for _, _, ms, img_s, gib in infer:
        assert float(ms) > 0 and float(img_s) > 0 and gib == '-'
    fastest = max(float(r[2]) for r in train)
    assert re.search(rf'fastest: [12] images/GPU (fp32|bf16), '
                     rf'{fastest:.2f} img/s', out)
    assert re.search(r'data loader workers to feed [\d.]+ img/s: [1-9]\d* '
                     r'\(this run: 0\)', out)
    # the exit status (0) says every departure is within the default 10%
    checks = re.findall(r'^loss bf16 vs fp32, ([12]) images/GPU: '
                        r'([-+][\d.]+)% \(tolerance 10%\)$', out, re.M)
    assert [c[0] for c in checks] == ['1', '2']
    assert all(abs(float(c[1])) <= 10 for c in checks)


def test_gpu_check_loss_check(monkeypatch):
    monkeypatch.syspath_prepend(f'{REPO}/tools')
    monkeypatch.delitem(sys.modules, 'gpu_check', raising=False)
    from gpu_check import loss_check
    train = {(1, 'fp32'): dict(loss=2.0), (1, 'bf16'): dict(loss=2.09),
             (2, 'fp32'): 'out of GPU memory', (2, 'bf16'): dict(loss=1.0),
             (4, 'fp32'): dict(loss=2.0), (4, 'fp16'): dict(loss=1.8)}
    got = {(b, p): (round(rel, 6), ok)
           for b, p, rel, ok in loss_check(train, 0.05)}
    # 2 images/GPU: no fp32 row to compare with
    assert got == {(1, 'bf16'): (0.045, True), (4, 'fp16'): (-0.1, False)}
    assert [c[3] for c in loss_check({(1, 'fp32'): dict(loss=2.0), (
        1, 'fp16'): dict(loss=float('nan'))}, 0.05)] == [False]


@pytest.mark.parametrize('args', [['--num-images', '0'], ['--steps', '0'],
                                  ['--infer-steps', '0'], ['--workers', '-1'],
                                  ['--batch-sizes', '4', '0']])
def test_gpu_check_refuses_sizes_that_measure_nothing(args):
    res = run_tool('tools/gpu_check.py', *args)
    assert res.returncode == 2
    assert re.fullmatch(rf"gpu_check\.py: error: argument {args[0]}: "
                        rf"'{args[-1]}': give an integer >= [01]",
                        res.stderr.strip().splitlines()[-1])
