#!/usr/bin/env python3
"""Install citymask from a kit (tools/install/make_kit.py) without an index.

On the target machine, in the repository::

    python3 tools/install/offline_install.py KIT [--venv .venv]
        [--python python3] [--cuda auto|yes|no] [--archs "9.0"] [--jobs N]

Building mmcv's CUDA ops takes minutes; to keep the install running when
the shell ends, start it with ``nohup`` and follow its log::

    nohup python3 tools/install/offline_install.py KIT > install.log 2>&1 &
    tail -f install.log   # ends with "done: ..." or one "error: ..." line

Steps: (1) a venv (``--venv``) on top of ``--python``'s packages: the
torch, numpy, OpenCV... the kit was made without stay where they are, and
the kit's packages (e.g. setuptools < 81) take precedence in the venv;
(2) check that the packages the kit counts on are there; (3) ``pip install
--no-index --no-deps`` of the kit's wheels (the resolved set); (4) mmcv
2.1.0: the kit's wheel, or built from the kit's sdist by build_mmcv.py
against the torch found, with CUDA ops for the visible GPUs unless
``--archs``; (5) citymask itself (editable) and ``pip check``; (6) a smoke
test (mmcv's nms on the GPU against the CPU when there is a GPU), then the
set-up stamp ``make test`` / ``make demo`` look for.
"""
import argparse
import glob
import json
import os.path as osp
import re
import subprocess
import sys
import time

from _common import OPENCV_FLAVOURS, InstallError, cli, log, run

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
SMOKE = '''
import citymask, mmdet, mmcv, torch
from mmcv.ops import RoIAlign, nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                      [20., 20., 30., 30.]])
scores = torch.tensor([0.9, 0.8, 0.7])
keep_cpu = nms(boxes, scores, 0.5)[1]
where = 'CPU'
if torch.cuda.is_available():
    keep = nms(boxes.cuda(), scores.cuda(), 0.5)[1].cpu()
    assert keep.tolist() == keep_cpu.tolist(), (keep, keep_cpu)
    where = 'CPU and ' + torch.cuda.get_device_name(0)
print(f'smoke test: mmcv {mmcv.__version__} nms on {where}, torch '
      f'{torch.__version__}, mmdet {mmdet.__version__}')
'''


def read_kit(kit):
    path = osp.join(kit, 'kit.json')
    if not osp.isfile(path):
        raise InstallError(f'{kit} is not a kit (no kit.json): write one '
                           'with tools/install/make_kit.py')
    with open(path) as f:
        return json.load(f)


def make_venv(venv, python, kit):
    """A venv that sees ``python``'s packages behind its own."""
    version = run([python, '-c', 'import sys; print("%d.%d" % '
                   'sys.version_info[:2])'], True).strip()
    if version != kit['python_version']:
        raise InstallError(
            f'{python} is Python {version} but the kit is for Python '
            f'{kit["python_version"]}: pass --python with a '
            f'{kit["python_version"]} interpreter or make a kit for '
            f'{version}')
    vpy = osp.join(venv, 'bin', 'python')
    has_pip = [python, '-m', 'pip', '--version']
    if not osp.exists(vpy):
        # The venv uses the base environment's pip (seen through the .pth
        # below) when there is one: faster, and works without ensurepip
        # (Debian/Ubuntu without python3-venv).
        no_base_pip = subprocess.run(has_pip,
                                     capture_output=True).returncode
        run([python, '-m', 'venv', venv] +
            ([] if no_base_pip else ['--without-pip']))
    # site dirs of the base environment (a venv's --system-site-packages
    # would skip them when `python` is itself a venv); addsitedir also
    # reads their .pth files. Appended after the venv's own site-packages.
    dirs = json.loads(run([python, '-c', (
        'import json, site; d = site.getsitepackages(); '
        'd += [site.getusersitepackages()] if site.ENABLE_USER_SITE else []; '
        'print(json.dumps(d))')], True))
    purelib = run([vpy, '-c', 'import sysconfig; '
                   'print(sysconfig.get_paths()["purelib"])'], True).strip()
    dirs = [d for d in dirs if osp.isdir(d) and
            osp.realpath(d) != osp.realpath(purelib)]
    with open(osp.join(purelib, '_citymask_base_env.pth'), 'w') as f:
        f.write('import site; ' + '; '.join(
            f'site.addsitedir({d!r})' for d in dirs) + '\n')
    if subprocess.run([vpy] + has_pip[1:], capture_output=True).returncode:
        raise InstallError(f'{venv} has no pip, and neither has {python}: '
                           'install pip (or python3-venv) there first')
    return vpy


