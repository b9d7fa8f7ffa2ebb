#!/usr/bin/env python3
"""Write an offline install kit: the wheels a target machine lacks.

Run on a machine that reaches a package index; copy the kit to the target
(no index needed there) and install it with
``tools/install/offline_install.py``::

    python tools/install/make_kit.py KIT --python-version 3.12 \\
        --platform manylinux_2_28_x86_64 \\
        --present torch==2.11.0+cu130 numpy==2.5.2 ...
    python tools/install/make_kit.py KIT --present-from target-freeze.txt

The kit holds every wheel citymask needs (requirements/runtime.txt,
mminstall.txt, build.txt and, unless ``--no-tests``, tests.txt) for that
Python and platform, except the packages named as present there (``pip
freeze`` output of the target is the exact list; a name without a version
stands for a version above any lower bound), plus the mmcv 2.1.0
sdist (built on the target against its own torch) or a prebuilt mmcv wheel
(``--mmcv-wheel``), and ``kit.json`` (what it was made for, sizes,
sha256).

pip's own resolver picks the wheels: each present package is stood in for
by an empty wheel of that version, with no dependencies (they are present
too), so pip resolves exactly what is missing, against the versions the
target has; the stand-ins are not part of the kit. A present package whose
version citymask cannot use (e.g. setuptools 81, which removed
``pkg_resources``) is put in the kit anyway. Any OpenCV flavour
(``opencv-python-headless``, contrib) provides the ``cv2`` citymask needs,
so one present flavour stands in for ``opencv-python``.

Standard library only (plus pip, which it drives).
"""
import argparse
import base64
import glob
import hashlib
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
import time
import zipfile

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from build_mmcv import (MMCV_VERSION, BuildError, check_sdist,  # noqa: E402
                        download_sdist, run_cli, sha256)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Local version label of the stand-in wheels: no index has these versions,
# so pip can only pick the stand-in.
STUB_LABEL = 'present'
# The stand-in version of a present package named without a version: above
# any lower bound (the common kind of range), so pip does not fall back to
# older releases of what depends on it; exact only with versions given.
ANY_VERSION = '9999'
# pip distribution names that all install the same cv2 module
OPENCV_FLAVOURS = ('opencv-python', 'opencv-python-headless',
                   'opencv-contrib-python', 'opencv-contrib-python-headless')
# Installed into the target environment whatever it has: building mmcv needs
# them (setuptools < 81 for pkg_resources, ninja for parallel builds).
BUILD_NAMES = ('setuptools', 'wheel', 'ninja')


class KitError(Exception):
    """A problem the user has to fix; printed as one ``error:`` line."""


def log(msg):
    print(f'make_kit: {msg}', flush=True)


def canonical(name):
    """PEP 503 normalized project name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def read_requirements(path):
    """Requirement lines of a requirements file, comments dropped."""
    reqs = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def req_name(req):
    return canonical(re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', req).group(0))


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
            raise KitError(f'cannot read present package {item!r}: use '
                           'NAME==VERSION (pip freeze format) or NAME')
        present[canonical(m.group(1))] = m.group(2)
    return present


def _packaging():
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.version import Version
    return Requirement, Version


def conflicts(present, reqs):
    """Present packages whose version a direct requirement refuses.

    A present package named without a version stands in as version
    ANY_VERSION; if a range of citymask's own excludes that, its version is
    asked for.
    """
    Requirement, Version = _packaging()
    bad = {}
    for line in reqs:
        req = Requirement(line)
        name = canonical(req.name)
        if name not in present:
            continue
        version = present[name]
        if version is None:
            if not req.specifier.contains(Version(ANY_VERSION)):
                raise KitError(f'give the version of present {name} '
                               f'(NAME==VERSION): citymask needs {line}')
        elif not req.specifier.contains(Version(version), prereleases=True):
            bad[name] = f'{version} (citymask needs {line})'
    return bad


def stub_version(version):
    """The stand-in's version: the real one plus the local label."""
    if version is None:
        return f'{ANY_VERSION}+{STUB_LABEL}'
    sep = '.' if '+' in version else '+'
    return f'{version}{sep}{STUB_LABEL}'


