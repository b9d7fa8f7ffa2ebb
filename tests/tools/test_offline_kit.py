"""Offline install kit (tools/install/): a kit written for this machine
installs citymask into a fresh venv with ``--no-index``; bad input gives one
``error:`` line. mmcv is not built here: the kit's target already has it, or
the kit carries a wheel."""
import hashlib
import json
import os
import os.path as osp
import re
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

from tests.conftest import REPO

TOOLS = osp.join(REPO, 'tools', 'install')
MAKE_KIT = osp.join(TOOLS, 'make_kit.py')
INSTALL = osp.join(TOOLS, 'offline_install.py')
BUILD_MMCV = osp.join(TOOLS, 'build_mmcv.py')
# What the kit's target already has (with their dependencies): the big
# binary packages, and mmcv as built by `make setup`.
PRESENT_ROOTS = ('torch', 'numpy', 'opencv-python', 'scipy', 'matplotlib')


def run(*cmd, **kwargs):
    return subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, **kwargs)


def closure(names):
    """The installed distributions ``names`` need, with their versions."""
    out, todo = {}, list(names)
    while todo:
        dist = metadata.distribution(todo.pop())
        name = re.sub(r'[-_.]+', '-', dist.metadata['Name']).lower()
        if name in out:
            continue
        out[name] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker and not req.marker.evaluate({'extra': ''}):
                continue
            todo.append(req.name)
    return out


def link_distributions(dists, folder):
    """Symlink each distribution's top-level files into ``folder``."""
    os.makedirs(folder)
    for dist in dists.values():
        base = dist.locate_file('')
        for top in {f.parts[0] for f in dist.files if f.parts[0] != '..'}:
            dst = osp.join(folder, top)
            if not osp.lexists(dst) and osp.exists(osp.join(base, top)):
                os.symlink(osp.join(base, top), dst)


def make_kit():
    sys.path.insert(0, TOOLS)
    try:
        import make_kit
    finally:
        sys.path.remove(TOOLS)
    return make_kit


def test_platform_tags_match_packaging():
    """A manylinux_2_N target accepts the tags packaging lists for this
    machine's glibc (the same rules pip installs by)."""
    from packaging.tags import platform_tags
    ours = set(make_kit().platforms(make_kit().this_platform()))
    theirs = set(platform_tags()) - {'linux_x86_64', 'linux_aarch64'}
    assert ours == theirs


