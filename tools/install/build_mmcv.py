#!/usr/bin/env python3
"""Build mmcv 2.1.0 with its ops against this interpreter's torch; install.

Run it with the Python of the environment to install into (``make setup``
and ``tools/install/install.sh`` do)::

    python tools/install/build_mmcv.py [--cuda auto|yes|no]
        [--archs "8.0;9.0+PTX"] [--jobs N] [--sdist mmcv-2.1.0.tar.gz]
        [--wheel mmcv-2.1.0-...whl] [--cache DIR] [--force]

mmcv publishes no wheel for current torch releases, so it is built from
its sdist. This script handles what a plain ``pip install mmcv==2.1.0``
gets wrong today:

- torch >= 2.14's headers stop with ``#error`` below C++20, while mmcv
  2.1.0's setup.py passes ``-std=c++17``: the standard torch's ATen.h asks
  for is patched into a copy of the sdist (never into an installed file).
- mmcv's setup.py imports ``pkg_resources``, which setuptools 81 removed:
  refused with a one-line error before anything is built.
- Without a visible GPU, ``FORCE_CUDA=1`` needs ``TORCH_CUDA_ARCH_LIST``;
  the default list covers A100 (8.0) and H100 (9.0), plus PTX for newer
  GPUs. CUDA 13 cannot build for sm_72 and older (V100 is sm_70: use a
  CUDA 12.x toolkit and a torch built for CUDA 12).
- nvcc's CUDA major version must equal the one torch was built with.
- Each nvcc process takes about 1.3 GB: parallel jobs are capped by the
  available memory as well as the cores.

The sdist (checked by its sha256) and built wheels are kept in
~/.cache/citymask; wheels are keyed by Python, torch (with its CUDA
build), the arch list and the C++ standard, so a second venv with the same
stack installs in seconds. Standard library only (plus the torch it builds
against): it runs before citymask's dependencies are installed.
"""
import argparse
import contextlib
import glob
import hashlib
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

MMCV_VERSION = '2.1.0'
# PyPI's mmcv-2.1.0.tar.gz
MMCV_SDIST_SHA256 = \
    'd387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f'
# A100, H100; +PTX lets newer GPUs (Blackwell) JIT-compile the sm_90 code.
DEFAULT_ARCHS = '8.0;9.0+PTX'
# Peak memory of one nvcc / cc1plus process on mmcv's sources (measured
# about 1.3 GB), with some headroom.
GB_PER_JOB = 1.5


class BuildError(Exception):
    """A problem the user has to fix; printed as one ``error:`` line."""


def log(msg):
    print(f'build_mmcv: {msg}', flush=True)


def run(cmd, **kwargs):
    """Run ``cmd`` and return its stdout (stderr goes to the console)."""
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE,
                          **kwargs).stdout


def check_setuptools():
    """mmcv 2.1.0's setup.py imports pkg_resources (gone in setuptools 81)."""
    try:
        import setuptools
        major = int(setuptools.__version__.split('.')[0])
    except ImportError:
        major = None
    if major is None or major >= 81:
        found = 'no setuptools' if major is None else \
            f'setuptools {setuptools.__version__}'
        raise BuildError(
            f'{found} in {sys.prefix}: mmcv {MMCV_VERSION}\'s setup.py '
            'imports pkg_resources, which setuptools 81 removed; run '
            f'`{sys.executable} -m pip install "setuptools>=77.0.3,<81"` '
            'first')


def torch_info():
    """Version, CUDA version and the C++ standard torch's headers need."""
    try:
        import torch
    except ImportError:
        raise BuildError(f'torch is not installed in {sys.prefix}: install '
                         'torch first (mmcv is built against it)')
    aten = osp.join(osp.dirname(torch.__file__), 'include', 'ATen', 'ATen.h')
    std = 17
    if osp.exists(aten):
        with open(aten) as f:
            m = re.search(r'#error C\+\+(\d\d) or later', f.read())
        if m:
            std = max(std, int(m.group(1)))
    return torch.__version__, torch.version.cuda, std


