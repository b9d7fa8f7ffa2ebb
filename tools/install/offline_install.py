#!/usr/bin/env python3
"""Install citymask from a kit (tools/install/make_kit.py) without an index.

Run it on the target machine, in the repository; to keep it running after
the shell ends (mmcv's CUDA build takes minutes)::

    nohup python3 tools/install/offline_install.py KIT > install.log 2>&1 &
    tail -f install.log   # ends with "done: ..." or an "error: ..." line

It makes a venv on top of ``--python``'s packages, checks that the ones
the kit counts on are there, installs the kit's wheels, mmcv (the kit's
wheel, or built from its sdist for the visible GPUs unless ``--archs``)
and citymask, runs ``pip check`` and a smoke test (mmcv's nms on the GPU
against the CPU), and writes the stamp ``make test`` looks for.
"""
import argparse
import glob
import json
import os.path as osp
import re
import subprocess
import sys

from _common import InstallError, cli, log, run

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
SMOKE = '''import citymask, mmdet, mmcv, torch
from mmcv.ops import RoIAlign, nms
b = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
s, where = torch.tensor([0.9, 0.8, 0.7]), 'CPU'
assert nms(b, s, 0.5)[1].tolist() == [0, 2]
if torch.cuda.is_available():
    assert nms(b.cuda(), s.cuda(), 0.5)[1].tolist() == [0, 2]
    where += ' and ' + torch.cuda.get_device_name(0)
print(f'smoke test: mmcv {mmcv.__version__} nms on {where}, torch '
      f'{torch.__version__}, mmdet {mmdet.__version__}')'''


def make_venv(venv, python, kit):
    """A venv that sees ``python``'s packages behind its own."""
    version = run([python, '-c', 'import sys; print("%d.%d" % '
                   'sys.version_info[:2])'], True).strip()
    if version != kit['python_version']:
        raise InstallError(
            f'{python} is Python {version} but the kit is for Python '
            f'{kit["python_version"]}: pass --python with that interpreter '
            f'or make a kit for {version}')
    vpy = osp.join(venv, 'bin', 'python')
    if not osp.exists(vpy):
        # pip is the base environment's, seen through the .pth below (no
        # ensurepip needed: Debian/Ubuntu without python3-venv lack it)
        run([python, '-m', 'venv', '--without-pip', venv])
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
    if subprocess.run([vpy, '-m', 'pip', '--version'],
                      capture_output=True).returncode:
        raise InstallError(f'{python} has no pip: install pip there first')
    return vpy


def check_present(vpy, kit):
    """The kit left out what the target has: make sure it is there."""
    found = {re.sub(r'[-_.]+', '-', name).lower() for name in run([vpy, '-c', (
        'from importlib.metadata import distributions as d\n'
        'for x in d(): print(x.metadata["Name"])')], True).split()}
    missing = [f'{n}=={v}' if v else n for n, v in kit['present'].items()
               if n not in found]
    if missing:
        raise InstallError(
            f'the kit was made for a machine that has {", ".join(missing)}, '
            f'which {vpy} does not see: install them, or make a kit without '
            '--present for them')


def install(args):
    if not osp.isfile(osp.join(args.kit, 'kit.json')):
        raise InstallError(f'{args.kit} is not a kit (no kit.json): write '
                           'one with tools/install/make_kit.py')
    with open(osp.join(args.kit, 'kit.json')) as f:
        kit = json.load(f)
    log(f'[1/6] venv {args.venv} on top of {args.python}')
    vpy = make_venv(args.venv, args.python, kit)
    pip = [vpy, '-m', 'pip']
    log('[2/6] checking the packages the kit counts on')
    check_present(vpy, kit)
    wheels = sorted(glob.glob(osp.join(args.kit, 'wheels', '*.whl')))
    log(f'[3/6] installing {len(wheels)} wheels with --no-index')
    if wheels:
        run(pip + ['install', '-q', '--no-index', '--no-deps'] + wheels)

    mmcv = kit['mmcv'] and osp.join(args.kit, kit['mmcv'])
    log(f'[4/6] mmcv 2.1.0 from {mmcv or "this machine (kit has none)"}')
    run([vpy, osp.join(HERE, 'build_mmcv.py'), '--cuda', args.cuda,
         '--verbose'] + (['--wheel' if mmcv.endswith('.whl') else '--sdist',
                          mmcv] if mmcv else ['--check-only']) +
        (['--archs', args.archs] if args.archs else []) +
        (['--jobs', str(args.jobs)] if args.jobs else []))

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
    cv2 = not subprocess.run([vpy, '-c', 'import cv2'],
                             capture_output=True).returncode
    problems = [line for line in check.splitlines() if line.strip()
                and 'No broken requirements' not in line and not (
                    cv2 and re.search(r'requires opencv-[a-z-]+,', line))]
    if problems:
        raise InstallError('pip check: ' + '; '.join(problems))

    log('[6/6] smoke test')
    run([vpy, '-c', SMOKE], cwd=args.venv)
    with open(osp.join(args.venv, '.citymask-setup'), 'w') as f:
        f.write(f'installed offline from {osp.abspath(args.kit)}\n')
    log(f'done: {args.venv} is ready (make test VENV={args.venv})')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('kit', help='kit folder written by make_kit.py')
    p.add_argument('--venv', default=osp.join(REPO, '.venv'),
                   help='venv to create or reuse (default: the repo\'s)')
    p.add_argument('--python', default='python3', help='interpreter whose '
                   'packages (torch...) the venv builds on')
    p.add_argument('--cuda', choices=['auto', 'yes', 'no'], default='auto',
                   help="mmcv's CUDA ops (auto: with a CUDA torch and nvcc)")
    p.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST for mmcv')
    p.add_argument('--jobs', type=int, help='parallel compile jobs')
    return p.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    sys.exit(cli(lambda: install(args)))
