"""citymask.fileio: outputs whole or absent, checked writable before the work
(by every tool: the last test). Disk full: a real 1 MiB tmpfs or patched."""
import errno
import os
import os.path as osp
import stat

import pytest

from citymask import fileio
from citymask.cli import os_error_line
from citymask.errors import CitymaskError
from citymask.fileio import (atomic_dir, atomic_path, check_writable,
                             dump_json_atomic, write_bytes_atomic,
                             write_files_atomic)
from . import fs_fixtures
from .conftest import run_tool
from .tools.conftest import CFG, fails

tiny_fs = fs_fixtures.tiny_fs
read_only_fs = fs_fixtures.read_only_fs

MiB = 2**20


def _leftovers(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize('umask', [0o022, 0o027, 0o002])
def test_atomic_outputs_get_the_mode_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        open(tmp_path / 'plain', 'w').close()  # the reference
        os.mkdir(tmp_path / 'plain_dir')
        write_bytes_atomic(b'x', str(tmp_path / 'atomic'))
        with atomic_dir(str(tmp_path / 'atomic_dir')) as d:
            open(osp.join(d, 'f'), 'w').close()
    finally:
        os.umask(old)

    def mode(name):
        return stat.S_IMODE(os.stat(tmp_path / name).st_mode)
    assert mode('atomic') == mode('plain') == 0o666 & ~umask
    assert mode('atomic_dir') == mode('plain_dir') == 0o777 & ~umask


@pytest.mark.parametrize('error', [ValueError, KeyboardInterrupt])
def test_atomic_path_keeps_the_old_file_on_error(tmp_path, error):
    path = tmp_path / 'out.json'
    path.write_text('old')
    with pytest.raises(error), atomic_path(str(path)) as tmp:
        with open(tmp, 'w') as f:
            f.write('half')
        raise error
    assert path.read_text() == 'old'
    assert _leftovers(tmp_path) == ['out.json']


def test_disk_full_on_a_real_tmpfs(tiny_fs):
    path = tiny_fs / 'big.json'
    with pytest.raises(OSError) as e:
        dump_json_atomic({'a': 'b' * 2 * MiB}, str(path))
    assert e.value.errno == errno.ENOSPC
    assert e.value.filename == str(path)  # the output, not the temp file
    assert e.value.needed_bytes == len('{"a": "' + 'b' * 2 * MiB + '"}')
    assert _leftovers(tiny_fs) == []
    line = os_error_line(e.value)
    assert line.startswith(f'no space left on {path} (2.0 MiB needed, ')
    assert 'free); nothing was written there' in line
    # a folder's files: none of them is left
    with pytest.raises(OSError) as e:
        with atomic_dir(str(tiny_fs / 'results')) as d:
            for i in range(4):
                write_bytes_atomic(b'\0' * 400 * 1024,
                                   osp.join(d, f'{i}.png'))
    assert e.value.errno == errno.ENOSPC
    assert _leftovers(tiny_fs) == []


def test_file_set_is_written_all_or_none(tmp_path, monkeypatch):
    files = {str(tmp_path / f'{s}.json'): s.encode() * 20
             for s in ('train', 'val', 'test')}
    # a simulated full disk: 150 bytes free, the first fits, the second not
    fs_fixtures.fail_writes(monkeypatch, fileio, OSError(
        errno.ENOSPC, os.strerror(errno.ENOSPC)), budget=dict(left=150))
    with pytest.raises(OSError) as e:
        write_files_atomic(files)
    assert e.value.filename == str(tmp_path / 'val.json')
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    write_files_atomic(files)
    assert _leftovers(tmp_path) == ['test.json', 'train.json', 'val.json']


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    out = tmp_path / 'results'
    with atomic_dir(str(out)) as d:
        (open(osp.join(d, 'a.txt'), 'w')).close()
        assert not out.exists()  # nothing visible before the end
    assert _leftovers(out) == ['a.txt']
    # not empty: refused, unless asked to replace it
    with pytest.raises(CitymaskError, match='is not empty .* --overwrite'):
        with atomic_dir(str(out)):
            pass
    with pytest.raises(RuntimeError), atomic_dir(str(out), True) as d:
        open(osp.join(d, 'b.txt'), 'w').close()
        raise RuntimeError('inference failed')
    assert _leftovers(out) == ['a.txt']  # the old results, untouched
    with atomic_dir(str(out), overwrite=True) as d:
        open(osp.join(d, 'b.txt'), 'w').close()
    assert _leftovers(out) == ['b.txt']  # replaced as a whole
    with atomic_dir(str(out) + '/', overwrite=True) as d:  # 'results/'
        open(osp.join(d, 'c.txt'), 'w').close()
    assert _leftovers(out) == ['c.txt']
    # no temporary folders; the record of the output beside it
    assert _leftovers(tmp_path) == ['.citymask-results', 'results']


def test_atomic_dir_written_by_several_processes(tmp_path):
    # ranks agree on the temporary folder; only the owner (rank 0)
    # publishes it, or deletes it when the block fails
    out = tmp_path / 'vis'
    with atomic_dir(str(out), owner=False) as other:
        assert not osp.exists(other)  # non-owners create nothing
    with atomic_dir(str(out), owner=True) as d:
        assert d == other == str(tmp_path / '.vis.partial')
        open(osp.join(d, 'a.png'), 'w').close()
        assert not out.exists()
    assert _leftovers(tmp_path) == ['vis'] and _leftovers(out) == ['a.png']
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(str(tmp_path / 'vis2'), owner=True) as d:
            open(osp.join(d, 'a.png'), 'w').close()
            raise KeyboardInterrupt
    assert _leftovers(tmp_path) == ['vis']


def test_overwrite_replaces_only_a_folder_atomic_dir_wrote(tmp_path):
    data = tmp_path / 'cityscapes'  # the user's: e.g. the dataset root
    (data / 'leftImg8bit').mkdir(parents=True)
    (data / 'notes.txt').write_text('mine')
    with pytest.raises(CitymaskError) as e, atomic_dir(str(data), True):
        pass
    assert str(e.value).startswith(
        f'results folder {data} is not empty (2 entries, e.g. leftImg8bit) '
        'and not an earlier output of this tool (no record of it in '
        f'{tmp_path}/.citymask-cityscapes), so it is never replaced')
    out = tmp_path / 'results'
    with atomic_dir(str(out)) as d:
        open(osp.join(d, 'a.txt'), 'w').close()
    check_writable(str(out), 'dir', overwrite=True)  # as it left it
    (out / 'mine.txt').write_text('added by the user')
    with pytest.raises(CitymaskError, match='never replaced'):
        check_writable(str(out), 'dir', overwrite=True)
    os.rename(out, tmp_path / 'moved')  # a folder of user files given
    os.mkdir(out)  # the name of the earlier output
    (out / 'a.txt').write_text('the user\'s')
    with pytest.raises(CitymaskError, match='never replaced'):
        check_writable(str(out), 'dir', overwrite=True)
    assert (out / 'a.txt').read_text() == 'the user\'s'
    assert sorted(p.name for p in data.iterdir()) == [
        'leftImg8bit', 'notes.txt']


def test_check_writable(tmp_path):
    check_writable(str(tmp_path / 'new' / 'deeper' / 'out.pkl'))
    assert _leftovers(tmp_path) == []  # nothing created, probe removed
    (blocker := tmp_path / 'a_file').write_text('')
    with pytest.raises(CitymaskError,
                       match=f'cannot write --out {blocker}/x.pkl: {blocker}'
                       ' is a file, not a folder'):
        check_writable(str(blocker / 'x.pkl'), what='--out')
    with pytest.raises(CitymaskError, match='it is a folder'):
        check_writable(str(tmp_path))
    with pytest.raises(CitymaskError, match='it is a file, not a folder'):
        check_writable(str(blocker), 'dir')
    with pytest.raises(CitymaskError, match=f'output {blocker} exists; pass '
                       '--force to replace it'):
        check_writable(str(blocker), overwrite=False, flag='--force')


def test_check_writable_read_only(read_only_fs):
    with pytest.raises(CitymaskError, match='Read-only file system'):
        check_writable(str(read_only_fs / 'sub' / 'x.json'), what='--out')
    with pytest.raises(OSError) as e:
        write_bytes_atomic(b'x', str(read_only_fs / 'x'))
    assert e.value.errno == errno.EROFS
    assert os_error_line(e.value) == (
        f'cannot write {read_only_fs}/x: read-only file system; write '
        'elsewhere')


@pytest.mark.parametrize('args,message', [
    (['tools/dataset_converters/cityscapes.py', '{data}', '-o', '{out}'],
     'cannot write output '),
    (['tools/surgery.py', '{standin}', '{out}.pth'],
     'cannot write output checkpoint '),
    (['tools/test.py', CFG, '{standin}', '--work-dir', '{work}', '--out',
      '{out}.pkl', '--cfg-options', 'data_root={data}'],
     'cannot write --out '),
    (['tools/test.py', CFG, '{standin}', '--work-dir', '{work}', '--split',
      'test', '--format-only', '--outfile-prefix', '{out}', '--cfg-options',
      'data_root={data}'], 'cannot write --outfile-prefix '),
    (['tools/analysis_tools/eval_cityscapes.py', '{data}/gtFine/val',
      '{work}', '--out', '{out}.json'], 'cannot write --out '),
    (['tools/analysis_tools/plot_curves.py', '{work}', '--out', '{out}.png'],
     'cannot write --out '),
    (['tools/misc/make_coco_standin.py', CFG, '{out}.pth'],
     'cannot write output checkpoint '),
], ids=['converter', 'surgery', 'test --out', 'test --outfile-prefix',
        'eval_cityscapes', 'plot_curves', 'make_coco_standin'])
def test_an_output_under_a_file_fails_before_the_work(mini_data, tmp_path,
                                                      args, message):
    root, data = mini_data
    standin = osp.join(root, 'standin.pth')
    (blocker := tmp_path / 'a_file').write_text('')
    (tmp_path / 'work').mkdir()
    line = fails(run_tool(*(a.format(data=data, standin=standin,
                                     work=tmp_path / 'work',
                                     out=blocker / 'out') for a in args)),
                 message)
    assert f'{blocker} is a file, not a folder' in line
    assert os.listdir(tmp_path / 'work') == []  # nothing was started
