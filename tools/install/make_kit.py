#!/usr/bin/env python3
"""Write an offline install kit: the wheels a target machine lacks.

Run where a package index is reachable; install the kit on the target
with offline_install.py::

    python tools/install/make_kit.py KIT --python-version 3.12 \\
        --platform manylinux_2_28_x86_64 --present-from target-freeze.txt

The kit holds the wheels citymask's requirements/*.txt need on that target
but the packages present there (its ``pip freeze``), the mmcv sdist or
``--mmcv-wheel``, and kit.json (target, files, sha256). pip's resolver
picks them, each present package stood in for by an empty wheel of its
version; one citymask cannot use (e.g. setuptools 81) goes in anyway.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

from _common import MMCV_VERSION, InstallError, cli, log, mmcv_sdist, sha256

try:
    from packaging.requirements import Requirement
except ImportError:  # pip vendors it
    from pip._vendor.packaging.requirements import Requirement

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Local version label of the stand-in wheels: no index has these versions.
STUB_LABEL = 'present'
# The stand-in version of a present package named without a version: above
# any lower bound, so pip keeps the newest releases of what depends on it.
ANY_VERSION = '9999'
# requirements/runtime.txt of PyPI's mmcv-2.1.0.tar.gz (checked by sha256)
MMCV_SDIST_REQUIRES = ['addict', 'mmengine>=0.3.0', 'numpy', 'packaging',
                       'Pillow', 'pyyaml', "regex;sys_platform=='win32'",
                       'yapf']
# pip distributions that all install the same cv2 module
OPENCV_FLAVOURS = ('opencv-python', 'opencv-python-headless',
                   'opencv-contrib-python', 'opencv-contrib-python-headless')


def canonical(name):
    """PEP 503 normalized project name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def parse_present(items):
    """['torch==2.11.0+cu130', 'scipy'] -> {'torch': '2.11.0+cu130',
    'scipy': None}; pip freeze lines (``name==ver``, ``name @ url``)."""
    present = {}
    for item in items:
        item = item.split('#', 1)[0].strip()
        m = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*(\S+)|@.*)?',
                         item)
        if item and not item.startswith('-') and not m:
            raise InstallError(f'cannot read present package {item!r}: use '
                               'NAME==VERSION (pip freeze format) or NAME')
        if m:
            present[canonical(m.group(1))] = m.group(2)
    return present


def conflicts(present, reqs):
    """Present packages whose version a requirement refuses; one named
    without a version must meet the range as ANY_VERSION."""
    bad = {}
    for line in reqs:
        req = Requirement(line)
        name = canonical(req.name)
        version = present.get(name)
        if name in present and version is None and \
                not req.specifier.contains(ANY_VERSION):
            raise InstallError(f'give the version of present {name} '
                               f'(NAME==VERSION): citymask needs {line}')
        if version and not req.specifier.contains(version, True):
            bad[name] = f'{version} (citymask needs {line})'
    return bad


def write_stub(folder, name, version, requires=()):
    """An empty wheel ``name==version`` that depends on ``requires`` (only
    pip's resolver reads it: no RECORD)."""
    dist = re.sub(r'[-.]+', '_', name)
    path = osp.join(folder, f'{dist}-{version}-py3-none-any.whl')
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr(f'{dist}-{version}.dist-info/METADATA', ''.join(
            [f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'] +
            [f'Requires-Dist: {r}\n' for r in requires]))
        z.writestr(f'{dist}-{version}.dist-info/WHEEL', 'Wheel-Version: 1.0'
                   '\nRoot-Is-Purelib: true\nTag: py3-none-any\n')
    return path


def platforms(tag):
    """Every platform tag a ``manylinux_2_N_ARCH`` target accepts: pip's
    ``--platform`` takes tags literally, so manylinux_2_5 ... _2_N and the
    legacy aliases (manylinux2014...) are all listed."""
    m = re.fullmatch(r'manylinux_(\d+)_(\d+)_(\w+)', tag)
    if not m:
        return [tag]
    major, minor, arch = int(m.group(1)), int(m.group(2)), m.group(3)
    tags = [f'manylinux_{major}_{n}_{arch}' for n in range(minor, 4, -1)]
    legacy = {17: 'manylinux2014', 12: 'manylinux2010', 5: 'manylinux1'}
    return tags + [f'{alias}_{arch}' for glibc, alias in legacy.items()
                   if major == 2 and glibc <= minor]


def this_platform():
    libc, version = platform.libc_ver()
    if libc != 'glibc':
        raise InstallError('cannot tell this machine\'s glibc: give '
                           '--platform (e.g. manylinux_2_28_x86_64)')
    major, minor = version.split('.')[:2]
    return f'manylinux_{major}_{minor}_{platform.machine()}'


def mmcv_requires(path):
    """mmcv's dependencies: a wheel's Requires-Dist, or those of PyPI's
    sdist (its requirements/runtime.txt; its setup.py adds OpenCV only when
    no cv2 is importable)."""
    if not path.endswith('.whl'):
        return MMCV_SDIST_REQUIRES
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist()
                    if n.endswith('.dist-info/METADATA'))
        return re.findall(r'^Requires-Dist: (.+)$', z.read(meta).decode(),
                          re.M)


def requirements(no_tests):
    """citymask's requirement lines, mmcv pinned to the version it needs."""
    reqs = []
    for name in ['build.txt', 'runtime.txt', 'mminstall.txt'] + \
            ([] if no_tests else ['tests.txt']):
        with open(osp.join(REPO, 'requirements', name)) as f:
            reqs += [line.split('#', 1)[0].strip() for line in f]
    return [r for r in reqs if r and not r.startswith('-') and
            canonical(Requirement(r).name) != 'mmcv'] + \
        [f'mmcv=={MMCV_VERSION}']