def find_cuda_home():
    """The CUDA toolkit root, or None when there is no nvcc.

    torch derives CUDA_HOME from ``which nvcc`` (its parent's parent), which
    is wrong when nvcc on the PATH is a wrapper script (e.g.
    /usr/local/bin/nvcc): then headers and libraries are not found. nvcc
    itself knows its root (``TOP`` in ``--dryrun``).
    """
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        home = os.environ.get(var)
        if home and osp.exists(osp.join(home, 'bin', 'nvcc')):
            return home
    nvcc = shutil.which('nvcc')
    if nvcc is None:
        home = '/usr/local/cuda'
        return home if osp.exists(osp.join(home, 'bin', 'nvcc')) else None
    home = osp.dirname(osp.dirname(osp.realpath(nvcc)))
    if osp.exists(osp.join(home, 'include', 'cuda_runtime_api.h')):
        return home
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [nvcc, '--dryrun', '-c', '-x', 'cu', os.devnull, '-o',
             osp.join(tmp, 'x.o')], text=True, capture_output=True)
    m = re.search(r'^#\$ TOP=(.+)$', out.stdout + out.stderr, re.M)
    return osp.normpath(m.group(1).strip()) if m else home


def nvcc_version(cuda_home):
    out = run([osp.join(cuda_home, 'bin', 'nvcc'), '--version'])
    m = re.search(r'release (\d+)\.(\d+)', out)
    if not m:
        raise BuildError(f'cannot read the CUDA version of '
                         f'{cuda_home}/bin/nvcc from `nvcc --version`')
    return f'{m.group(1)}.{m.group(2)}'


def math_lib_includes(cuda_home):
    """Include folders for the CUDA math headers torch's ATen/cuda includes.

    torch's CUDA headers include cusparse.h, cublas_v2.h and cusolverDn.h. A
    toolkit installed without the math libraries lacks them; a CUDA build of
    torch from PyPI ships them in its nvidia-* packages
    (site-packages/nvidia/*/include), which are then searched after the
    toolkit's own include folder (CPATH).
    """
    headers = ('cusparse.h', 'cublas_v2.h', 'cusolverDn.h')
    if all(osp.exists(osp.join(cuda_home, 'include', h)) for h in headers):
        return []
    import torch
    site = osp.dirname(osp.dirname(torch.__file__))
    dirs = sorted(d for d in glob.glob(osp.join(site, 'nvidia', '*',
                                                'include'))
                  if any(osp.exists(osp.join(d, h)) for h in headers))
    missing = [h for h in headers
               if not any(osp.exists(osp.join(d, h))
                          for d in dirs + [osp.join(cuda_home, 'include')])]
    if missing:
        raise BuildError(
            f'{", ".join(missing)} not found in {cuda_home}/include nor in '
            'torch\'s nvidia packages: torch\'s CUDA headers include them; '
            'install the CUDA toolkit\'s math libraries (cusparse, cublas, '
            'cusolver headers)')
    return dirs


def visible_gpu_archs():
    """'8.0;9.0' for the GPUs torch sees, or None without one."""
    import torch
    if not torch.cuda.is_available():
        return None
    caps = sorted({torch.cuda.get_device_capability(i)
                   for i in range(torch.cuda.device_count())})
    return ';'.join(f'{major}.{minor}' for major, minor in caps)


def parse_archs(archs):
    """'8.0;9.0+PTX' -> ['80', '90']; accepts spaces as separators."""
    out = []
    for item in re.split(r'[;\s,]+', archs.strip()):
        m = re.fullmatch(r'(\d+)\.(\d+)a?(\+PTX)?', item)
        if not m:
            raise BuildError(f'bad CUDA arch {item!r} in {archs!r}: use '
                             'compute capabilities like "8.0;9.0+PTX"')
        out.append(m.group(1) + m.group(2))
    return out


def check_archs(cuda_home, cuda_version, archs):
    """Refuse archs this nvcc cannot build for, naming what to do."""
    out = run([osp.join(cuda_home, 'bin', 'nvcc'), '--list-gpu-code'])
    supported = set(re.findall(r'sm_(\d+)', out))
    bad = [a for a in parse_archs(archs) if a not in supported]
    if bad:
        lowest = min(supported, key=int)
        raise BuildError(
            f'nvcc {cuda_version} cannot build for '
            f'{", ".join("sm_" + a for a in bad)} (its oldest is '
            f'sm_{lowest}): pick other archs with CUDA_ARCHS / --archs, or '
            'for older GPUs (V100 is sm_70) use a CUDA 12.x toolkit with a '
            'torch built for CUDA 12')


