#!/usr/bin/env python3
"""Build mmcv 2.1.0 with its ops against this interpreter's torch; install.

Run it with the Python of the environment to install into (``make setup``
and ``offline_install.py`` do)::

    python tools/install/build_mmcv.py [--cuda auto|yes|no]
        [--archs "8.0;9.0+PTX"] [--jobs N] [--build-dir DIR] [--force]
        [--verbose] [--sdist mmcv-2.1.0.tar.gz] [--wheel mmcv-...whl]

mmcv has no wheel for current torch, and a plain ``pip install`` of its
sdist fails on: torch >= 2.14's headers needing C++20 (the standard
torch's ATen.h asks for is patched into a copy of the sdist), setuptools 81
lacking the ``pkg_resources`` its setup.py imports (refused in one line),
``FORCE_CUDA=1`` without a GPU needing ``TORCH_CUDA_ARCH_LIST``, nvcc of
another CUDA major than torch's, and about 1.3 GB per nvcc process (jobs
are capped by memory). The installed extension must load against torch and
hold device code for every requested arch. The sdist and the built wheels
are cached in ~/.cache/citymask (wheels keyed by Python, torch build,
archs and C++ standard). Standard library only, plus the torch it builds
against.
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
# Peak memory of one nvcc / cc1plus process on mmcv's sources (about
# 1.3 GB), with some headroom.
GB_PER_JOB = 1.5
# Loads the installed extension alone in a new interpreter, after torch
# (mmcv's own dependencies may not be installed yet), and prints its path;
# with a second argument also get_compiling_cuda_version(), which has
# crashed the process on some machines.
PROBE = '''import sys, glob, importlib.util as u, importlib.metadata as m
import torch
assert m.version("mmcv") == sys.argv[1]
pkg = u.find_spec("mmcv").submodule_search_locations[0]
s = u.spec_from_file_location("mmcv._ext", glob.glob(pkg + "/_ext*.so")[0])
ext = u.module_from_spec(s)
s.loader.exec_module(ext)
assert hasattr(ext, "nms")
print(s.origin)
if sys.argv[2:]:
    print(ext.get_compiling_cuda_version())
'''


def check_setuptools():
    """mmcv 2.1.0's setup.py imports pkg_resources (gone in setuptools 81)."""
    try:
        import setuptools
        found = f'setuptools {setuptools.__version__}'
        if int(setuptools.__version__.split('.')[0]) < 81:
            return
    except ImportError:
        found = 'no setuptools'
    raise InstallError(
        f'{found} in {sys.prefix}: mmcv {MMCV_VERSION}\'s setup.py imports '
        'pkg_resources, which setuptools 81 removed; run `'
        f'{sys.executable} -m pip install "setuptools>=77.0.3,<81"` first')


def torch_info():
    """Version, CUDA version and the C++ standard torch's headers need."""
    try:
        import torch
    except ImportError:
        raise InstallError(f'torch is not installed in {sys.prefix}: '
                           'install torch first (mmcv is built against it)')
    aten = osp.join(osp.dirname(torch.__file__), 'include', 'ATen', 'ATen.h')
    m = None
    if osp.exists(aten):
        with open(aten) as f:
            m = re.search(r'#error C\+\+(\d\d) or later', f.read())
    return torch.__version__, torch.version.cuda, \
        max(17, int(m.group(1)) if m else 17)


def find_cuda_home():
    """The CUDA toolkit root, or None when there is no nvcc.

    torch derives it from ``which nvcc`` (its parent's parent), which is
    wrong when nvcc on the PATH is a wrapper script; nvcc itself knows its
    root (``TOP`` in ``--dryrun``).
    """
    home = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH')
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
    """Include folders for the CUDA math headers torch's ATen/cuda includes.

    A toolkit installed without its math libraries lacks them; a CUDA build
    of torch from PyPI ships them in its nvidia-* packages, which are then
    searched after the toolkit's own headers (CPATH).
    """
    headers = ('cusparse.h', 'cublas_v2.h', 'cusolverDn.h')
    dirs = [osp.join(cuda_home, 'include')]
    if not all(osp.exists(osp.join(dirs[0], h)) for h in headers):
        import torch
        dirs += [d for d in sorted(glob.glob(osp.join(osp.dirname(
            osp.dirname(torch.__file__)), 'nvidia', '*', 'include')))
            if any(osp.exists(osp.join(d, h)) for h in headers)]
    missing = [h for h in headers
               if not any(osp.exists(osp.join(d, h)) for d in dirs)]
    if missing:
        raise InstallError(
            f'{", ".join(missing)} not found in {dirs[0]} nor in torch\'s '
            'nvidia packages: install the CUDA toolkit\'s math libraries '
            '(torch\'s CUDA headers include them)')
    return dirs[1:]


