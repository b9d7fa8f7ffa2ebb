#!/usr/bin/env python3
"""Install citymask from a kit (tools/install/make_kit.py) without an index.

Run it on the target, in the repository (``nohup ... > install.log 2>&1 &``
outlives the shell; the log ends with "done: ..." or an "error: ..." line).
"""
import argparse
import glob
import json
import os.path as osp
import re
import subprocess
import sys

from _common import HERE, REPO, InstallError, cli, log, run

# mmcv's nms on the GPU (if any) against the CPU
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
# The base environment's site dirs, which a venv's --system-site-packages
# would skip when the base is itself a venv.
SITE_DIRS = ('import json, site; print(json.dumps(site.getsitepackages() + '
             '[site.getusersitepackages()] * bool(site.ENABLE_USER_SITE)))')


def install(args):
    if not osp.isfile(osp.join(args.kit, 'kit.json')):
        raise InstallError(f'{args.kit} is not a kit (no kit.json): write '
                           'one with tools/install/make_kit.py')
    with open(osp.join(args.kit, 'kit.json')) as f:
        kit = json.load(f)
    log(f'[1/5] venv {args.venv} on top of {args.python}')
    version = run([args.python, '-c', 'import sys; print("%d.%d" % '
                   'sys.version_info[:2])'], True).strip()
    if version != kit['python_version']:
        raise InstallError(
            f'{args.python} is Python {version} but the kit is for Python '
            f'{kit["python_version"]}: pass --python with that interpreter '
            f'or make a kit for {version}')
    vpy = osp.join(args.venv, 'bin', 'python')
    if not osp.exists(vpy):
        # pip is the base's, seen through the .pth below (Debian/Ubuntu
        # without python3-venv lack ensurepip)
        run([args.python, '-m', 'venv', '--without-pip', args.venv])
    purelib = run([vpy, '-c', 'import sysconfig; '
                   'print(sysconfig.get_paths()["purelib"])'], True).strip()
    dirs = [d for d in json.loads(run([args.python, '-c', SITE_DIRS], True))
            if osp.isdir(d) and osp.realpath(d) != osp.realpath(purelib)]
    # addsitedir reads their .pth files too; after the venv's own packages
    with open(osp.join(purelib, '_citymask_base_env.pth'), 'w') as f:
        f.write(f'import site; list(map(site.addsitedir, {dirs!r}))\n')
    pip = [vpy, '-m', 'pip']
    if subprocess.run(pip + ['--version'], capture_output=True).returncode:
        raise InstallError(f'{args.python} has no pip: install pip there')

    wheels = sorted(glob.glob(osp.join(args.kit, 'wheels', '*.whl')))
    log(f'[2/5] {len(wheels)} wheels and citymask (editable, from {REPO}) '
        'with --no-index')
    if wheels:
        run(pip + ['install', '-q', '--no-index', '--no-deps'] + wheels)
    # pip < 25.3 would run `setup.py develop` for a project without
    # pyproject.toml, which in setuptools >= 80 calls pip again with build
    # isolation, i.e. an index; --use-pep517 (gone in newer pips) avoids it.
    pep517 = ['--use-pep517'] * ('--use-pep517' in run(
        pip + ['install', '--help'], True))
    run(pip + ['install', '-q', '--no-index', '--no-deps',
               '--no-build-isolation', '-e', REPO] + pep517)

    log('[3/5] pip check: the packages the kit counts on are there')
    check = subprocess.run(pip + ['check'], text=True,
                           stdout=subprocess.PIPE).stdout
    # pip check names a missing opencv-python when another flavour gives cv2
    cv2 = not subprocess.run([vpy, '-c', 'import cv2'],
                             capture_output=True).returncode
    problems = [line for line in check.splitlines() if line.strip() and
                'No broken requirements' not in line and not (
                    kit['mmcv'] and 'requires mmcv, which' in line) and not (
                    cv2 and re.search(r'requires opencv-[a-z-]+,', line))]
    if problems:
        raise InstallError('pip check: ' + '; '.join(problems) + ' (the kit '
                           'was made for a machine that has them: install '
                           'them, or make a kit without --present for them)')

    if kit['mmcv']:
        log(f'[4/5] mmcv 2.1.0 from {kit["mmcv"]}')
        run([vpy, osp.join(HERE, 'build_mmcv.py'), '--verbose', '--sdist',
             osp.join(args.kit, kit['mmcv'])] + ['--archs', args.archs] * bool(
                 args.archs))
    else:
        log('[4/5] mmcv 2.1.0: this machine\'s or the kit\'s wheel')
    log('[5/5] smoke test')
    run([vpy, '-c', SMOKE], cwd=args.venv)
    with open(osp.join(args.venv, '.citymask-setup'), 'w') as f:
        f.write(f'installed offline from {osp.abspath(args.kit)}\n')
    log(f'done: {args.venv} is ready (make test VENV={args.venv})')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('kit', help='kit folder written by make_kit.py')
    p.add_argument('--venv', default=osp.join(REPO, '.venv'),
                   help='venv to create or reuse (default: the repo\'s)')
    p.add_argument('--python', default='python3', help='interpreter whose '
                   'packages (torch...) the venv builds on')
    p.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST for mmcv '
                   '(default: the visible GPUs)')
    sys.exit(cli(install, p.parse_args()))