def write_stub(folder, name, version, requires=()):
    """An empty wheel ``name==version`` that depends on ``requires``."""
    dist = re.sub(r'[-.]+', '_', name)
    info = f'{dist}-{version}.dist-info'
    files = {
        f'{info}/METADATA': ''.join(
            ['Metadata-Version: 2.1\n', f'Name: {name}\n',
             f'Version: {version}\n'] +
            [f'Requires-Dist: {r}\n' for r in requires]),
        f'{info}/WHEEL': ('Wheel-Version: 1.0\nGenerator: citymask-kit\n'
                          'Root-Is-Purelib: true\nTag: py3-none-any\n'),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(
            hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()
        record.append(f'{path},sha256={digest},{len(text.encode())}')
    files[f'{info}/RECORD'] = '\n'.join(record + [f'{info}/RECORD,,']) + '\n'
    path = osp.join(folder, f'{dist}-{version}-py3-none-any.whl')
    with zipfile.ZipFile(path, 'w') as z:
        for name_, text in files.items():
            z.writestr(name_, text)
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
    tags += [f'{alias}_{arch}' for glibc, alias in legacy.items()
             if major == 2 and glibc <= minor]
    return tags


def this_platform():
    libc, version = platform.libc_ver()
    if libc != 'glibc':
        raise KitError('cannot tell this machine\'s glibc: give --platform '
                       '(e.g. manylinux_2_28_x86_64)')
    major, minor = version.split('.')[:2]
    return f'manylinux_{major}_{minor}_{platform.machine()}'


def sdist_requires(sdist):
    """mmcv's dependencies, read from its sdist's requirements/runtime.txt
    (its setup.py adds OpenCV only when no cv2 is importable)."""
    with tarfile.open(sdist) as tar:
        member = tar.extractfile(
            f'mmcv-{MMCV_VERSION}/requirements/runtime.txt')
        text = member.read().decode()
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith('#')]


def wheel_requires(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist()
                    if n.endswith('.dist-info/METADATA'))
        text = z.read(meta).decode()
    return re.findall(r'^Requires-Dist: (.+)$', text, re.M)


def make_kit(args):
    out = args.out
    if osp.exists(out) and os.listdir(out):
        if not args.force:
            raise KitError(f'{out} exists and is not empty: pick another '
                           'folder or pass --force to replace it')
    python_version = args.python_version or \
        f'{sys.version_info.major}.{sys.version_info.minor}'
    if not re.fullmatch(r'3\.\d+', python_version):
        raise KitError(f'bad --python-version {python_version!r}: use e.g. '
                       '3.12')
    plat = args.platform or this_platform()
    present = parse_present(args.present or [])
    for path in args.present_from or []:
        if not osp.isfile(path):
            raise KitError(f'no file {path} (--present-from)')
        with open(path) as f:
            present.update(parse_present(f.read().splitlines()))

    req_files = ['build.txt', 'runtime.txt', 'mminstall.txt']
    if not args.no_tests:
        req_files.append('tests.txt')
    reqs = []
    for name in req_files:
        reqs += read_requirements(osp.join(REPO, 'requirements', name))
    reqs += args.extra or []
    # mmcv is built on the target from its sdist (or comes as a given
    # wheel): a stand-in with mmcv's own dependencies takes part in the
    # resolution. A target that has mmcv already needs neither.
    mmcv_present = 'mmcv' in present
    if mmcv_present and (args.mmcv_wheel or args.mmcv_sdist):
        raise KitError('mmcv is named as present on the target: leave out '
                       '--mmcv-wheel / --mmcv-sdist, or mmcv from --present')
    reqs = [r for r in reqs if req_name(r) != 'mmcv'] + [
        f'mmcv=={MMCV_VERSION}']
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

    t0 = time.time()
    tmp_out = out.rstrip('/') + '.part'
    shutil.rmtree(tmp_out, ignore_errors=True)
    wheels = osp.join(tmp_out, 'wheels')
    os.makedirs(wheels)
    pip_args = []
    for url in args.index_url or []:
        pip_args += ['--index-url', url]
    for link in args.find_links or []:
        pip_args += ['--find-links', link]
    if args.no_index:
        pip_args.append('--no-index')
    with tempfile.TemporaryDirectory(prefix='make_kit_') as tmp:
        mmcv_file = None
        if mmcv_present:
            pass
        elif args.mmcv_wheel:
            if not osp.isfile(args.mmcv_wheel):
                raise KitError(f'no file {args.mmcv_wheel} (--mmcv-wheel)')
            mmcv_requires = wheel_requires(args.mmcv_wheel)
            shutil.copy(args.mmcv_wheel, tmp_out)
            mmcv_file = osp.basename(args.mmcv_wheel)
        else:
            if args.mmcv_sdist:
                check_sdist(args.mmcv_sdist)
            sdist = osp.join(tmp_out, f'mmcv-{MMCV_VERSION}.tar.gz')
            shutil.copyfile(args.mmcv_sdist or download_sdist(pip_args),
                            sdist)
            mmcv_requires = sdist_requires(sdist)
            if not opencv:
                mmcv_requires.append('opencv-python>=3')
            mmcv_file = osp.basename(sdist)

        stubs = osp.join(tmp, 'stubs')
        os.makedirs(stubs)
        constraints = []
        for name, version in present.items():
            write_stub(stubs, name, stub_version(version))
            constraints.append(f'{name}=={stub_version(version)}')
        if not mmcv_present:
            mmcv_stub = f'{MMCV_VERSION}+kit'
            write_stub(stubs, 'mmcv', mmcv_stub, mmcv_requires)
            constraints.append(f'mmcv=={mmcv_stub}')
        with open(osp.join(tmp, 'constraints.txt'), 'w') as f:
            f.write('\n'.join(constraints) + '\n')
        with open(osp.join(tmp, 'requirements.txt'), 'w') as f:
            f.write('\n'.join(reqs) + '\n')

        cmd = [sys.executable, '-m', 'pip', 'download', '-q', '--only-binary',
               ':all:', '--implementation', 'cp', '--python-version',
               python_version, '-d', wheels, '--find-links', stubs,
               '-c', osp.join(tmp, 'constraints.txt'),
               '-r', osp.join(tmp, 'requirements.txt')]
        for tag in platforms(plat):
            cmd += ['--platform', tag]
        log(f'resolving for Python {python_version}, {plat}, '
            f'{len(present)} packages present')
        proc = subprocess.run(cmd + pip_args)
        if proc.returncode != 0:
            raise KitError(
                'pip could not find wheels for every requirement for that '
                'target (its message is above): name what the target '
                'already has with --present, or another --platform')
        # drop the stand-ins pip copied next to the real wheels
        for name in os.listdir(stubs):
            if osp.exists(osp.join(wheels, name)):
                os.remove(osp.join(wheels, name))

    files = {}
    for path in sorted(glob.glob(osp.join(tmp_out, '**', '*'),
                                 recursive=True)):
        if osp.isfile(path):
            files[osp.relpath(path, tmp_out)] = dict(
                bytes=osp.getsize(path), sha256=sha256(path))
    total = sum(f['bytes'] for f in files.values())
    manifest = dict(
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        python_version=python_version, platform=plat,
        present={n: v for n, v in sorted(present.items())
                 if n not in OPENCV_FLAVOURS or n in opencv},
        opencv_flavours=opencv, mmcv=mmcv_file,
        requirements=reqs, files=files, total_bytes=total)
    with open(osp.join(tmp_out, 'kit.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    if args.max_mib and total > args.max_mib * 2**20:
        biggest = sorted(files.items(), key=lambda kv: -kv[1]['bytes'])[:3]
        shutil.rmtree(tmp_out)
        raise KitError(
            f'the kit would take {total / 2**20:.1f} MiB, over --max-mib '
            f'{args.max_mib}; biggest: ' + ', '.join(
                f'{osp.basename(n)} {f["bytes"] / 2**20:.1f} MiB'
                for n, f in biggest) + '; name them with --present if the '
            'target has them')
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp_out, out)
    log(f'wrote {out}: {len(files)} files, {total / 2**20:.1f} MiB, '
        f'{time.time() - t0:.0f} s')
    return manifest


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out', help='kit folder to write')
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
    p.add_argument('--mmcv-sdist', help=f'mmcv-{MMCV_VERSION}.tar.gz to '
                   'put in the kit (default: download it)')
    p.add_argument('--extra', nargs='+', metavar='REQ',
                   help='more requirements to put in the kit')
    p.add_argument('--no-tests', action='store_true',
                   help='leave out requirements/tests.txt (pytest, linters)')
    p.add_argument('--max-mib', type=float,
                   help='refuse to write a kit larger than this')
    p.add_argument('--index-url', nargs='+', help='package index(es) for '
                   'pip (default: pip\'s configuration)')
    p.add_argument('--find-links', nargs='+', help='wheel folders for pip')
    p.add_argument('--no-index', action='store_true',
                   help='use only --find-links')
    p.add_argument('--force', action='store_true',
                   help='replace an existing kit folder')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return run_cli(lambda: make_kit(args), (KitError, BuildError))


if __name__ == '__main__':
    sys.exit(main())
