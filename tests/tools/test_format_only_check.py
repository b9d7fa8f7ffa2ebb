"""tools/test.py --format-only checks the submission it wrote and zips only
a valid one."""
import glob
import os
import os.path as osp
import shutil

from citymask.evaluation.submission import check_submission, zip_results
from ..conftest import run_tool
from .conftest import CFG, fails


def test_format_only_zips_only_a_valid_submission(mini_data, tmp_path):
    root, data = mini_data
    # the test images plus one not in the annotation file: the server
    # wants a prediction for every image
    local = tmp_path / 'data'
    local.mkdir()
    os.symlink(osp.join(data, 'annotations'), local / 'annotations')
    images = str(local / 'leftImg8bit' / 'test')
    shutil.copytree(osp.join(data, 'leftImg8bit', 'test'), images)
    first = sorted(glob.glob(osp.join(images, '*', '*.png')))[0]
    extra = osp.join(osp.dirname(first),
                     'berlin_000099_000019_leftImg8bit.png')
    shutil.copy(first, extra)
    prefix = str(tmp_path / 'submission')
    line = fails(
        run_tool('tools/test.py', CFG, osp.join(root, 'standin_cs.pth'),
                 '--split', 'test', '--format-only', '--outfile-prefix',
                 prefix, '--work-dir', str(tmp_path / 'w'),
                 '--cfg-options', f'data_root={local}'),
        'not a valid submission, not zipped')
    assert 'no prediction file for test image' in line
    assert 'berlin_000099_000019' in line
    assert f'tools/check_submission.py {prefix} --images' in line
    assert not osp.exists(prefix + '.zip')
    # what it wrote for the annotated images is a valid submission
    os.remove(extra)
    report = check_submission(prefix, images)
    assert report.ok, report.problems
    assert report.pred_files == report.images == 4
    assert check_submission(zip_results(prefix, images), images).ok
