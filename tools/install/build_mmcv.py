#!/usr/bin/env python3
"""Build mmcv 2.1.0 with its ops against this interpreter's torch; install.

Fixes what ``pip install`` of mmcv's sdist gets wrong (torch >= 2.14's C++20,
setuptools 81, no GPU at build time, nvcc vs torch CUDA, memory per job),
checks the result loads with device code for every arch; caches the wheel.
"""
import argparse
import glob
import hashlib
import importlib.util
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

from _common import (CACHE, MMCV_VERSION, InstallError, cli, log, mmcv_sdist,
                     run)

# A100, H100; +PTX lets newer GPUs (Blackwell) JIT-compile the sm_90 code.
DEFAULT_ARCHS = '8.0;9.0+PTX'
# The installed extension loaded alone (mmcv's dependencies may be missing):
# has it device code (.nv_fatbin), its path, get_compiling_cuda_version()
# (last: it has crashed processes).
PROBE = '''import sys, glob, torch
from importlib import metadata, util as u
assert metadata.version("mmcv") == sys.argv[1]
pkg = u.find_spec("mmcv").submodule_search_locations[0]
s = u.spec_from_file_location("mmcv._ext", glob.glob(pkg + "/_ext*.so")[0])
ext = u.module_from_spec(s)
s.loader.exec_module(ext)
assert hasattr(ext, "nms")
print(b".nv_fatbin" in open(s.origin, "rb").read(), s.origin, flush=True)
print(ext.get_compiling_cuda_version() if sys.argv[2:] else "")
'''


def installed_ext(cuda=False):
    """PROBE's (has CUDA code, path, CUDA version if ``cuda`` and it works);
    Nones if the extension does not load."""
    proc = subprocess.run([sys.executable, '-c', PROBE, MMCV_VERSION] +
                          ['cuda'] * cuda, text=True, capture_output=True)
    if not proc.stdout:
        return None, None, None
    first, _, version = proc.stdout.partition('\n')
    return (first.startswith('True'), first.split(' ', 1)[1],
            version.strip() if proc.returncode == 0 else None)


def torch_info():
    """torch's version, CUDA version and the C++ standard its headers need;
    checks setuptools has the pkg_resources mmcv's setup.py imports."""
    try:
        from setuptools import __version__ as found
    except ImportError:
        found = None
    if not found or int(found.split('.')[0]) >= 81:
        raise InstallError(
            f'{"setuptools " + found if found else "no setuptools"} in '
            f'{sys.prefix}: mmcv {MMCV_VERSION}\'s setup.py imports '
            'pkg_resources, which setuptools 81 removed; run `'
            f'{sys.executable} -m pip install "setuptools>=77.0.3,<81"` first')
    try:
        import torch
    except ImportError:
        raise InstallError(f'torch is not installed in {sys.prefix}: '
                           'install torch first (mmcv is built against it)')
    aten = osp.join(osp.dirname(torch.__file__), 'include', 'ATen', 'ATen.h')
    with open(aten) as f:
        m = re.search(r'#error C\+\+(\d\d) or later', f.read())
    return torch.__version__, torch.version.cuda, int(m.group(1)) if m else 17


def find_cuda_home():
    """The CUDA toolkit root (None without nvcc): CUDA_HOME, else ``TOP`` in
    nvcc's ``--dryrun`` (right also when nvcc is a wrapper script)."""
    home = os.environ.get('CUDA_HOME')
    if home and osp.exists(osp.join(home, 'bin', 'nvcc')):
        return home
    nvcc = shutil.which('nvcc') or shutil.which('nvcc',
                                                path='/usr/local/cuda/bin')
    if nvcc is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([nvcc, '--dryrun', '-c', '-x', 'cu', os.devnull,
                              '-o', osp.join(tmp, 'x.o')], text=True,
                             capture_output=True)
    m = re.search(r'^#\$ TOP=(.+)$', out.stdout + out.stderr, re.M)
    return osp.normpath(m.group(1).strip()) if m else \
        osp.dirname(osp.dirname(osp.realpath(nvcc)))


def parse_archs(archs):
    """'8.0;9.0+PTX' -> ['80', '90']; spaces and commas separate too."""
    items = re.split(r'[;\s,]+', archs.strip())
    for item in items:
        if not re.fullmatch(r'\d+\.\d+a?(\+PTX)?', item):
            raise InstallError(f'bad CUDA arch {item!r} in {archs!r}: use '
                               'compute capabilities like "8.0;9.0+PTX"')
    return [re.sub(r'\D', '', item) for item in items]