def default_jobs(cuda):
    """Parallel compile jobs: cores, capped by memory when nvcc runs."""
    cores = len(os.sched_getaffinity(0))
    avail = None
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    avail = int(line.split()[1]) / 2**20  # GiB
    except OSError:
        pass
    if avail is None:
        return cores
    per_job = GB_PER_JOB if cuda else 1.0
    return max(1, min(cores, int(avail / per_job)))


def installed_ok(cuda):
    """True if mmcv 2.1.0's ops (CUDA ops if ``cuda``) load with this torch.

    The extension is loaded on its own, in a new interpreter, after torch:
    mmcv's Python dependencies (OpenCV, mmengine...) may not be installed
    yet, and an extension built for another torch fails here.
    """
    path = ext_path()
    if path is None:
        return False
    code = ('import sys, importlib.util as u, importlib.metadata as m, torch'
            f'\nassert m.version("mmcv") == {MMCV_VERSION!r}'
            '\ns = u.spec_from_file_location("mmcv._ext", sys.argv[1])'
            '\next = u.module_from_spec(s); s.loader.exec_module(ext)'
            '\nassert hasattr(ext, "nms")')
    if subprocess.run([sys.executable, '-c', code, path],
                      capture_output=True).returncode != 0:
        return False
    return built_with_cuda() == cuda


def built_with_cuda():
    """Whether the installed mmcv extension holds CUDA device code.

    Read from the shared library (its ``.nv_fatbin`` section), not by
    calling ``get_compiling_cuda_version()``, which crashes the process on
    some machines.
    """
    path = ext_path()
    if path is None:
        return False
    with open(path, 'rb') as f:
        return b'.nv_fatbin' in f.read()


