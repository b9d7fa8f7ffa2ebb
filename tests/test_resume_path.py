"""The checkpoint ``--resume`` continues from (citymask.checkpoint
.latest_checkpoint), on the files mmengine's CheckpointHook leaves."""
import os.path as osp

from citymask.checkpoint import latest_checkpoint


def _touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b'')
    return [str(folder / n) for n in names]


def test_last_checkpoint_names_it(tmp_path):
    _, named = _touch(tmp_path, 'iter_8.pth', 'iter_4.pth')
    # mmengine writes the path and no newline; a newline must not matter
    (tmp_path / 'last_checkpoint').write_text(named + '\n')
    assert latest_checkpoint(str(tmp_path)) == named


def test_newest_by_iteration_number_not_by_name(tmp_path):
    # "iter_9" sorts after "iter_12" as text
    _touch(tmp_path, 'iter_9.pth', 'iter_12.pth', 'iter_100.pth',
           'iter_11.pth')
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_100.pth')


def test_a_broken_pointer_falls_back_to_the_newest_file(tmp_path):
    _touch(tmp_path, 'iter_4.pth', 'iter_8.pth')
    pointer = tmp_path / 'last_checkpoint'
    for content in ('', '   \n', str(tmp_path / 'iter_12.pth')):
        pointer.write_text(content)  # emptied by a kill / file deleted
        assert latest_checkpoint(str(tmp_path)) == \
            str(tmp_path / 'iter_8.pth'), content


def test_nothing_to_resume(tmp_path):
    assert latest_checkpoint(str(tmp_path)) is None
    _touch(tmp_path, 'epoch_3.pth', 'best.pth', 'iter_.pth.tmp')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    assert latest_checkpoint(str(tmp_path)) is None
    assert latest_checkpoint(str(tmp_path / 'missing')) is None
    assert not osp.exists(tmp_path / 'missing')
