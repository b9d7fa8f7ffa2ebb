#!/usr/bin/env python3
"""Build mmcv 2.1.0 with its ops against this interpreter's torch; install.

Run it with the Python of the target environment (``make setup`` and
offline_install.py do). It handles what a plain ``pip install`` of mmcv's
sdist gets wrong (torch >= 2.14's C++20 headers, setuptools 81, no GPU at
build time, nvcc vs torch CUDA, memory per nvcc job), proves the result
(it loads against torch, device code for every arch) and caches the wheel
in ~/.cache/citymask. Standard library only.
"""
import argparse
import contextlib
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
# Peak memory of one nvcc / cc1plus job on mmcv's sources is about 1.3 GB.
GB_PER_JOB = 1.5
# Loads the installed extension alone, after torch (mmcv's dependencies may
# not be installed yet), and prints its path; with a second argument also
# get_compiling_cuda_version(), which has crashed processes: in a child.
PROBE = '''import sys, glob, torch
from importlib import metadata, util as u
assert metadata.version("mmcv") == sys.argv[1]
pkg = u.find_spec("mmcv").submodule_search_locations[0]
s = u.spec_from_file_location("mmcv._ext", glob.glob(pkg + "/_ext*.so")[0])
ext = u.module_from_spec(s)
s.loader.exec_module(ext)
assert hasattr(ext, "nms")
print(s.origin)
if sys.argv[2:]:
    print(ext.get_compiling_cuda_version())
'''


def torch_info():
    """torch's version, CUDA version and the C++ standard its headers need;
    refuses a setuptools without the pkg_resources mmcv's setup.py imports.
    """
    try:
        import setuptools
        found = f'setuptools {setuptools.__version__}'
        ok = int(setuptools.__version__.split('.')[0]) < 81
    except ImportError:
        found, ok = 'no setuptools', False
    if not ok:
        raise InstallError(
            f'{found} in {sys.prefix}: mmcv {MMCV_VERSION}\'s setup.py '
            'imports pkg_resources, which setuptools 81 removed; run `'
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
    """The CUDA toolkit root, or None when there is no nvcc: CUDA_HOME, else
    what nvcc reports (``TOP`` in ``--dryrun``). torch's own guess, nvcc's
    parent's parent, is wrong when nvcc on the PATH is a wrapper script."""
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


def math_lib_includes(cuda_home):
    """torch's nvidia-* include folders with the CUDA math headers torch's
    ATen/cuda includes, if the toolkit was installed without them (they go
    on CPATH, searched after the toolkit's own folder)."""
    headers = ('cusparse.h', 'cublas_v2.h', 'cusolverDn.h')
    if all(osp.exists(osp.join(cuda_home, 'include', h)) for h in headers):
        return []
    import torch
    return [d for d in sorted(glob.glob(osp.join(osp.dirname(osp.dirname(
        torch.__file__)), 'nvidia', '*', 'include')))
        if any(osp.exists(osp.join(d, h)) for h in headers)]


def visible_gpu_archs():
    """'8.0;9.0' for the GPUs torch sees, or None without one."""
    import torch
    return ';'.join('%d.%d' % c for c in sorted(
        {torch.cuda.get_device_capability(i)
         for i in range(torch.cuda.device_count())})) or None


def parse_archs(archs):
    """'8.0;9.0+PTX' -> ['80', '90']; accepts spaces as separators."""
    items = re.split(r'[;\s,]+', archs.strip())
    for item in items:
        if not re.fullmatch(r'\d+\.\d+a?(\+PTX)?', item):
            raise InstallError(f'bad CUDA arch {item!r} in {archs!r}: use '
                               'compute capabilities like "8.0;9.0+PTX"')
    return [''.join(re.findall(r'\d+', item)) for item in items]


def check_archs(cuda_home, cuda_version, archs):
    """Refuse archs this nvcc cannot build for, naming what to do."""
    out = run([osp.join(cuda_home, 'bin', 'nvcc'), '--list-gpu-code'], True)
    supported = set(re.findall(r'sm_(\d+)', out))
    bad = [a for a in parse_archs(archs) if a not in supported]
    if bad:
        raise InstallError(
            f'nvcc {cuda_version} cannot build for '
            f'{", ".join("sm_" + a for a in bad)} (its oldest is '
            f'sm_{min(supported, key=int)}): pick other archs with '
            'CUDA_ARCHS / --archs, or for older GPUs (V100 is sm_70) use a '
            'CUDA 12.x toolkit with a torch built for CUDA 12')


def default_jobs(cuda):
    """Parallel compile jobs: cores, capped by memory when nvcc runs."""
    jobs = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, StopIteration), \
            open('/proc/meminfo') as f:
        gib = next(int(line.split()[1]) for line in f
                   if line.startswith('MemAvailable:')) / 2**20
        jobs = min(jobs, int(gib / (GB_PER_JOB if cuda else 1.0)))
    return max(1, jobs)