def test_kit_installs_citymask_offline(tmp_path):
    """Kit for this machine's Python and platform, with the big packages and
    mmcv already on the target: it leaves those out, and installs every other
    dependency of citymask into a fresh venv with --no-index."""
    present = closure(PRESENT_ROOTS)
    present['mmcv'] = metadata.distribution('mmcv')
    present['pip'] = metadata.distribution('pip')
    # The target: a plain venv that sees only the present packages.
    base = tmp_path / 'base'
    assert run(sys.executable, '-m', 'venv', '--without-pip',
               base).returncode == 0
    link_distributions(present, tmp_path / 'present')
    site = run(base / 'bin' / 'python', '-c',
               'import sysconfig; print(sysconfig.get_paths()["purelib"])'
               ).stdout.strip()
    with open(osp.join(site, 'present.pth'), 'w') as f:
        f.write(str(tmp_path / 'present') + '\n')

    kit = tmp_path / 'kit'
    pins = [f'{n}=={d.version}' for n, d in present.items()]
    proc = run(sys.executable, MAKE_KIT, kit, '--no-tests', '--present',
               *pins, 'setuptools==81.0.0')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((kit / 'kit.json').read_text())
    wheels = {w.split('-')[0].lower().replace('_', '-')
              for w in os.listdir(kit / 'wheels')}
    assert not wheels & (set(present) - {'setuptools'}), wheels & set(present)
    assert {'mmdet', 'mmengine', 'cityscapesscripts', 'pycocotools',
            'shapely', 'pyspng', 'zlib-ng'} <= wheels
    # setuptools 81 has no pkg_resources: the kit brings one that has
    assert 'setuptools' in wheels and 'setuptools' not in manifest['present']
    # the target has mmcv: no sdist to build there
    assert manifest['mmcv'] is None
    assert not [f for f in manifest['files'] if 'mmcv' in f]

    venv = tmp_path / 'venv'
    # no index, no find-links, no pip configuration: only the kit
    env = dict(os.environ, PIP_NO_INDEX='1', PIP_CONFIG_FILE=os.devnull)
    proc = run(sys.executable, INSTALL, kit, '--venv', venv,
               '--python', base / 'bin' / 'python', env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'smoke test: mmcv 2.1.0 nms on CPU' in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith(
        'offline_install: done: '), proc.stdout
    assert 'already installed' in proc.stdout  # mmcv: not rebuilt
    # mmdet comes from the venv (the kit), torch from the target
    proc = run(venv / 'bin' / 'python', '-c',
               'import mmdet, torch; print(mmdet.__file__); '
               'print(torch.__file__)', cwd=tmp_path)
    mmdet_file, torch_file = proc.stdout.split()
    assert mmdet_file.startswith(str(venv)), proc.stdout
    assert torch_file.startswith(str(tmp_path / 'present')), proc.stdout
    assert (venv / '.citymask-setup').exists()


def test_gpu_machine_kit_fits_64_mib(tmp_path):
    """The kit for the H100 machine listed in tools/install/targets/
    (Python 3.12, torch 2.11.0+cu130): binary wheels for cp312, none of
    what it has, the mmcv sdist, setuptools < 81, all in 64 MiB."""
    kit = tmp_path / 'kit'
    target = osp.join(TOOLS, 'targets', 'h100-py312-cu130.txt')
    proc = run(sys.executable, MAKE_KIT, kit, '--python-version', '3.12',
               '--platform', 'manylinux_2_28_x86_64', '--present-from',
               target, '--max-mib', 64)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((kit / 'kit.json').read_text())
    sizes = [f['bytes'] for f in manifest['files'].values()]
    assert sum(sizes) == manifest['total_bytes'] < 64 * 2**20
    assert sum(osp.getsize(kit / f) for f in manifest['files']) == \
        manifest['total_bytes']
    wheels = os.listdir(kit / 'wheels')
    names = {w.split('-')[0].lower().replace('_', '-') for w in wheels}
    with open(target) as f:
        present = {re.split('[=#]', line)[0].strip() for line in f
                   if line.strip() and not line.startswith('#')}
    assert not names & (present - {'setuptools'})
    assert not names & {'opencv-python', 'nvidia-cudnn-cu13', 'triton'}
    assert {'mmdet', 'mmengine', 'cityscapesscripts', 'pycocotools',
            'shapely', 'pyspng', 'zlib-ng', 'setuptools', 'ninja'} <= names
    setuptools = next(w for w in wheels if w.startswith('setuptools-'))
    assert int(setuptools.split('-')[1].split('.')[0]) < 81
    for wheel in wheels:  # pure Python, or built for CPython 3.12 / abi3
        tag = wheel[:-4].split('-')[-3]
        assert tag in ('py3', 'py2.py3', 'cp312') or \
            wheel[:-4].split('-')[-2] == 'abi3', wheel
    assert manifest['mmcv'] == 'mmcv-2.1.0.tar.gz'
    assert (kit / 'mmcv-2.1.0.tar.gz').exists()


def test_kit_carries_a_prebuilt_mmcv_wheel(tmp_path):
    """``--mmcv-wheel``: the wheel goes into the kit and its own
    dependencies take part in the resolution (addict, the one package the
    target lacks)."""
    wheel = make_kit().write_stub(str(tmp_path), 'mmcv', '2.1.0',
                                  ['addict', 'mmengine>=0.3.0'])
    present = [f'{d.metadata["Name"]}=={d.version}'
               for d in metadata.distributions()
               if d.metadata['Name'].lower() not in ('mmcv', 'addict')]
    kit = tmp_path / 'kit'
    proc = run(sys.executable, MAKE_KIT, kit, '--present', *present,
               '--mmcv-wheel', wheel)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((kit / 'kit.json').read_text())
    assert manifest['mmcv'] == osp.basename(wheel)
    assert manifest['files'][osp.basename(wheel)]['sha256'] == \
        hashlib.sha256(open(wheel, 'rb').read()).hexdigest()
    wheels = {w.split('-')[0].lower() for w in os.listdir(kit / 'wheels')}
    assert wheels == {'addict'}, wheels


def test_bad_input_one_line_errors(tmp_path):
    # a version range of citymask's that "any version" may not meet
    proc = run(sys.executable, MAKE_KIT, tmp_path / 'kit', '--present',
               'setuptools')
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'error: give the version of present setuptools (NAME==VERSION): '
        'citymask needs setuptools>=77.0.3,<81']
    assert not (tmp_path / 'kit').exists()

    proc = run(sys.executable, INSTALL, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f'error: {tmp_path} is not a kit')

    kit = tmp_path / 'kit'
    kit.mkdir()
    (kit / 'kit.json').write_text(json.dumps(
        dict(python_version='3.99', present={}, mmcv='x.tar.gz')))
    proc = run(sys.executable, INSTALL, kit, '--venv', tmp_path / 'venv')
    assert proc.returncode == 2
    assert 'but the kit is for Python 3.99' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    # CUDA ops: a CPU build of torch, or nvcc of another CUDA major
    import torch
    if torch.version.cuda is None:
        proc = run(sys.executable, BUILD_MMCV, '--cuda', 'yes')
        assert proc.stderr.strip().splitlines() == [
            f'error: torch {torch.__version__} is a CPU build: install a '
            "CUDA build of torch for mmcv's CUDA ops (or set CUDA=no)"]
    else:
        major = int(torch.version.cuda.split('.')[0])
        nvcc = tmp_path / 'cuda' / 'bin' / 'nvcc'
        nvcc.parent.mkdir(parents=True)
        nvcc.write_text('#!/bin/sh\necho "Cuda compilation tools, release '
                        f'{major - 1}.8, V{major - 1}.8.89"\n')
        nvcc.chmod(0o755)
        proc = run(sys.executable, BUILD_MMCV, '--cuda', 'yes', env=dict(
            os.environ, CUDA_HOME=str(tmp_path / 'cuda')))
        assert proc.stderr.strip().splitlines() == [
            f'error: nvcc in {tmp_path}/cuda is CUDA {major - 1}.8 but torch '
            f'{torch.__version__} was built with CUDA {torch.version.cuda}: '
            f'the majors must match; put a CUDA {major}.x nvcc first on PATH'
            ' (or set CUDA_HOME), or install a torch built for CUDA '
            f'{major - 1}']
    assert proc.returncode == 2
