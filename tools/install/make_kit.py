#!/usr/bin/env python3
"""Write an offline install kit: the wheels a target machine lacks.

Run where a package index is reachable (pip's configuration picks it);
install the kit on the target with ``offline_install.py``::

    python tools/install/make_kit.py KIT --python-version 3.12 \\
        --platform manylinux_2_28_x86_64 --present-from target-freeze.txt

The kit holds every wheel citymask's requirements/*.txt need (tests.txt
unless ``--no-tests``) for that Python and platform, except the packages
present there (``--present NAME[==VERSION]``, ``--present-from`` the
target's ``pip freeze``; a name without a version stands for one above
any lower bound), plus the mmcv 2.1.0 sdist or ``--mmcv-wheel``, and
kit.json (target, files, sizes, sha256). pip's own resolver picks the
wheels: each present package is stood in for by an empty wheel of its
version. A present package citymask cannot use (e.g. setuptools 81) goes
into the kit anyway; any OpenCV flavour stands in for opencv-python.
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
import tarfile
import tempfile
import zipfile

from _common import (MMCV_VERSION, OPENCV_FLAVOURS, InstallError, cli, log,
                     mmcv_sdist, sha256)

try:
    from packaging.requirements import Requirement
    from packaging.version import Version
except ImportError:  # pip vendors it
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.version import Version

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Local version label of the stand-in wheels: no index has these versions,
# so pip can only pick the stand-in.
STUB_LABEL = 'present'
# The stand-in version of a present package named without a version: above
# any lower bound (the common kind of range), so pip does not fall back to
# older releases of what depends on it; exact only with versions given.
ANY_VERSION = '9999'
# Installed into the target environment whatever it has: building mmcv needs
# them (setuptools < 81 for pkg_resources, ninja for parallel builds).
BUILD_NAMES = ('setuptools', 'wheel', 'ninja')


def canonical(name):
    """PEP 503 normalized project name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def parse_present(items):
    """['torch==2.11.0+cu130', 'scipy'] -> {'torch': '2.11.0+cu130',
    'scipy': None}; pip freeze lines (``name==ver``, ``name @ url``)."""
    present = {}
    for item in items:
        item = item.split('#', 1)[0].strip()
        if not item or item.startswith('-'):
            continue
        m = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*(\S+)|@.*)?',
                         item)
        if not m:
            raise InstallError(f'cannot read present package {item!r}: use '
                               'NAME==VERSION (pip freeze format) or NAME')
        present[canonical(m.group(1))] = m.group(2)
    return present


def conflicts(present, reqs):
    """Present packages whose version a direct requirement refuses.

    A present package named without a version stands in as version
    ANY_VERSION; if a range of citymask's own excludes that, its version is
    asked for.
    """
    bad = {}
    for line in reqs:
        req = Requirement(line)
        name = canonical(req.name)
        version = present.get(name)
        if name in present and version is None and \
                not req.specifier.contains(Version(ANY_VERSION)):
            raise InstallError(f'give the version of present {name} '
                               f'(NAME==VERSION): citymask needs {line}')
        if version and not req.specifier.contains(Version(version),
                                                  prereleases=True):
            bad[name] = f'{version} (citymask needs {line})'
    return bad