def visible_gpu_archs():
    """'8.0;9.0' for the GPUs torch sees, or None without one."""
    import torch
    if not torch.cuda.is_available():
        return None
    return ';'.join('%d.%d' % c for c in sorted(
        {torch.cuda.get_device_capability(i)
         for i in range(torch.cuda.device_count())}))


def parse_archs(archs):
    """'8.0;9.0+PTX' -> ['80', '90']; accepts spaces as separators."""
    out = []
    for item in re.split(r'[;\s,]+', archs.strip()):
        m = re.fullmatch(r'(\d+)\.(\d+)a?(\+PTX)?', item)
        if not m:
            raise InstallError(f'bad CUDA arch {item!r} in {archs!r}: use '
                               'compute capabilities like "8.0;9.0+PTX"')
        out.append(m.group(1) + m.group(2))
    return out


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
    with contextlib.suppress(OSError), open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                gib = int(line.split()[1]) / 2**20
                jobs = min(jobs, int(gib / (GB_PER_JOB if cuda else 1.0)))
    return max(1, jobs)


def installed_ext():
    """Path of the installed mmcv 2.1.0 extension if it loads with this
    torch (one built for another torch does not), else None."""
    proc = subprocess.run([sys.executable, '-c', PROBE, MMCV_VERSION],
                          text=True, capture_output=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def has_device_code(path):
    """Whether the extension holds CUDA device code (``.nv_fatbin``); read
    from the file, as get_compiling_cuda_version() may crash."""
    with open(path, 'rb') as f:
        return b'.nv_fatbin' in f.read()


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


def cache_key(torch_version, cuda, archs, std):
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    what = f'{MMCV_VERSION}|{tag}|{torch_version}|{cuda}|{archs}|{std}'
    digest = hashlib.sha256(what.encode()).hexdigest()[:16]
    return f'mmcv-{MMCV_VERSION}-{tag}-torch{torch_version}-{digest}'


def find_cuobjdump(cuda_home):
    """The toolkit's cuobjdump, else one on PATH, else the copy triton ships
    (torch's CUDA builds depend on triton on Linux); None if there is none:
    a toolkit installed without its binary utilities has nvcc only."""
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


def cuda_setup(args, torch_version, torch_cuda):
    """The CUDA toolkit root when mmcv gets CUDA ops, else None."""
    if args.cuda == 'no':
        return None
    cuda_home = find_cuda_home()
    if torch_cuda and cuda_home:
        return cuda_home
    major = torch_cuda and torch_cuda.split('.')[0]
    if args.cuda == 'yes' and not torch_cuda:
        raise InstallError(
            f'torch {torch_version} is a CPU build: install a CUDA build of '
            'torch for mmcv\'s CUDA ops (or set CUDA=no)')
    if args.cuda == 'yes':
        raise InstallError(
            f'no nvcc found (PATH, CUDA_HOME): put the CUDA {major}.x '
            'toolkit\'s bin on PATH or set CUDA_HOME (or set CUDA=no for the '
            'CPU ops only)')
    if torch_cuda:
        log(f'note: torch {torch_version} is a CUDA build but no nvcc was '
            f'found: building CPU ops only; for CUDA ops put the CUDA '
            f'{major}.x toolkit on PATH or set CUDA_HOME, then run again '
            'with --force (make setup CUDA=yes)')


def build_env(args, cuda_home, torch_version, torch_cuda):
    """(environment for mmcv's setup.py, TORCH_CUDA_ARCH_LIST, what)."""
    env = dict(os.environ, MMCV_WITH_OPS='1')
    if cuda_home is None:
        # A visible GPU would make mmcv's setup.py build CUDA ops anyway.
        env.update(FORCE_CUDA='0', CUDA_VISIBLE_DEVICES='')
        return env, '', f'mmcv {MMCV_VERSION} with CPU ops'
    m = re.search(r'release ((\d+)\.\d+)', run(
        [osp.join(cuda_home, 'bin', 'nvcc'), '--version'], True))
    nvcc, major = m.groups() if m else ('(unreadable)', 'that version')
    if major != torch_cuda.split('.')[0]:
        raise InstallError(
            f'nvcc in {cuda_home} is CUDA {nvcc} but torch {torch_version} '
            f'was built with CUDA {torch_cuda}: the majors must match; put a '
            f'CUDA {torch_cuda.split(".")[0]}.x nvcc first on PATH (or set '
            f'CUDA_HOME), or install a torch built for CUDA {major}')
    archs = (args.archs or os.environ.get('TORCH_CUDA_ARCH_LIST')
             or visible_gpu_archs() or DEFAULT_ARCHS)
    check_archs(cuda_home, nvcc, archs)
    extra = math_lib_includes(cuda_home)
    if extra:
        env['CPATH'] = os.pathsep.join(extra + [env['CPATH']] if
                                       env.get('CPATH') else extra)
        log(f'CUDA math headers from torch\'s nvidia packages: '
            f'{", ".join(extra)}')
    env.update(FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=archs,
               CUDA_HOME=cuda_home, PATH=osp.join(cuda_home, 'bin') +
               os.pathsep + env.get('PATH', ''))
    return env, archs, (f'mmcv {MMCV_VERSION} with CUDA ops (nvcc {nvcc}, '
                        f'TORCH_CUDA_ARCH_LIST={archs})')


def build(args):
    check_setuptools()
    torch_version, torch_cuda, std = torch_info()
    cuda_home = cuda_setup(args, torch_version, torch_cuda)
    cuda = cuda_home is not None
    env, archs, what = build_env(args, cuda_home, torch_version, torch_cuda)
    env['MAX_JOBS'] = str(args.jobs or int(os.environ.get('MAX_JOBS') or 0)
                          or default_jobs(cuda))
    path = None if args.force or args.wheel else installed_ext()
    if path and has_device_code(path) == cuda:
        return log(f'{what} already installed in {sys.prefix}; --force '
                   'rebuilds')
    if args.check_only:
        raise InstallError(f'{what} is not installed in {sys.prefix}: build '
                           'it (without --check-only) or install a wheel '
                           'built for this torch (--wheel)')
    cache = osp.join(CACHE, 'mmcv-wheels', cache_key(
        torch_version, torch_cuda if cuda else 'cpu', archs, std))
    wheel = args.wheel or (None if args.force else next(
        iter(glob.glob(osp.join(cache, '*.whl'))), None))
    if args.build_dir:
        os.makedirs(args.build_dir, exist_ok=True)
    with contextlib.nullcontext(args.build_dir) if args.build_dir else \
            tempfile.TemporaryDirectory(prefix='build_mmcv_') as work:
        if wheel is None:
            log(f'building {what} against torch {torch_version}, C++{std}, '
                f'MAX_JOBS={env["MAX_JOBS"]}')
            src = unpack_and_patch(mmcv_sdist(args.sdist), work, std)
            out = osp.join(work, 'wheel')
            shutil.rmtree(out, ignore_errors=True)
            # --no-build-isolation: mmcv compiles against the torch
            # installed here, not a fresh one pip would fetch.
            run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation',
                 '--no-deps', '-w', out, src] +
                (['-v'] if args.verbose else []), env=env)
            built = glob.glob(osp.join(out, '*.whl'))[0]
            wheel = osp.join(cache, osp.basename(built))
            os.makedirs(cache, exist_ok=True)
            shutil.copyfile(built, wheel + '.part')
            os.replace(wheel + '.part', wheel)
        log(f'installing {wheel}')
        run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
             '--force-reinstall', '--no-index', wheel])
    path = installed_ext()
    if path and args.wheel and args.cuda != 'yes':
        # a prebuilt wheel needs no nvcc: take the kind it is
        cuda = has_device_code(path)
        what = f'mmcv {MMCV_VERSION} with {"CUDA" if cuda else "CPU"} ops'
        archs = (args.archs or visible_gpu_archs() or '') if cuda else ''
        cuda_home = cuda_home or find_cuda_home() or ''
    if path is None or has_device_code(path) != cuda:
        raise InstallError(f'the installed mmcv does not import with its '
                           f'{"CUDA " if cuda else ""}ops; see the log above')
    if archs:
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
                   help='CUDA ops (auto: if torch is a CUDA build and nvcc '
                   'is found)')
    p.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST (default: that '
                   f'variable, the visible GPUs, "{DEFAULT_ARCHS}")')
    p.add_argument('--jobs', type=int, help='parallel compile jobs (default:'
                   f' MAX_JOBS, cores capped at {GB_PER_JOB} GB per nvcc)')
    p.add_argument('--sdist', help=f'mmcv-{MMCV_VERSION}.tar.gz to build '
                   '(default: download it with pip)')
    p.add_argument('--wheel', help='install this prebuilt mmcv wheel (built '
                   'for this torch and CUDA) instead of building')
    p.add_argument('--build-dir', help='build here and keep it (a second '
                   'run resumes an interrupted one)')
    p.add_argument('--verbose', action='store_true',
                   help='show every compile command (pip wheel -v)')
    p.add_argument('--check-only', action='store_true',
                   help='only check that a matching mmcv is installed')
    p.add_argument('--force', action='store_true',
                   help='build even if a matching mmcv is installed')
    return p.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    sys.exit(cli(lambda: build(args)))