def unpack_and_patch(sdist, work, std):
    """The sdist unpacked in ``work`` (an interrupted build's copy reused),
    its C++ standard raised to ``std``."""
    setup_py = osp.join(work, f'mmcv-{MMCV_VERSION}', 'setup.py')
    if not osp.isfile(setup_py):
        with tarfile.open(sdist) as tar:
            tar.extractall(work, **({'filter': 'data'} if hasattr(
                tarfile, 'data_filter') else {}))
    with open(setup_py) as f:
        text = f.read()
    n = text.count("'-std=c++17'")
    if std > 17 and n:
        # setup.py hard-codes -std=c++17 for g++ and nvcc; torch >= 2.14's
        # ATen.h has `#error C++20 or later ... required`.
        with open(setup_py, 'w') as f:
            f.write(text.replace("'-std=c++17'", f"'-std=c++{std}'"))
        log(f'patched {n} x -std=c++17 -> -std=c++{std} in the copy '
            f'(torch\'s ATen.h requires C++{std})')
    return osp.dirname(setup_py)


def check_device_code(cuda_home, archs, path):
    """Every arch has device code (sm_XX) in ``path``, by the toolkit's
    cuobjdump, else PATH's, else triton's (torch's CUDA builds bring it)."""
    spec = importlib.util.find_spec('triton')
    triton = spec and spec.submodule_search_locations and osp.join(list(
        spec.submodule_search_locations)[0], 'backends/nvidia/bin/cuobjdump')
    found = [c for c in (osp.join(cuda_home, 'bin', 'cuobjdump'),
                         shutil.which('cuobjdump'), triton)
             if c and os.access(c, os.X_OK)]
    if not found:
        return log('cuobjdump not found: device code not checked')
    sms = set(re.findall(r'\.sm_(\d+)\.',
                         run([found[0], '--list-elf', path], True)))
    listed = ', '.join('sm_' + a for a in sorted(sms, key=int)) or 'none'
    missing = ', '.join('sm_' + a for a in parse_archs(archs) if a not in sms)
    if missing:
        raise InstallError(f'{path} has no device code for {missing} '
                           f'(found: {listed})')
    log(f'device code in {osp.basename(path)} ({found[0]}): {listed}')


def cuda_env(args, env, torch_version, torch_cuda):
    """(toolkit root, TORCH_CUDA_ARCH_LIST, nvcc's CUDA version), ``env``
    set up for CUDA ops; or Nones and CPU ops only."""
    cuda_home = find_cuda_home() if args.cuda != 'no' else None
    major = torch_cuda and torch_cuda.split('.')[0]
    if not (torch_cuda and cuda_home):
        why = (f'no nvcc found (PATH, CUDA_HOME): put the CUDA {major}.x '
               'toolkit\'s bin on PATH or set CUDA_HOME' if torch_cuda else
               f'torch {torch_version} is a CPU build: install a CUDA build '
               'of torch for mmcv\'s CUDA ops')
        if args.cuda == 'yes':
            raise InstallError(why + ' (or set CUDA=no)')
        if torch_cuda and args.cuda == 'auto':
            log(f'note: building CPU ops only, {why}, then run again with '
                '--force (make setup CUDA=yes) for CUDA ops')
        # A visible GPU would make mmcv's setup.py build CUDA ops anyway.
        env.update(FORCE_CUDA='0', CUDA_VISIBLE_DEVICES='')
        return None, None, None
    nvcc_bin = osp.join(cuda_home, 'bin', 'nvcc')
    m = re.search(r'release ((\d+)\.\d+)', run([nvcc_bin, '--version'], True))
    nvcc, nvcc_major = m.groups() if m else ('(unreadable)', 'that version')
    if nvcc_major != major:
        raise InstallError(
            f'nvcc in {cuda_home} is CUDA {nvcc} but torch {torch_version} '
            f'was built with CUDA {torch_cuda}: the majors must match; put a '
            f'CUDA {major}.x nvcc first on PATH (or set CUDA_HOME), or '
            f'install a torch built for CUDA {nvcc_major}')
    import torch
    archs = args.archs or os.environ.get('TORCH_CUDA_ARCH_LIST') or ';'.join(
        '%d.%d' % c for c in sorted({torch.cuda.get_device_capability(i) for
                                     i in range(torch.cuda.device_count())})
    ) or DEFAULT_ARCHS
    sms = set(re.findall(r'sm_(\d+)', run([nvcc_bin, '--list-gpu-code'],
                                          True)))
    bad = ', '.join('sm_' + a for a in parse_archs(archs) if a not in sms)
    if bad:
        raise InstallError(
            f'nvcc {nvcc} cannot build for {bad} (its oldest is '
            f'sm_{min(sms, key=int)}): pick other archs with CUDA_ARCHS / '
            '--archs, or for older GPUs (V100 is sm_70) use a CUDA 12.x '
            'toolkit with a torch built for CUDA 12')
    # torch's headers include these; a toolkit without its math libraries
    # lacks them: torch's nvidia-* copies (CPATH: after the toolkit's own).
    headers = ('cusparse.h', 'cublas_v2.h', 'cusolverDn.h')
    extra = [] if all(osp.exists(osp.join(cuda_home, 'include', h))
                      for h in headers) else [
        d for d in sorted(glob.glob(osp.join(osp.dirname(osp.dirname(
            torch.__file__)), 'nvidia', '*', 'include')))
        if any(osp.exists(osp.join(d, h)) for h in headers)]
    if extra:
        env['CPATH'] = os.pathsep.join(extra + [env['CPATH']] * bool(
            env.get('CPATH')))
        log(f'CUDA math headers from torch\'s nvidia packages: {extra}')
    env.update(FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=archs,
               CUDA_HOME=cuda_home, PATH=osp.join(cuda_home, 'bin') +
               os.pathsep + env.get('PATH', ''))
    return cuda_home, archs, nvcc


