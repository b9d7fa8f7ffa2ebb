"""tools/install/build_mmcv.py: the C++ standard patch of the sdist copy,
and the check that the extension holds device code for every requested GPU
architecture."""
import importlib.util
import io
import os
import os.path as osp
import stat
import sys
import tarfile

import pytest

from ..conftest import REPO


@pytest.fixture(scope='module')
def build_mmcv():
    tools = osp.join(REPO, 'tools', 'install')
    spec = importlib.util.spec_from_file_location(
        'build_mmcv', osp.join(tools, 'build_mmcv.py'))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, tools)  # where it finds _common, run as a script
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(tools)
    return module


def test_cxx_standard_patched_into_a_copy(build_mmcv, tmp_path, capsys):
    setup_py = ("extra = ['-std=c++17']\nnvcc = ['-O3', '-std=c++17']\n")
    sdist = tmp_path / 'mmcv-2.1.0.tar.gz'
    with tarfile.open(sdist, 'w:gz') as tar:
        info = tarfile.TarInfo('mmcv-2.1.0/setup.py')
        info.size = len(setup_py)
        tar.addfile(info, io.BytesIO(setup_py.encode()))
    src = build_mmcv.unpack_and_patch(str(sdist), str(tmp_path / 'w'), 20)
    assert src == str(tmp_path / 'w' / 'mmcv-2.1.0')
    assert open(osp.join(src, 'setup.py')).read() == \
        setup_py.replace('c++17', 'c++20')
    assert 'patched 2 x -std=c++17 -> -std=c++20' in capsys.readouterr().out
    # an interrupted build's copy is reused as it is, not unpacked again
    with open(osp.join(src, 'setup.py'), 'a') as f:
        f.write('# kept\n')
    build_mmcv.unpack_and_patch(str(sdist), str(tmp_path / 'w'), 20)
    assert open(osp.join(src, 'setup.py')).read().endswith('# kept\n')
    # torch < 2.14 asks for C++17: the copy stays as PyPI's
    src = build_mmcv.unpack_and_patch(str(sdist), str(tmp_path / 'v'), 17)
    assert open(osp.join(src, 'setup.py')).read() == setup_py


def _fake_cuobjdump(path, *archs):
    """A cuobjdump that lists one cubin per arch, as the real one does for
    mmcv's extension (``ELF file 1: _ext....1.sm_90.cubin``)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    lines = ''.join(f'echo "ELF file    {i}: _ext.cpython-311-x86_64-'
                    f'linux-gnu.{i}.sm_{a}.cubin"\n'
                    for i, a in enumerate(archs, 1))
    with open(path, 'w') as f:
        f.write(f'#!/bin/sh\ntest "$1" = --list-elf || exit 9\n{lines}')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_tools(tmp_path, monkeypatch):
    """A toolkit without cuobjdump, none on PATH, no triton."""
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, 'find_spec',
        lambda name, *a: None if name == 'triton' else real(name, *a))
    return str(tmp_path / 'cuda')


def test_every_requested_arch_has_device_code(build_mmcv, no_tools, capsys):
    _fake_cuobjdump(osp.join(no_tools, 'bin', 'cuobjdump'), '80', '90')
    build_mmcv.check_device_code(no_tools, '8.0;9.0+PTX', path='ext.so')
    assert 'device code in ext.so: sm_80, sm_90' in capsys.readouterr().out
    with pytest.raises(build_mmcv.InstallError) as e:
        build_mmcv.check_device_code(no_tools, '8.0;9.0;10.0', path='ext.so')
    assert str(e.value) == ('ext.so has no device code for sm_100 '
                            '(found: sm_80, sm_90)')


def test_cuobjdump_from_path_then_triton(build_mmcv, no_tools, tmp_path,
                                         monkeypatch, capsys):
    assert build_mmcv.find_cuobjdump(no_tools) is None
    build_mmcv.check_device_code(no_tools, '9.0', path='ext.so')
    assert 'cuobjdump not found' in capsys.readouterr().out
    # torch's CUDA wheels bring triton, which ships a cuobjdump
    triton = tmp_path / 'site' / 'triton'
    (triton / '__init__.py').parent.mkdir(parents=True)
    (triton / '__init__.py').write_text('')
    bundled = _fake_cuobjdump(
        str(triton / 'backends' / 'nvidia' / 'bin' / 'cuobjdump'), '90')
    monkeypatch.undo()
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    # a triton imported earlier in the session (torch's CUDA builds) would
    # be found in sys.modules before the path is searched
    for name in [m for m in sys.modules if m.split('.')[0] == 'triton']:
        monkeypatch.delitem(sys.modules, name)
    assert build_mmcv.find_cuobjdump(no_tools) == bundled
    # one on PATH comes first, the toolkit's before both
    on_path = _fake_cuobjdump(str(tmp_path / 'bin' / 'cuobjdump'), '90')
    monkeypatch.setenv('PATH', str(tmp_path / 'bin'))
    assert build_mmcv.find_cuobjdump(no_tools) == on_path
    own = _fake_cuobjdump(osp.join(no_tools, 'bin', 'cuobjdump'), '90')
    assert build_mmcv.find_cuobjdump(no_tools) == own