def installed_ext():
    """(path, whether it holds CUDA device code) of the installed mmcv
    extension if it loads with this torch, else (None, None). Device code
    is a ``.nv_fatbin`` section: get_compiling_cuda_version() may crash."""
    proc = subprocess.run([sys.executable, '-c', PROBE, MMCV_VERSION],
                          text=True, capture_output=True)
    if proc.returncode:
        return None, None
    with open(proc.stdout.strip(), 'rb') as f:
        return proc.stdout.strip(), b'.nv_fatbin' in f.read()


def unpack_and_patch(sdist, work, std):
    """A copy of the sdist in ``work`` (reused with its objects if an
    interrupted build left one), its C++ standard raised to ``std``."""
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


def find_cuobjdump(cuda_home):
    """The toolkit's cuobjdump, else one on PATH, else the copy triton (a
    dependency of torch's CUDA builds) ships; None if there is none."""
    candidates = [osp.join(cuda_home, 'bin', 'cuobjdump'),
                  shutil.which('cuobjdump')]
    spec = importlib.util.find_spec('triton')
    if spec is not None and spec.submodule_search_locations:
        candidates.append(osp.join(list(spec.submodule_search_locations)[0],
                                   'backends', 'nvidia', 'bin', 'cuobjdump'))
    return next((c for c in candidates if c and os.access(c, os.X_OK)),
                None)


def check_device_code(cuda_home, archs, path):
    """Every requested arch has device code (sm_XX) in the extension."""
    cuobjdump = find_cuobjdump(cuda_home)
    if cuobjdump is None:
        return log('cuobjdump not found: device code not checked')
    found = set(re.findall(r'\.sm_(\d+)\.',
                           run([cuobjdump, '--list-elf', path], True)))
    missing = [a for a in parse_archs(archs) if a not in found]
    listed = ', '.join('sm_' + a for a in sorted(found, key=int)) or 'none'
    if missing:
        raise InstallError(
            f'{path} has no device code for '
            f'{", ".join("sm_" + a for a in missing)} (found: {listed})')
    log(f'device code in {osp.basename(path)}: {listed}')


def cuda_env(args, env, torch_version, torch_cuda):
    """(CUDA toolkit root, TORCH_CUDA_ARCH_LIST, nvcc's CUDA version) with
    ``env`` set up for CUDA ops, or Nones for CPU ops only."""
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
    m = re.search(r'release ((\d+)\.\d+)', run(
        [osp.join(cuda_home, 'bin', 'nvcc'), '--version'], True))
    nvcc, nvcc_major = m.groups() if m else ('(unreadable)', 'that version')
    if nvcc_major != major:
        raise InstallError(
            f'nvcc in {cuda_home} is CUDA {nvcc} but torch {torch_version} '
            f'was built with CUDA {torch_cuda}: the majors must match; put a '
            f'CUDA {major}.x nvcc first on PATH (or set CUDA_HOME), or '
            f'install a torch built for CUDA {nvcc_major}')
    archs = (args.archs or os.environ.get('TORCH_CUDA_ARCH_LIST')
             or visible_gpu_archs() or DEFAULT_ARCHS)
    check_archs(cuda_home, nvcc, archs)
    extra = math_lib_includes(cuda_home)
    if extra:
        env['CPATH'] = os.pathsep.join(extra + (
            [env['CPATH']] if env.get('CPATH') else []))
        log(f'CUDA math headers from torch\'s nvidia packages: '
            f'{", ".join(extra)}')
    env.update(FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=archs,
               CUDA_HOME=cuda_home, PATH=osp.join(cuda_home, 'bin') +
               os.pathsep + env.get('PATH', ''))
    return cuda_home, archs, nvcc