def make_kit(args):
    out = args.out
    if osp.exists(out) and os.listdir(out):
        raise InstallError(f'{out} exists and is not empty: pick another '
                           'folder or remove it')
    python_version = args.python_version or \
        f'{sys.version_info.major}.{sys.version_info.minor}'
    if not re.fullmatch(r'3\.\d+', python_version):
        raise InstallError(f'bad --python-version {python_version!r}: use 3.N')
    plat = args.platform or this_platform()
    present = parse_present(args.present or [])
    for path in args.present_from or []:
        if not osp.isfile(path):
            raise InstallError(f'no file {path} (--present-from)')
        with open(path) as f:
            present.update(parse_present(f.read().splitlines()))
    if args.mmcv_wheel and not osp.isfile(args.mmcv_wheel):
        raise InstallError(f'no file {args.mmcv_wheel} (--mmcv-wheel)')
    if args.mmcv_wheel:  # it replaces a present mmcv
        present.pop('mmcv', None)
    reqs = requirements(args.no_tests)
    opencv = [n for n in OPENCV_FLAVOURS if n in present]
    if opencv:
        # citymask asks for opencv-python; any present flavour gives cv2
        for name in OPENCV_FLAVOURS:
            present.setdefault(name, present[opencv[0]])
    for name, why in conflicts(present, reqs).items():
        log(f'present {name} {why}: put in the kit anyway')
        present.pop(name)

    part = out.rstrip('/') + '.part'
    shutil.rmtree(part, ignore_errors=True)
    wheels = osp.join(part, 'wheels')
    os.makedirs(wheels)
    # mmcv is built on the target from the sdist (or comes as the given
    # wheel): a stand-in with mmcv's own dependencies takes part in the
    # resolution. A target that has mmcv already needs neither.
    mmcv_file = None if 'mmcv' in present else \
        shutil.copy(args.mmcv_wheel or mmcv_sdist(), part)
    with tempfile.TemporaryDirectory(prefix='make_kit_') as stubs:
        constraints = []
        for name, version in present.items():
            version = version or ANY_VERSION  # plus the local label:
            version += f'{"." if "+" in version else "+"}{STUB_LABEL}'
            write_stub(stubs, name, version)
            constraints.append(f'{name}=={version}')
        if mmcv_file:
            write_stub(stubs, 'mmcv', f'{MMCV_VERSION}+kit',
                       mmcv_requires(mmcv_file))
            constraints.append(f'mmcv=={MMCV_VERSION}+kit')
        with open(osp.join(stubs, 'constraints.txt'), 'w') as f:
            f.write('\n'.join(constraints) + '\n')
        cmd = [sys.executable, '-m', 'pip', 'download', '-q', '--only-binary',
               ':all:', '--implementation', 'cp', '--python-version',
               python_version, '-d', wheels, '--find-links', stubs,
               '-c', osp.join(stubs, 'constraints.txt')] + reqs
        for tag in platforms(plat):
            cmd += ['--platform', tag]
        log(f'resolving for Python {python_version}, {plat}, '
            f'{len(present)} packages present')
        if subprocess.run(cmd).returncode != 0:
            shutil.rmtree(part)
            raise InstallError(
                'pip could not find wheels for every requirement for that '
                'target (its message is above): name what the target '
                'already has with --present, or another --platform')
        # drop the stand-ins pip copied next to the real wheels
        for name in os.listdir(stubs):
            if osp.exists(osp.join(wheels, name)):
                os.remove(osp.join(wheels, name))

    files = {osp.relpath(p, part): dict(bytes=osp.getsize(p), sha256=sha256(p))
             for p in sorted(glob.glob(osp.join(part, '**', '*'),
                                       recursive=True)) if osp.isfile(p)}
    total = sum(f['bytes'] for f in files.values())
    if args.max_mib and total > args.max_mib * 2**20:
        shutil.rmtree(part)
        biggest = max(files, key=lambda n: files[n]['bytes'])
        raise InstallError(
            f'the kit would take {total / 2**20:.1f} MiB, over --max-mib '
            f'{args.max_mib} (biggest: {osp.basename(biggest)}): name what '
            'the target has with --present')
    manifest = dict(
        python_version=python_version, platform=plat,
        present={n: v for n, v in sorted(present.items())
                 if n not in OPENCV_FLAVOURS or n in opencv},
        mmcv=mmcv_file and osp.basename(mmcv_file), requirements=reqs,
        files=files, total_bytes=total)
    with open(osp.join(part, 'kit.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    shutil.rmtree(out, ignore_errors=True)
    os.replace(part, out)
    log(f'wrote {out}: {len(files)} files, {total / 2**20:.1f} MiB')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out', help='kit folder to write (new or empty)')
    p.add_argument('--python-version', help='target Python, e.g. 3.12 '
                   '(default: this one)')
    p.add_argument('--platform', help='target platform, e.g. '
                   'manylinux_2_28_x86_64 (default: this machine\'s)')
    p.add_argument('--present', nargs='+', metavar='NAME[==VERSION]',
                   help='packages the target has (no version: any above '
                   'the lower bounds)')
    p.add_argument('--present-from', nargs='+', metavar='FILE',
                   help='files listing them (`pip freeze` of the target)')
    p.add_argument('--mmcv-wheel', help='this mmcv wheel (built for the '
                   "target's torch) instead of the sdist")
    p.add_argument('--no-tests', action='store_true',
                   help='leave out requirements/tests.txt (pytest, linters)')
    p.add_argument('--max-mib', type=float,
                   help='refuse to write a kit larger than this')
    return p.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    sys.exit(cli(lambda: make_kit(args)))
