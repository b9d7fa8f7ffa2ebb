"""tools/install/: build_mmcv.py's checks (no real build: 12+ min); kits,
one of which installs citymask into a fresh venv with ``--no-index``."""
import hashlib
import importlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canonical

from ..conftest import REPO
from .conftest import error, fails, ok

TOOLS = osp.join(REPO, 'tools', 'install')
MAKE_KIT, INSTALL, BUILD_MMCV = (osp.join(TOOLS, n + '.py') for n in (
    'make_kit', 'offline_install', 'build_mmcv'))


def py(*args, python=sys.executable, **kwargs):
    return subprocess.run(list(map(str, [python, *args])),
                          capture_output=True, text=True, **kwargs)


def tool(name):
    """A tools/install script as a module (importing _common as scripts do)."""
    sys.path.insert(0, TOOLS)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(TOOLS)


def make_kit(kit, *args):
    """make_kit.py's kit in ``kit``: its manifest and wheels' names."""
    ok(py(MAKE_KIT, kit, *args))
    return json.loads((kit / 'kit.json').read_text()), {
        canonical(w.split('-')[0]) for w in os.listdir(kit / 'wheels')}


def write(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Path(path).write_text(text)
    os.chmod(path, 0o755)
    return str(path)


def test_cxx_standard_patched_into_a_copy(tmp_path, capsys):
    setup_py = "extra = ['-std=c++17']\nnvcc = ['-O3', '-std=c++17']\n"
    write(tmp_path / 'mmcv-2.1.0' / 'setup.py', setup_py)
    sdist = shutil.make_archive(str(tmp_path / 'mmcv-2.1.0'), 'gztar',
                                tmp_path, 'mmcv-2.1.0')
    patch = tool('build_mmcv').unpack_and_patch
    src = Path(patch(sdist, str(tmp_path / 'w'), 20), 'setup.py')
    assert src.read_text() == setup_py.replace('c++17', 'c++20')
    assert 'patched 2 x -std=c++17 -> -std=c++20' in capsys.readouterr().out
    # an interrupted build's copy is reused as it is, not unpacked again
    src.write_text(src.read_text() + '# kept\n')
    patch(sdist, str(tmp_path / 'w'), 20)
    assert src.read_text().endswith('# kept\n')
    # torch < 2.14 asks for C++17: the copy stays as PyPI's
    assert Path(patch(sdist, str(tmp_path / 'v'), 17),
                'setup.py').read_text() == setup_py


def fake_cuobjdump(path, *archs):
    """A cuobjdump listing one cubin per arch, as the real one does."""
    return write(path, '#!/bin/sh\ntest "$1" = --list-elf || exit 9\n' +
                 ''.join(f'echo "ELF file    {i}: _ext.cpython-311-x86_64-'
                         f'linux-gnu.{i}.sm_{a}.cubin"\n'
                         for i, a in enumerate(archs, 1)))


def test_device_code_by_the_first_cuobjdump(tmp_path, monkeypatch, capsys):
    """Each asked arch needs device code: toolkit's, PATH's, triton's tool."""
    build_mmcv = tool('build_mmcv')

    def check(archs='9.0'):
        build_mmcv.check_device_code(str(tmp_path / 'cuda'), archs, 'ext.so')
        return capsys.readouterr().out

    monkeypatch.setenv('PATH', str(tmp_path / 'bin'))
    real = importlib.util.find_spec
    with monkeypatch.context() as m:
        m.setattr(importlib.util, 'find_spec', lambda name, *a: None
                  if name == 'triton' else real(name, *a))
        assert 'cuobjdump not found: device code not checked' in check()
    write(tmp_path / 'site' / 'triton' / '__init__.py', '')
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    # a triton imported earlier (torch's CUDA builds) would be found first
    for name in [m for m in sys.modules if m.split('.')[0] == 'triton']:
        monkeypatch.delitem(sys.modules, name)
    for exe in ('site/triton/backends/nvidia/bin', 'bin', 'cuda/bin'):
        exe = fake_cuobjdump(tmp_path / exe / 'cuobjdump', '80', '90')
        assert f'device code in ext.so ({exe}): sm_80, sm_90' in check()
    assert error(check, '8.0;9.0;10.0', exc=build_mmcv.InstallError) == (
        'ext.so has no device code for sm_100 (found: sm_80, sm_90)')


def test_build_mmcv_checks_before_building(tmp_path):
    """The installed mmcv is kept (empty cache, no sdist: nothing to build);
    CUDA ops refused for a CPU torch or an nvcc of another CUDA major."""
    import torch
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    proc = ok(py(BUILD_MMCV, '--cuda', 'no', '--sdist', tmp_path / 'no.tgz',
                 env=env))
    assert 'mmcv 2.1.0 with CPU ops already installed' in proc.stdout
    if torch.version.cuda is None:
        fails(py(BUILD_MMCV, '--cuda', 'yes', env=env),
              f'error: torch {torch.__version__} is a CPU build: install a '
              "CUDA build of torch for mmcv's CUDA ops (or set CUDA=no)")
        return
    major = int(torch.version.cuda.split('.')[0])
    write(tmp_path / 'cuda' / 'bin' / 'nvcc', '#!/bin/sh\necho "Cuda '
          f'compilation tools, release {major - 1}.8, V{major - 1}.8.89"\n')
    env['CUDA_HOME'] = str(tmp_path / 'cuda')
    fails(py(BUILD_MMCV, '--cuda', 'yes', env=env),
          f'error: nvcc in {tmp_path}/cuda is CUDA {major - 1}.8 but torch '
          f'{torch.__version__} was built with CUDA {torch.version.cuda}: '
          f'the majors must match; put a CUDA {major}.x nvcc first on PATH '
          f'(or set CUDA_HOME), or install a torch built for CUDA {major - 1}')


def test_platform_tags_match_packaging():
    """A manylinux_2_N target accepts the tags packaging (and pip) allow."""
    from packaging.tags import platform_tags
    ours = tool('make_kit').platforms(
        next(t for t in platform_tags() if t.startswith('manylinux_')))
    assert set(ours) == set(platform_tags())


def closure(names):
    """The installed distributions ``names`` need, by canonical name."""
    out, todo = {}, list(names)
    while todo:
        dist = metadata.distribution(todo.pop())
        if (name := canonical(dist.metadata['Name'])) not in out:
            out[name] = dist
            todo += [r.name for r in map(Requirement, dist.requires or [])
                     if not r.marker or r.marker.evaluate({'extra': ''})]
    return out


def test_kit_installs_citymask_offline(tmp_path):
    """The kit has what the target lacks; it installs with --no-index."""
    # the big binary packages (and their dependencies) and mmcv
    present = closure(('torch', 'numpy', 'opencv-python', 'scipy',
                       'matplotlib'))
    present.update((n, metadata.distribution(n)) for n in ('mmcv', 'pip'))
    # The target: a plain venv that sees only the present packages.
    base, folder = tmp_path / 'base', tmp_path / 'present'
    ok(py('-m', 'venv', '--without-pip', base))
    folder.mkdir()
    for dist in present.values():
        for top in {f.parts[0] for f in dist.files if f.parts[0] != '..'}:
            if not (folder / top).exists() and dist.locate_file(top).exists():
                (folder / top).symlink_to(dist.locate_file(top))
    site = next(base.glob('lib/python3.*/site-packages'))
    (site / 'present.pth').write_text(f'{folder}\n')

    kit = tmp_path / 'kit'
    manifest, wheels = make_kit(kit, '--no-tests', '--present', *[  # 81
        f'{n}=={d.version}' for n, d in present.items()], 'setuptools==81.0')
    assert not wheels & (set(present) - {'setuptools'}), wheels & set(present)
    assert {'mmdet', 'mmengine', 'cityscapesscripts', 'pycocotools',
            'shapely', 'pyspng', 'zlib-ng'} <= wheels
    # setuptools 81 has no pkg_resources: the kit brings one that has
    assert 'setuptools' in wheels and 'setuptools' not in manifest['present']
    # the target has mmcv: no sdist to build there
    assert manifest['mmcv'] is None and 'mmcv' not in str(manifest['files'])

    venv = tmp_path / 'venv'
    # no index, no find-links, no pip configuration: only the kit
    env = dict(os.environ, PIP_NO_INDEX='1', PIP_CONFIG_FILE=os.devnull)
    proc = ok(py(INSTALL, kit, '--venv', venv, '--python',
                 base / 'bin' / 'python', env=env))
    assert 'smoke test: mmcv 2.1.0 nms on CPU' in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith(
        'offline_install: done: '), proc.stdout
    # mmdet comes from the venv (the kit), torch and mmcv from the target
    proc = py('-c', 'import mmdet, mmcv, torch; print(mmdet.__file__, '
              'mmcv.__file__, torch.__file__)', python=venv / 'bin' / 'python',
              cwd=tmp_path)
    assert [f.startswith(str(d)) for f, d in zip(proc.stdout.split(), (
        venv, folder, folder))] == [True] * 3, proc.stdout
    assert (venv / '.citymask-setup').exists()


def test_gpu_machine_kit_fits_64_mib(tmp_path):
    """The H100 target's kit: cp312 wheels, mmcv sdist, setuptools < 81."""
    kit = tmp_path / 'kit'
    target = osp.join(TOOLS, 'targets', 'h100-py312-cu130.txt')
    manifest, names = make_kit(
        kit, '--python-version', '3.12', '--platform',
        'manylinux_2_28_x86_64', '--present-from', target, '--max-mib', 64)
    assert sum(f['bytes'] for f in manifest['files'].values()) == sum(
        osp.getsize(kit / f) for f in manifest['files']) == manifest[
            'total_bytes'] < 64 * 2**20
    present = {re.split('[=#]', line)[0].strip() for line in Path(
        target).read_text().splitlines() if line.strip() and line[0] != '#'}
    assert not names & (present - {'setuptools'})
    assert not names & {'opencv-python', 'nvidia-cudnn-cu13', 'triton'}
    assert {'mmdet', 'mmengine', 'cityscapesscripts', 'pycocotools',
            'shapely', 'pyspng', 'zlib-ng', 'setuptools', 'ninja'} <= names
    for wheel in os.listdir(kit / 'wheels'):
        *_, python, abi, _ = wheel[:-4].split('-')
        assert python in ('py3', 'py2.py3', 'cp312') or abi == 'abi3', wheel
        if wheel.startswith('setuptools-'):
            assert int(wheel.split('-')[1].split('.')[0]) < 81
    assert manifest['mmcv'] == 'mmcv-2.1.0.tar.gz' in manifest['files']


def test_kit_carries_a_prebuilt_mmcv_wheel(tmp_path):
    """``--mmcv-wheel``: in the kit with what it needs (addict); no sdist."""
    wheel = tool('make_kit').write_stub(str(tmp_path), 'mmcv', '2.1.0',
                                        ['addict', 'mmengine>=0.3.0'])
    present = [f'{d.metadata["Name"]}=={d.version}'
               for d in metadata.distributions()
               if d.metadata['Name'].lower() not in ('mmcv', 'addict')]
    manifest, names = make_kit(tmp_path / 'kit', '--present', *present,
                               '--mmcv-wheel', wheel)
    assert manifest['mmcv'] is None  # no sdist
    assert manifest['files']['wheels/' + osp.basename(wheel)]['sha256'] == \
        hashlib.sha256(open(wheel, 'rb').read()).hexdigest()
    assert names == {'addict', 'mmcv'}


def test_bad_input_one_line_errors(tmp_path):
    # a version range of citymask's that "any version" may not meet
    fails(py(MAKE_KIT, tmp_path / 'kit', '--present', 'setuptools'),
          'error: give the version of present setuptools (NAME==VERSION): '
          'citymask needs setuptools>=77.0.3,<81')
    assert not (tmp_path / 'kit').exists()
    fails(py(INSTALL, tmp_path), f'error: {tmp_path} is not a kit')
    write(tmp_path / 'kit' / 'kit.json', json.dumps(
        dict(python_version='3.99', present={}, mmcv='x.tar.gz')))
    fails(py(INSTALL, tmp_path / 'kit', '--venv', tmp_path / 'venv'),
          'but the kit is for Python 3.99')