def build_wheel(args, env, std, what, cache):
    """Build mmcv's wheel from the sdist into ``cache``; its path."""
    # about 1.3 GB per nvcc job at peak on mmcv's sources, < 1 GB per g++
    with open('/proc/meminfo') as f:
        gib = next(int(line.split()[1]) for line in f
                   if line.startswith('MemAvailable:')) / 2**20
    env['MAX_JOBS'] = str(args.jobs or env.get('MAX_JOBS') or max(1, min(
        len(os.sched_getaffinity(0)),
        int(gib / (1.5 if env['FORCE_CUDA'] == '1' else 1.0)))))
    log(f'building {what}, C++{std}, MAX_JOBS={env["MAX_JOBS"]}')
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='build_mmcv_') as tmp, \
            tempfile.TemporaryDirectory(dir=cache) as out:
        src = unpack_and_patch(mmcv_sdist(args.sdist), args.build_dir or tmp,
                               std)
        # --no-build-isolation: mmcv compiles against the torch installed
        # here, not a fresh one pip would fetch.
        run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation',
             '--no-deps', '-w', out, src] + ['-v'] * args.verbose, env=env)
        built = glob.glob(osp.join(out, '*.whl'))[0]
        os.replace(built, osp.join(cache, osp.basename(built)))
    return osp.join(cache, osp.basename(built))


def build(args):
    torch_version, torch_cuda, std = torch_info()
    env = dict(os.environ, MMCV_WITH_OPS='1')
    cuda_home, archs, nvcc = cuda_env(args, env, torch_version, torch_cuda)
    cuda = cuda_home is not None
    what = (f'mmcv {MMCV_VERSION} with CUDA ops (nvcc {nvcc}, '
            f'TORCH_CUDA_ARCH_LIST={archs})' if cuda else
            f'mmcv {MMCV_VERSION} with CPU ops')
    if not args.force and installed_ext()[0] == cuda:
        return log(f'{what} already installed in {sys.prefix}; --force '
                   'rebuilds')
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    key = '|'.join([MMCV_VERSION, tag, torch_version, torch_cuda if cuda
                    else 'cpu', archs or '', str(std)]).encode()
    cache = osp.join(CACHE, 'mmcv-wheels', f'mmcv-{MMCV_VERSION}-{tag}-torch'
                     f'{torch_version}-{hashlib.sha256(key).hexdigest()[:16]}')
    cached = glob.glob(osp.join(cache, '*.whl'))
    wheel = cached[0] if cached and not args.force else build_wheel(
        args, env, std, f'{what} against torch {torch_version}', cache)
    log(f'installing {wheel}')
    run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
         '--force-reinstall', '--no-index', wheel])
    has_cuda, path, version = installed_ext(cuda)
    if has_cuda != cuda:
        raise InstallError(f'the installed mmcv does not import with its '
                           f'{"CUDA " if cuda else ""}ops; see the log above')
    if cuda:
        check_device_code(cuda_home, archs, path)
        log(f'get_compiling_cuda_version(): {version}' if version else
            'note: get_compiling_cuda_version() failed; the device code '
            'check stands')
    log(f'installed {what} in {sys.prefix}')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cuda', choices=['auto', 'yes', 'no'], default='auto',
                   help='CUDA ops (auto: with a CUDA torch and nvcc)')
    p.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST (default: that '
                   f'variable, the visible GPUs, "{DEFAULT_ARCHS}")')
    p.add_argument('--jobs', type=int, help='parallel jobs (MAX_JOBS)')
    p.add_argument('--sdist', help=f'mmcv-{MMCV_VERSION}.tar.gz to build')
    p.add_argument('--build-dir', help='build here and keep it (a second '
                   'run resumes an interrupted one)')
    p.add_argument('--verbose', action='store_true', help='pip wheel -v')
    p.add_argument('--force', action='store_true', help='build even if '
                   'a matching mmcv is installed')
    sys.exit(cli(build, p.parse_args()))