def ext_path():
    code = ('import importlib.util as u; s = u.find_spec("mmcv"); '
            'print(s.submodule_search_locations[0] if s else "")')
    pkg = subprocess.run([sys.executable, '-c', code], text=True,
                         capture_output=True).stdout.strip()
    found = glob.glob(osp.join(pkg, '_ext*.so')) if pkg else []
    return found[0] if found else None


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def download_sdist(pip_args=()):
    """Path of the mmcv sdist in the cache; downloaded with pip if absent.

    ``pip download`` of an sdist runs its setup.py, which imports
    pkg_resources: its build env gets setuptools < 81 (pip >= 25.3 reads
    --build-constraint for that, older pips the constraints).
    """
    cached = osp.join(osp.dirname(default_cache()),
                      f'mmcv-{MMCV_VERSION}.tar.gz')
    if osp.isfile(cached) and sha256(cached) == MMCV_SDIST_SHA256:
        return cached
    log(f'downloading the mmcv {MMCV_VERSION} sdist')
    os.makedirs(osp.dirname(cached), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cons = osp.join(tmp, 'constraints.txt')
        with open(cons, 'w') as f:
            f.write('setuptools<81\n')
        env = dict(os.environ, PIP_CONSTRAINT=cons, PIP_BUILD_CONSTRAINT=cons)
        subprocess.run([sys.executable, '-m', 'pip', 'download', '-q',
                        '--no-deps', '--no-binary', ':all:',
                        f'mmcv=={MMCV_VERSION}', '-d', tmp] + list(pip_args),
                       check=True, env=env)
        path = osp.join(tmp, f'mmcv-{MMCV_VERSION}.tar.gz')
        if not osp.isfile(path):
            raise BuildError(f'pip did not download mmcv-{MMCV_VERSION}.'
                             'tar.gz')
        check_sdist(path)
        shutil.copyfile(path, cached + '.part')
        os.replace(cached + '.part', cached)
    return cached


def check_sdist(path):
    """Refuse anything but PyPI's mmcv 2.1.0 sdist (by its sha256)."""
    if not osp.isfile(path):
        raise BuildError(f'no mmcv sdist at {path}')
    if sha256(path) != MMCV_SDIST_SHA256:
        raise BuildError(f'{path} is not PyPI\'s mmcv-{MMCV_VERSION}.tar.gz '
                         f'(sha256 differs from {MMCV_SDIST_SHA256})')


def unpack_and_patch(sdist, work, std):
    """Extract a copy of the sdist; patch its C++ standard if needed.

    A copy left in ``work`` by an interrupted build is reused (its objects
    too: the build is incremental).
    """
    src = osp.join(work, f'mmcv-{MMCV_VERSION}')
    setup_py = osp.join(src, 'setup.py')
    if not osp.isfile(setup_py):
        with tarfile.open(sdist) as tar:
            kwargs = {'filter': 'data'} if hasattr(tarfile, 'data_filter') \
                else {}
            tar.extractall(work, **kwargs)
    if not osp.isfile(setup_py):
        raise BuildError(f'{sdist} is not the mmcv {MMCV_VERSION} sdist')
    with open(setup_py) as f:
        patched = f"'-std=c++{std}'" in f.read()
    if std > 17 and not patched:
        # mmcv 2.1.0's setup.py hard-codes -std=c++17 for g++ and nvcc;
        # torch >= 2.14's ATen.h has `#error C++20 or later ... required`.
        # Patched in this throw-away copy only.
        with open(setup_py) as f:
            text = f.read()
        n = text.count("'-std=c++17'")
        if n == 0:
            raise BuildError(f'{setup_py} has no -std=c++17 to raise to '
                             f'C++{std}: not the expected mmcv sdist')
        with open(setup_py, 'w') as f:
            f.write(text.replace("'-std=c++17'", f"'-std=c++{std}'"))
        log(f'patched {n} x -std=c++17 -> -std=c++{std} in the copy '
            f'(torch\'s ATen.h requires C++{std})')
    return src


def cache_key(torch_version, cuda, archs, std):
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    what = f'{MMCV_VERSION}|{tag}|{torch_version}|{cuda}|{archs}|{std}'
    digest = hashlib.sha256(what.encode()).hexdigest()[:16]
    return f'mmcv-{MMCV_VERSION}-{tag}-torch{torch_version}-{digest}'


def default_cache():
    base = os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache')
    return osp.join(base, 'citymask', 'mmcv-wheels')


def find_cuobjdump(cuda_home):
    """The toolkit's cuobjdump, else one on PATH, else the copy triton ships
    (torch's CUDA builds depend on triton on Linux); None if there is none.
    A toolkit installed without its binary utilities (as on the
    development machines) has nvcc but no cuobjdump."""
    import importlib.util
    candidates = [osp.join(cuda_home, 'bin', 'cuobjdump'),
                  shutil.which('cuobjdump')]
    spec = importlib.util.find_spec('triton')
    if spec is not None and spec.submodule_search_locations:
        candidates.append(
            osp.join(list(spec.submodule_search_locations)[0], 'backends',
                     'nvidia', 'bin', 'cuobjdump'))
    return next((c for c in candidates if c and os.access(c, os.X_OK)),
                None)


def check_device_code(cuda_home, archs, path=None):
    """Every requested arch has device code (sm_XX) in the extension (the
    installed mmcv's unless ``path``)."""
    cuobjdump = find_cuobjdump(cuda_home)
    path = path or ext_path()
    if cuobjdump is None or path is None:
        log('cuobjdump not found: device code not checked')
        return
    out = run([cuobjdump, '--list-elf', path])
    found = set(re.findall(r'\.sm_(\d+)\.', out))
    missing = [a for a in parse_archs(archs) if a not in found]
    if missing:
        raise BuildError(
            f'{path} has no device code for '
            f'{", ".join("sm_" + a for a in missing)} (found: '
            f'{", ".join("sm_" + a for a in sorted(found)) or "none"})')
    log(f'device code in {osp.basename(path)}: '
        f'{", ".join("sm_" + a for a in sorted(found, key=int))}')


def build(args):
    check_setuptools()
    torch_version, torch_cuda, std = torch_info()

    cuda = False
    cuda_home = None
    if args.cuda != 'no':
        cuda_home = find_cuda_home()
        if torch_cuda and cuda_home:
            cuda = True
        elif args.cuda == 'yes':
            if not torch_cuda:
                raise BuildError(
                    f'torch {torch_version} is a CPU build: install a CUDA '
                    'build of torch for mmcv\'s CUDA ops (or set CUDA=no)')
            raise BuildError(
                f'no nvcc found (PATH, CUDA_HOME): put the CUDA '
                f'{torch_cuda.split(".")[0]}.x toolkit\'s bin on PATH or set '
                'CUDA_HOME (or set CUDA=no for the CPU ops only)')
        elif torch_cuda:
            log(f'note: torch {torch_version} is a CUDA build but no nvcc '
                f'was found: building CPU ops only; for CUDA ops put the '
                f'CUDA {torch_cuda.split(".")[0]}.x toolkit on PATH or set '
                'CUDA_HOME, then run again with --force (make setup '
                'CUDA=yes)')
    archs = ''
    env = dict(os.environ, MMCV_WITH_OPS='1')
    if cuda:
        nvcc = nvcc_version(cuda_home)
        if nvcc.split('.')[0] != torch_cuda.split('.')[0]:
            raise BuildError(
                f'nvcc in {cuda_home} is CUDA {nvcc} but torch '
                f'{torch_version} was built with CUDA {torch_cuda}: the '
                'majors must match; put a CUDA '
                f'{torch_cuda.split(".")[0]}.x nvcc first on PATH (or set '
                'CUDA_HOME), or install a torch built for CUDA '
                f'{nvcc.split(".")[0]}')
        archs = (args.archs or os.environ.get('TORCH_CUDA_ARCH_LIST')
                 or visible_gpu_archs() or DEFAULT_ARCHS)
        check_archs(cuda_home, nvcc, archs)
        extra = math_lib_includes(cuda_home)
        if extra:
            env['CPATH'] = os.pathsep.join(
                extra + [env['CPATH']] if env.get('CPATH') else extra)
            log(f'CUDA math headers from torch\'s nvidia packages: '
                f'{", ".join(extra)}')
        env.update(FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=archs,
                   CUDA_HOME=cuda_home,
                   PATH=osp.join(cuda_home, 'bin') + os.pathsep +
                   env.get('PATH', ''))
    else:
        # A visible GPU would make mmcv's setup.py build CUDA ops anyway.
        env.update(FORCE_CUDA='0', CUDA_VISIBLE_DEVICES='')
    jobs = args.jobs or int(os.environ.get('MAX_JOBS') or 0) or \
        default_jobs(cuda)
    env['MAX_JOBS'] = str(jobs)
    what = (f'mmcv {MMCV_VERSION} with CUDA ops (nvcc {nvcc}, '
            f'TORCH_CUDA_ARCH_LIST={archs})' if cuda else
            f'mmcv {MMCV_VERSION} with CPU ops')

    if not args.force and not args.wheel and installed_ok(cuda):
        log(f'{what} already installed in {sys.prefix}; --force rebuilds')
        return
    if args.check_only:
        raise BuildError(f'{what} is not installed in {sys.prefix}: build '
                         'it (without --check-only) or install a wheel '
                         'built for this torch (--wheel)')
    cache = args.cache if args.cache is not None else default_cache()
    key = cache_key(torch_version, torch_cuda if cuda else 'cpu', archs,
                    std)
    cached = glob.glob(osp.join(cache, key, '*.whl')) if cache else []
    if args.build_dir:
        os.makedirs(args.build_dir, exist_ok=True)
        work_dir = contextlib.nullcontext(args.build_dir)
    else:
        work_dir = tempfile.TemporaryDirectory(prefix='build_mmcv_')
    with work_dir as work:
        if args.wheel:
            wheel = args.wheel
            log(f'installing the given wheel {wheel}')
        elif cached and not args.force:
            wheel = cached[0]
            log(f'installing the cached build {wheel}')
        else:
            log(f'building {what} against torch {torch_version}, C++{std}, '
                f'MAX_JOBS={jobs}')
            if args.sdist:
                check_sdist(args.sdist)
            src = unpack_and_patch(args.sdist or download_sdist(), work,
                                   std)
            out = osp.join(work, 'wheel')
            shutil.rmtree(out, ignore_errors=True)
            # --no-build-isolation: mmcv compiles against the torch
            # installed here, not a fresh one pip would fetch.
            subprocess.run([sys.executable, '-m', 'pip', 'wheel',
                            '--no-build-isolation', '--no-deps', '-w', out,
                            src] + (['-v'] if args.verbose else []),
                           check=True, env=env)
            wheel = glob.glob(osp.join(out, '*.whl'))[0]
            if cache:
                dest = osp.join(cache, key)
                os.makedirs(dest, exist_ok=True)
                tmp = osp.join(dest, osp.basename(wheel) + '.part')
                shutil.copyfile(wheel, tmp)
                os.replace(tmp, osp.join(dest, osp.basename(wheel)))
                log(f'cached the wheel in {dest}')
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q',
                        '--no-deps', '--force-reinstall', '--no-index',
                        wheel], check=True)
    if args.wheel and args.cuda != 'yes':
        # a prebuilt wheel needs no nvcc: take the kind it is
        cuda = built_with_cuda()
        what = f'mmcv {MMCV_VERSION} with {"CUDA" if cuda else "CPU"} ops'
        if cuda:
            cuda_home = cuda_home or find_cuda_home() or ''
            archs = args.archs or visible_gpu_archs() or ''
    if not installed_ok(cuda):
        raise BuildError(f'the installed mmcv does not import with its '
                         f'{"CUDA " if cuda else ""}ops; see the log above')
    if cuda:
        if archs:
            check_device_code(cuda_home, archs)
        report_cuda_version()
    log(f'installed {what} in {sys.prefix}')


