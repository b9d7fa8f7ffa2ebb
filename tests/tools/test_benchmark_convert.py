"""tools/analysis_tools/benchmark_convert.py at a tiny size: its table and
its same-output check (timings are never asserted; docs/benchmarks.md
reports them)."""
import re

from citymask.datasets.cityscapes_converter import available_cores
from ..conftest import run_tool
from .conftest import ok


def test_benchmark_convert_tiny(tmp_path):
    res = ok(run_tool('tools/analysis_tools/benchmark_convert.py',
                      '--num-frames', '3', '--width', '512', '--height',
                      '256', '--nproc', '1', '2', '--repeat', '1',
                      '--work-dir', str(tmp_path)))
    rows = re.findall(r'^ +(\d+) +(\d+) +([\d.]+) +([\d.]+) +([\d.]+)x ',
                      res.stdout, re.M)
    # --nproc 2 runs 2 workers, or as many as there are cores
    assert [r[:2] for r in rows] == [('1', '1'),
                                     ('2', str(min(2, available_cores())))]
    assert all(float(r[2]) > 0 for r in rows)
    for label in ('one worker', 'every core'):
        assert re.search(rf'projected from {label} .*: 5000 frames on 16 '
                         r'cores in [\d.]+ min', res.stdout)
    # the script exits 1 when --nproc 1 and 2 wrote different JSON
    assert 'identical output for every --nproc: True' in res.stdout