def check_present(vpy, kit):
    """The kit left out what the target has: make sure it is there."""
    found = {re.sub(r'[-_.]+', '-', name).lower(): version for name, version
             in reversed(json.loads(run([vpy, '-c', (
                 'import json; from importlib.metadata import distributions; '
                 'print(json.dumps([(d.metadata["Name"], d.version) '
                 'for d in distributions()]))')], True)))}
    missing = [n for n in kit['present'] if n not in found]
    if missing:
        raise InstallError(
            'the kit was made for a machine that has ' + ', '.join(
                f'{n}=={kit["present"][n]}' if kit['present'][n] else n
                for n in missing) + f', which {vpy} does not see: install '
            'them, or make a kit without --present for them')
    for name, want in kit['present'].items():
        if want and found[name] != want:
            log(f'note: {name} is {found[name]} here, the kit assumed {want}')


def install(args):
    kit = read_kit(args.kit)
    t0 = time.time()
    log(f'[1/6] venv {args.venv} on top of {args.python}')
    vpy = make_venv(args.venv, args.python, kit)
    pip = [vpy, '-m', 'pip']
    log(f'[2/6] checking the {len(kit["present"])} packages the kit counts '
        'on')
    check_present(vpy, kit)
    wheels = sorted(glob.glob(osp.join(args.kit, 'wheels', '*.whl')))
    log(f'[3/6] installing {len(wheels)} wheels with --no-index')
    if wheels:
        run(pip + ['install', '-q', '--no-index', '--no-deps'] + wheels)

    mmcv = kit['mmcv'] and osp.join(args.kit, kit['mmcv'])
    log(f'[4/6] mmcv 2.1.0 from {mmcv or "this machine (kit has none)"}')
    build = [vpy, osp.join(HERE, 'build_mmcv.py'), '--cuda', args.cuda,
             '--verbose']
    if not mmcv:
        build.append('--check-only')
    else:
        build += ['--wheel' if mmcv.endswith('.whl') else '--sdist', mmcv]
    build += ['--archs', args.archs] if args.archs else []
    build += ['--jobs', str(args.jobs)] if args.jobs else []
    if subprocess.run(build).returncode != 0:
        raise InstallError('installing mmcv failed (see above)')

    log(f'[5/6] citymask (editable) from {REPO}, pip check')
    # pip < 25.3 would run `setup.py develop` for a project without
    # pyproject.toml, which in setuptools >= 80 calls pip again with build
    # isolation, i.e. an index; --use-pep517 (gone in newer pips) avoids it.
    pep517 = ['--use-pep517'] if '--use-pep517' in run(
        pip + ['install', '--help'], True) else []
    run(pip + ['install', '-q', '--no-index', '--no-deps',
               '--no-build-isolation', '-e', REPO] + pep517)
    check = subprocess.run(pip + ['check'], text=True,
                           stdout=subprocess.PIPE).stdout
    # pip check names a missing opencv-python when another flavour gives cv2
    cv2 = subprocess.run([vpy, '-c', 'import cv2'],
                         capture_output=True).returncode == 0
    problems = [line for line in check.splitlines()
                if line.strip() and 'No broken requirements' not in line
                and not (cv2 and any(f'requires {n},' in line
                                     for n in OPENCV_FLAVOURS))]
    if problems:
        raise InstallError('pip check: ' + '; '.join(problems))

    log('[6/6] smoke test')
    run([vpy, '-c', SMOKE], cwd=args.venv)
    with open(osp.join(args.venv, '.citymask-setup'), 'w') as f:
        f.write(f'installed offline from {osp.abspath(args.kit)}\n')
    log(f'done in {time.time() - t0:.0f} s: {args.venv} is ready '
        f'(make test VENV={args.venv})')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog='In the background: '
        'nohup python3 tools/install/offline_install.py KIT > install.log '
        '2>&1 &', formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('kit', help='kit folder written by make_kit.py')
    p.add_argument('--venv', default=osp.join(REPO, '.venv'),
                   help='venv to create or reuse (default: the repo\'s '
                   '.venv, which make test / make demo use)')
    p.add_argument('--python', default='python3',
                   help='interpreter whose packages (torch, numpy...) the '
                   'venv builds on (default: python3)')
    p.add_argument('--cuda', choices=['auto', 'yes', 'no'], default='auto',
                   help="mmcv's CUDA ops (auto: with a CUDA torch and nvcc)")
    p.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST (default: the '
                   'visible GPUs)')
    p.add_argument('--jobs', type=int, help='parallel compile jobs')
    return p.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    sys.exit(cli(lambda: install(args)))