def report_cuda_version():
    """Log what mmcv.ops.get_compiling_cuda_version() returns (the
    extension's function it wraps, so mmcv's Python dependencies need not
    be installed yet). In a child process: it has crashed on one machine."""
    code = ('import sys, importlib.util as u, torch\n'
            's = u.spec_from_file_location("mmcv._ext", sys.argv[1])\n'
            'ext = u.module_from_spec(s); s.loader.exec_module(ext)\n'
            'print(ext.get_compiling_cuda_version())')
    proc = subprocess.run([sys.executable, '-c', code, ext_path()],
                          text=True, capture_output=True)
    if proc.returncode == 0:
        log('get_compiling_cuda_version(): ' + proc.stdout.strip())
    else:
        log(f'note: get_compiling_cuda_version() failed (exit '
            f'{proc.returncode}); the device code check above stands')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cuda', choices=['auto', 'yes', 'no'], default='auto',
                   help='CUDA ops: auto = when torch is a CUDA build and '
                   'nvcc is found')
    p.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST (default: that '
                   'variable, else the visible GPUs, else '
                   f'"{DEFAULT_ARCHS}")')
    p.add_argument('--jobs', type=int, help='parallel compile jobs '
                   '(default: MAX_JOBS, else cores capped by memory at '
                   f'{GB_PER_JOB} GB per nvcc)')
    p.add_argument('--sdist', help=f'mmcv-{MMCV_VERSION}.tar.gz to build '
                   '(default: download it with pip)')
    p.add_argument('--wheel', help='install this prebuilt mmcv wheel '
                   'instead of building (it must match torch and CUDA)')
    p.add_argument('--build-dir', help='build here and keep it (a second '
                   'run goes on where an interrupted one stopped; default: '
                   'a temporary folder)')
    p.add_argument('--cache', help='wheel cache folder ("" for none; '
                   f'default {default_cache()})')
    p.add_argument('--verbose', action='store_true',
                   help='show every compile command (pip wheel -v)')
    p.add_argument('--check-only', action='store_true',
                   help='only check that a matching mmcv is installed')
    p.add_argument('--force', action='store_true',
                   help='build even if a matching mmcv is installed')
    return p.parse_args(argv)


def run_cli(work, errors=(BuildError, )) -> int:
    """``work()`` as a command's exit status (also for make_kit.py): an
    expected error as one ``error:`` line (2), a failed command by its
    first words (1; its own output is above)."""
    try:
        work()
    except errors as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f'error: {" ".join(map(str, e.cmd[:6]))} ... failed (exit '
              f'{e.returncode}); see the output above', file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    args = parse_args(argv)
    return run_cli(lambda: build(args))


if __name__ == '__main__':
    sys.exit(main())