def build_wheel(args, env, std, what, cache):
    """Build mmcv's wheel from the sdist into ``cache``; its path."""
    env['MAX_JOBS'] = str(args.jobs or int(env.get('MAX_JOBS') or 0) or
                          default_jobs(env['FORCE_CUDA'] == '1'))
    log(f'building {what}, C++{std}, MAX_JOBS={env["MAX_JOBS"]}')
    if args.build_dir:
        os.makedirs(args.build_dir, exist_ok=True)
    with contextlib.nullcontext(args.build_dir) if args.build_dir else \
            tempfile.TemporaryDirectory(prefix='build_mmcv_') as work:
        src = unpack_and_patch(mmcv_sdist(args.sdist), work, std)
        out = osp.join(work, 'wheel')
        shutil.rmtree(out, ignore_errors=True)
        # --no-build-isolation: mmcv compiles against the torch installed
        # here, not a fresh one pip would fetch.
        run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation',
             '--no-deps', '-w', out, src] + (['-v'] if args.verbose else []),
            env=env)
        built = glob.glob(osp.join(out, '*.whl'))[0]
        os.makedirs(cache, exist_ok=True)
        shutil.copyfile(built, osp.join(cache, osp.basename(built) + '.part'))
    wheel = osp.join(cache, osp.basename(built))
    os.replace(wheel + '.part', wheel)
    return wheel


def build(args):
    torch_version, torch_cuda, std = torch_info()
    env = dict(os.environ, MMCV_WITH_OPS='1')
    cuda_home, archs, nvcc = cuda_env(args, env, torch_version, torch_cuda)
    cuda = cuda_home is not None
    what = (f'mmcv {MMCV_VERSION} with CUDA ops (nvcc {nvcc}, '
            f'TORCH_CUDA_ARCH_LIST={archs})' if cuda else
            f'mmcv {MMCV_VERSION} with CPU ops')
    if not (args.force or args.wheel) and installed_ext()[1] == cuda:
        return log(f'{what} already installed in {sys.prefix}; --force '
                   'rebuilds')
    if args.check_only:
        raise InstallError(f'{what} is not installed in {sys.prefix}: build '
                           'it (without --check-only) or install a wheel '
                           'built for this torch (--wheel)')
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    key = '|'.join([MMCV_VERSION, tag, torch_version, torch_cuda if cuda
                    else 'cpu', archs or '', str(std)]).encode()
    cache = osp.join(CACHE, 'mmcv-wheels', f'mmcv-{MMCV_VERSION}-{tag}-torch'
                     f'{torch_version}-{hashlib.sha256(key).hexdigest()[:16]}')
    wheel = args.wheel or (None if args.force else next(
        iter(glob.glob(osp.join(cache, '*.whl'))), None)) or \
        build_wheel(args, env, std, f'{what} against torch {torch_version}',
                    cache)
    log(f'installing {wheel}')
    run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
         '--force-reinstall', '--no-index', wheel])
    path, has_cuda = installed_ext()
    if path and args.wheel and args.cuda != 'yes':
        # a prebuilt wheel needs no nvcc: take the kind it is
        cuda, cuda_home = has_cuda, cuda_home or find_cuda_home() or ''
        what = f'mmcv {MMCV_VERSION} with {"CUDA" if cuda else "CPU"} ops'
        archs = (args.archs or visible_gpu_archs()) if cuda else None
    if path is None or has_cuda != cuda:
        raise InstallError(f'the installed mmcv does not import with its '
                           f'{"CUDA " if cuda else ""}ops; see the log above')
    if cuda and archs:
        check_device_code(cuda_home, archs, path)
    if cuda:
        proc = subprocess.run([sys.executable, '-c', PROBE, MMCV_VERSION,
                               'cuda'], text=True, capture_output=True)
        log('get_compiling_cuda_version(): ' + proc.stdout.split()[-1] if
            proc.returncode == 0 else 'note: get_compiling_cuda_version() '
            f'failed (exit {proc.returncode}); the device code check stands')
    log(f'installed {what} in {sys.prefix}')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cuda', choices=['auto', 'yes', 'no'], default='auto',
                   help='CUDA ops (auto: with a CUDA torch and nvcc)')
    p.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST (default: that '
                   f'variable, the visible GPUs, "{DEFAULT_ARCHS}")')
    p.add_argument('--jobs', type=int, help='parallel jobs (MAX_JOBS)')
    p.add_argument('--sdist', help=f'mmcv-{MMCV_VERSION}.tar.gz to build')
    p.add_argument('--wheel', help='install this mmcv wheel instead')
    p.add_argument('--build-dir', help='build here and keep it (a second '
                   'run resumes an interrupted one)')
    p.add_argument('--verbose', action='store_true', help='pip wheel -v')
    p.add_argument('--check-only', action='store_true', help='only check')
    p.add_argument('--force', action='store_true', help='build even if '
                   'a matching mmcv is installed')
    return p.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    sys.exit(cli(lambda: build(args)))