def stub_version(version):
    """The stand-in's version: the real one plus the local label."""
    if version is None:
        return f'{ANY_VERSION}+{STUB_LABEL}'
    return f'{version}{"." if "+" in version else "+"}{STUB_LABEL}'


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
    """Every platform tag a ``manylinux_2_N_ARCH`` target accepts.

    pip's ``--platform`` takes tags literally (it expands only the legacy
    manylinux2014/2010 aliases), so a glibc-2.28 target is listed as
    manylinux_2_5 ... manylinux_2_28 plus the legacy aliases.
    """
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
    """mmcv's dependencies: a wheel's Requires-Dist, or an sdist's
    requirements/runtime.txt (its setup.py adds OpenCV only when no cv2 is
    importable)."""
    if path.endswith('.whl'):
        with zipfile.ZipFile(path) as z:
            meta = next(n for n in z.namelist()
                        if n.endswith('.dist-info/METADATA'))
            return re.findall(r'^Requires-Dist: (.+)$',
                              z.read(meta).decode(), re.M)
    with tarfile.open(path) as tar:
        text = tar.extractfile(
            f'mmcv-{MMCV_VERSION}/requirements/runtime.txt').read().decode()
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith('#')]


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
        raise InstallError(f'bad --python-version {python_version!r}: use '
                           'e.g. 3.12')
    plat = args.platform or this_platform()
    present = parse_present(args.present or [])
    for path in args.present_from or []:
        if not osp.isfile(path):
            raise InstallError(f'no file {path} (--present-from)')
        with open(path) as f:
            present.update(parse_present(f.read().splitlines()))
    # mmcv is built on the target from its sdist (or comes as a given
    # wheel): a stand-in with mmcv's own dependencies takes part in the
    # resolution. A target that has mmcv already needs neither.
    mmcv_present = 'mmcv' in present
    if mmcv_present and args.mmcv_wheel:
        raise InstallError('mmcv is named as present on the target: leave '
                           'out --mmcv-wheel, or mmcv from --present')
    if args.mmcv_wheel and not osp.isfile(args.mmcv_wheel):
        raise InstallError(f'no file {args.mmcv_wheel} (--mmcv-wheel)')
    reqs = requirements(args.no_tests)
    opencv = [n for n in OPENCV_FLAVOURS if n in present]
    if opencv:
        # citymask asks for opencv-python; any present flavour gives cv2
        for name in OPENCV_FLAVOURS:
            present.setdefault(name, present[opencv[0]])
    bad = conflicts(present, reqs)
    for name in BUILD_NAMES:
        if name in present and name not in bad:
            bad[name] = f'{present[name]} (built with, kept in the venv)'
    for name, why in bad.items():
        log(f'present {name} {why}: put in the kit anyway')
        present.pop(name)

    part = out.rstrip('/') + '.part'
    shutil.rmtree(part, ignore_errors=True)
    wheels = osp.join(part, 'wheels')
    os.makedirs(wheels)
    mmcv_file = None
    if not mmcv_present:
        mmcv_file = shutil.copy(args.mmcv_wheel or mmcv_sdist(), part)
    with tempfile.TemporaryDirectory(prefix='make_kit_') as tmp:
        stubs = osp.join(tmp, 'stubs')
        os.makedirs(stubs)
        constraints = []
        for name, version in present.items():
            write_stub(stubs, name, stub_version(version))
            constraints.append(f'{name}=={stub_version(version)}')
        if mmcv_file:
            deps = mmcv_requires(mmcv_file)
            if mmcv_file.endswith('.tar.gz') and not opencv:
                deps.append('opencv-python>=3')
            write_stub(stubs, 'mmcv', f'{MMCV_VERSION}+kit', deps)
            constraints.append(f'mmcv=={MMCV_VERSION}+kit')
        for name, lines in (('constraints.txt', constraints),
                            ('requirements.txt', reqs)):
            with open(osp.join(tmp, name), 'w') as f:
                f.write('\n'.join(lines) + '\n')
        cmd = [sys.executable, '-m', 'pip', 'download', '-q', '--only-binary',
               ':all:', '--implementation', 'cp', '--python-version',
               python_version, '-d', wheels, '--find-links', stubs,
               '-c', osp.join(tmp, 'constraints.txt'),
               '-r', osp.join(tmp, 'requirements.txt')]
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
        biggest = sorted(files.items(), key=lambda kv: -kv[1]['bytes'])[:3]
        raise InstallError(
            f'the kit would take {total / 2**20:.1f} MiB, over --max-mib '
            f'{args.max_mib}; biggest: ' + ', '.join(
                f'{osp.basename(n)} {f["bytes"] / 2**20:.1f} MiB'
                for n, f in biggest) + '; name them with --present if the '
            'target has them')
    manifest = dict(
        python_version=python_version, platform=plat,
        present={n: v for n, v in sorted(present.items())
                 if n not in OPENCV_FLAVOURS or n in opencv},
        opencv_flavours=opencv,
        mmcv=mmcv_file and osp.basename(mmcv_file),
        requirements=reqs, files=files, total_bytes=total)
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
    p.add_argument('--platform', help='target platform tag, e.g. '
                   'manylinux_2_28_x86_64 (every older manylinux is '
                   'accepted too; default: this machine)')
    p.add_argument('--present', nargs='+', metavar='NAME[==VERSION]',
                   help='packages the target already has')
    p.add_argument('--present-from', nargs='+', metavar='FILE',
                   help='files listing them (`pip freeze` of the target)')
    p.add_argument('--mmcv-wheel', help='put this prebuilt mmcv wheel in '
                   'the kit instead of the sdist (it must match the '
                   "target's torch, CUDA and Python)")
    p.add_argument('--no-tests', action='store_true',
                   help='leave out requirements/tests.txt (pytest, linters)')
    p.add_argument('--max-mib', type=float,
                   help='refuse to write a kit larger than this')
    return p.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    sys.exit(cli(lambda: make_kit(args)))
