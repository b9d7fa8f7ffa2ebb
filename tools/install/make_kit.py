#!/usr/bin/env python3
"""Write an offline install kit: the wheels a target machine lacks.

pip resolves requirements/*.txt for the target, each package it has (its
``pip freeze``) stood in for by an empty wheel of that version; one citymask
cannot use (e.g. setuptools 81) goes in anyway. The kit: wheels/, the mmcv
sdist (unless ``--mmcv-wheel``), kit.json (target, files with sha256).
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

from _common import (MMCV_VERSION, REPO, InstallError, cli, log, mmcv_sdist,
                     sha256)
# pip's copy of packaging: this runs with any Python that has pip
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.tags import platform_tags
from pip._vendor.packaging.utils import canonicalize_name as canonical

# a present package's stand-in version if none is given: above any lower
# bound, so pip keeps the newest releases of what depends on it
ANY_VERSION = '9999'
# requirements/runtime.txt of the mmcv sdist (OpenCV: only without a cv2)
MMCV_SDIST_REQUIRES = ['addict', 'mmengine>=0.3.0', 'numpy', 'packaging',
                       'Pillow', 'pyyaml', "regex;sys_platform=='win32'",
                       'yapf']
# pip distributions that all install the same cv2 module
OPENCV_FLAVOURS = ('opencv-python', 'opencv-python-headless',
                   'opencv-contrib-python', 'opencv-contrib-python-headless')


def write_stub(folder, name, version, requires=()):
    """An empty wheel ``name==version`` that depends on ``requires``."""
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
    """The tags a ``manylinux_2_N_ARCH`` target accepts (pip takes
    ``--platform`` literally): _2_N ... _2_5, the legacy aliases and
    linux_ARCH (of wheels built there, e.g. by build_mmcv.py)."""
    m = re.fullmatch(r'manylinux_2_(\d+)_(\w+)', tag)
    if not m:
        return [tag]
    glibc, arch = int(m.group(1)), m.group(2)
    legacy = {17: 'manylinux2014', 12: 'manylinux2010', 5: 'manylinux1'}
    return [f'manylinux_2_{n}_{arch}' for n in range(glibc, 4, -1)] + [
        f'{alias}_{arch}' for n, alias in legacy.items() if n <= glibc] + [
        f'linux_{arch}']


def make_kit(args):
    out = args.out.rstrip('/')
    if osp.exists(out) and os.listdir(out):
        raise InstallError(f'{out} exists and is not empty: pick another '
                           'folder or remove it')
    pyver = args.python_version or '%d.%d' % sys.version_info[:2]
    if not re.fullmatch(r'3\.\d+', pyver):
        raise InstallError(f'bad --python-version {pyver!r}: use 3.N')
    plat = args.platform or next((t for t in platform_tags()
                                  if t.startswith('manylinux_')), None)
    if not plat:
        raise InstallError('cannot tell this machine\'s glibc: give '
                           '--platform (e.g. manylinux_2_28_x86_64)')
    for path in args.present_from + [args.mmcv_wheel] * bool(args.mmcv_wheel):
        if not osp.isfile(path):
            raise InstallError(f'no file {path}')
    present = {}  # pip freeze lines (name==version, name @ url) or names
    for line in args.present + [line for path in args.present_from
                                for line in open(path)]:
        line = line.split('#', 1)[0].strip()
        m = re.fullmatch(r'([A-Za-z0-9][\w.-]*)\s*(?:==\s*(\S+)|@.*)?', line)
        if m:
            present[canonical(m.group(1))] = m.group(2)
        elif line and not line.startswith('-'):
            raise InstallError(f'cannot read present package {line!r}: use '
                               'NAME==VERSION (pip freeze format) or NAME')
    if args.mmcv_wheel:  # it replaces a present mmcv
        present.pop('mmcv', None)
    # citymask asks for opencv-python; any present flavour gives cv2
    opencv = [present[n] for n in OPENCV_FLAVOURS if n in present]
    stand_ins = dict(dict.fromkeys(OPENCV_FLAVOURS, opencv[0]) if opencv
                     else {}, **present)
    reqs = [f'mmcv=={MMCV_VERSION}']  # and citymask's requirements but mmcv
    for name in ['build', 'runtime', 'mminstall'] + ['tests'] * (
            not args.no_tests):
        with open(osp.join(REPO, 'requirements', name + '.txt')) as f:
            reqs += [r for r in (line.split('#', 1)[0].strip() for line in f)
                     if r and canonical(Requirement(r).name) != 'mmcv']
    for line in reqs:
        req = Requirement(line)
        version = stand_ins.get(name := canonical(req.name), '')
        if version is None and not req.specifier.contains(ANY_VERSION):
            raise InstallError(f'give the version of present {name} '
                               f'(NAME==VERSION): citymask needs {line}')
        if version and not req.specifier.contains(version, True):
            log(f'present {name} {version} (citymask needs {line}): put in '
                'the kit anyway')
            present.pop(name, None)
            stand_ins.pop(name)
    if args.mmcv_wheel:  # pip takes it as it is, for the target
        reqs[0] = osp.abspath(args.mmcv_wheel)

    part, wheels = out + '.part', osp.join(out + '.part', 'wheels')
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(wheels)
    # mmcv is built on the target from the sdist: a stand-in with its
    # dependencies is resolved
    mmcv = None if 'mmcv' in present or args.mmcv_wheel else \
        shutil.copy(mmcv_sdist(), part)
    if mmcv:
        stand_ins['mmcv'] = MMCV_VERSION
    with tempfile.TemporaryDirectory(prefix='make_kit_') as stubs:
        # replaces any constraint file of this machine's pip configuration
        cons = osp.join(stubs, 'constraints.txt')
        with open(cons, 'w') as f:
            for name, version in stand_ins.items():
                # a local label no index has: pip takes the stand-in
                version = version or ANY_VERSION
                version += ('.' if '+' in version else '+') + 'present'
                f.write(f'{name}=={version}\n')
                write_stub(stubs, name, version, MMCV_SDIST_REQUIRES
                           if mmcv and name == 'mmcv' else ())
        log(f'resolving for Python {pyver}, {plat}, {len(present)} packages '
            'present')
        if subprocess.run([
                sys.executable, '-m', 'pip', 'download', '-q', '--only-binary',
                ':all:', '--implementation', 'cp', '--python-version', pyver,
                '-d', wheels, '--find-links', stubs, '-c', cons] + reqs + [
                    f'--platform={t}' for t in platforms(plat)]).returncode:
            shutil.rmtree(part)
            raise InstallError(
                'pip could not find wheels for every requirement for that '
                'target (its message is above): name what the target '
                'already has with --present, or another --platform')
        for name in set(os.listdir(stubs)) & set(os.listdir(wheels)):
            os.remove(osp.join(wheels, name))  # pip copied the stand-ins

    files = {osp.relpath(p, part): dict(bytes=osp.getsize(p), sha256=sha256(p))
             for p in sorted(glob.glob(osp.join(part, '**', '*.*'),
                                       recursive=True))}
    total = sum(f['bytes'] for f in files.values())
    if args.max_mib and total > args.max_mib * 2**20:
        shutil.rmtree(part)
        biggest = max(files, key=lambda n: files[n]['bytes'])
        raise InstallError(
            f'the kit would take {total / 2**20:.1f} MiB, over --max-mib '
            f'{args.max_mib} (biggest: {osp.basename(biggest)}): name what '
            'the target has with --present')
    with open(osp.join(part, 'kit.json'), 'w') as f:
        json.dump(dict(python_version=pyver, platform=plat, present=present,
                       mmcv=mmcv and osp.basename(mmcv), files=files,
                       total_bytes=total), f, indent=1)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(part, out)
    log(f'wrote {out}: {len(files)} files, {total / 2**20:.1f} MiB')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out', help='kit folder to write (new or empty)')
    p.add_argument('--python-version', help='e.g. 3.12 (default: this one)')
    p.add_argument('--platform', help='e.g. manylinux_2_28_x86_64 (default: '
                   'this machine\'s)')
    p.add_argument('--present', nargs='+', default=[], metavar='NAME[==VER]',
                   help='packages the target has (no version: any)')
    p.add_argument('--present-from', nargs='+', default=[], metavar='FILE',
                   help='files listing them (`pip freeze` of the target)')
    p.add_argument('--mmcv-wheel', help='an mmcv wheel built for the '
                   "target's torch, instead of the sdist")
    p.add_argument('--no-tests', action='store_true',
                   help='leave out requirements/tests.txt (pytest, linters)')
    p.add_argument('--max-mib', type=float, help='refuse a larger kit')
    sys.exit(cli(make_kit, p.parse_args()))
