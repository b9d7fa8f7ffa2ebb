#!/usr/bin/env python3
"""Install citymask from a kit (tools/install/make_kit.py) without an index.

On the target machine, in the repository::

    python3 tools/install/offline_install.py start KIT [--venv .venv]
        [--python python3] [--archs "9.0"] [--cuda auto|yes|no]
    python3 tools/install/offline_install.py status [--wait 540]

``start`` runs the install in the background (mmcv's CUDA build takes
minutes) and returns at once; ``status`` says how far it got, and with
``--wait`` waits up to that many seconds for it to end, which fits a
machine whose commands are cut after 10 minutes. ``run`` does the same in
the foreground. Steps:

1. a venv (``--venv``) on top of ``--python``'s packages: the torch,
   numpy, OpenCV... the kit was made without stay where they are, and the
   kit's packages (e.g. setuptools < 81) take precedence in the venv;
2. check that the packages the kit counts on are there;
3. ``pip install --no-index --no-deps`` of the kit's wheels (the kit is the
   resolved set: make_kit.py ran pip's resolver against the target's
   packages);
4. mmcv 2.1.0: the kit's wheel, or built from the kit's sdist by
   build_mmcv.py against the torch found, with CUDA ops for the visible
   GPU's arch (``torch.cuda.get_device_capability``) unless ``--archs``;
5. citymask itself (editable), ``pip check``, a smoke test (mmcv's nms on
   the GPU when there is one), and the set-up stamp ``make test`` /
   ``make demo`` look for, so they use this venv without an index.

Standard library only: it runs before anything is installed.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
STATE = osp.join(REPO, '.offline-install')
BACKGROUND = 'CITYMASK_OFFLINE_INSTALL_BACKGROUND'
STEPS = 7
# pip check complains about these when another OpenCV flavour gives cv2
OPENCV_FLAVOURS = ('opencv-python', 'opencv-python-headless',
                   'opencv-contrib-python', 'opencv-contrib-python-headless')
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


class InstallError(Exception):
    """A problem the user has to fix; printed as one ``error:`` line."""


def log(msg):
    print(f'offline_install: {msg}', flush=True)


T0 = time.time()


def step(n, msg):
    log(f'[{n}/{STEPS}] {msg} ({time.time() - T0:.0f} s)')


def run(cmd, **kwargs):
    subprocess.run(cmd, check=True, **kwargs)


def output(cmd):
    return subprocess.run(cmd, check=True, text=True,
                          stdout=subprocess.PIPE).stdout.strip()


def read_kit(kit):
    path = osp.join(kit, 'kit.json')
    if not osp.isfile(path):
        raise InstallError(f'{kit} is not a kit (no kit.json): write one '
                           'with tools/install/make_kit.py')
    with open(path) as f:
        return json.load(f)


def make_venv(venv, python, kit):
    """A venv that sees ``python``'s packages behind its own."""
    version = output([python, '-c', 'import sys; print("%d.%d" % '
                      'sys.version_info[:2])'])
    if version != kit['python_version']:
        raise InstallError(
            f'{python} is Python {version} but the kit is for Python '
            f'{kit["python_version"]}: pass --python with a '
            f'{kit["python_version"]} interpreter or make a kit for '
            f'{version}')
    vpy = osp.join(venv, 'bin', 'python')
    if not osp.exists(vpy):
        # The venv uses the base environment's pip (seen through the .pth
        # below) when there is one: faster, and works without ensurepip
        # (Debian/Ubuntu without python3-venv).
        base_pip = subprocess.run([python, '-m', 'pip', '--version'],
                                  capture_output=True).returncode == 0
        run([python, '-m', 'venv', venv] +
            (['--without-pip'] if base_pip else []))
    # site dirs of the base environment (a venv's --system-site-packages
    # would skip them when `python` is itself a venv); addsitedir also
    # reads their .pth files. Appended after the venv's own site-packages.
    dirs = json.loads(output([python, '-c', (
        'import json, site; d = site.getsitepackages(); '
        'u = site.getusersitepackages(); '
        'd += [u] if site.ENABLE_USER_SITE else []; print(json.dumps(d))')]))
    purelib = output([vpy, '-c', 'import sysconfig; '
                      'print(sysconfig.get_paths()["purelib"])'])
    dirs = [d for d in dirs if osp.isdir(d) and
            osp.realpath(d) != osp.realpath(purelib)]
    with open(osp.join(purelib, '_citymask_base_env.pth'), 'w') as f:
        f.write('import site; ' + '; '.join(
            f'site.addsitedir({d!r})' for d in dirs) + '\n')
    if subprocess.run([vpy, '-m', 'pip', '--version'],
                      capture_output=True).returncode != 0:
        raise InstallError(f'{venv} has no pip, and neither has {python}: '
                           'install pip (or python3-venv) there first')
    return vpy


def check_present(vpy, kit):
    """The kit left out what the target has: make sure it is there."""
    names = list(kit['present'])
    code = ('import json, sys\nfrom importlib import metadata\nout = {}\n'
            'for n in json.loads(sys.argv[1]):\n'
            '    try:\n        out[n] = metadata.version(n)\n'
            '    except metadata.PackageNotFoundError:\n'
            '        out[n] = None\nprint(json.dumps(out))')
    found = json.loads(output([vpy, '-c', code, json.dumps(names)]))
    missing = [n for n, v in found.items() if v is None]
    if missing:
        raise InstallError(
            'the kit was made for a machine that has ' + ', '.join(
                f'{n}=={kit["present"][n]}' if kit['present'][n] else n
                for n in missing) + f', which {vpy} does not see: install '
            'them, or make a kit without --present for them')
    for name, version in found.items():
        want = kit['present'][name]
        if want and version != want:
            log(f'note: {name} is {version} here, the kit assumed {want}')


def install(args):
    kit = read_kit(args.kit)
    t0 = time.time()
    step(1, f'venv {args.venv} on top of {args.python}')
    vpy = make_venv(args.venv, args.python, kit)
    pip = [vpy, '-m', 'pip']

    step(2, f'checking the {len(kit["present"])} packages the kit counts on')
    check_present(vpy, kit)

    wheels = sorted(glob.glob(osp.join(args.kit, 'wheels', '*.whl')))
    step(3, f'installing {len(wheels)} wheels with --no-index')
    if wheels:
        run(pip + ['install', '-q', '--no-index', '--no-deps'] + wheels)

    mmcv = args.mmcv_wheel or (kit['mmcv'] and
                               osp.join(args.kit, kit['mmcv']))
    step(4, f'mmcv 2.1.0 from {mmcv or "this machine (kit has none)"}')
    build = [vpy, osp.join(HERE, 'build_mmcv.py'), '--cuda', args.cuda,
             '--verbose']
    if not mmcv:
        build.append('--check-only')
    elif mmcv.endswith('.whl'):
        build += ['--wheel', mmcv]
    else:
        build += ['--sdist', mmcv]
    if args.archs:
        build += ['--archs', args.archs]
    if args.jobs:
        build += ['--jobs', str(args.jobs)]
    if subprocess.run(build).returncode != 0:
        raise InstallError('building mmcv failed (see above)')

    step(5, f'citymask (editable) from {REPO}')
    # pip < 25.3 would run `setup.py develop` for a project without
    # pyproject.toml, which in setuptools >= 80 calls pip again with build
    # isolation, i.e. an index; --use-pep517 (gone in newer pips) avoids it.
    pep517 = ['--use-pep517'] if '--use-pep517' in output(
        pip + ['install', '--help']) else []
    run(pip + ['install', '-q', '--no-index', '--no-deps',
               '--no-build-isolation', '-e', REPO] + pep517)

    step(6, 'pip check')
    check = subprocess.run(pip + ['check'], text=True,
                           stdout=subprocess.PIPE)
    cv2 = subprocess.run([vpy, '-c', 'import cv2'],
                         capture_output=True).returncode == 0
    problems = [line for line in check.stdout.splitlines()
                if line.strip() and 'No broken requirements' not in line
                and not (cv2 and any(f'requires {n},' in line
                                     for n in OPENCV_FLAVOURS))]
    if problems:
        raise InstallError('pip check: ' + '; '.join(problems))

    step(7, 'smoke test')
    run([vpy, '-c', SMOKE], cwd=args.venv)
    with open(osp.join(args.venv, '.citymask-setup'), 'w') as f:
        f.write(f'installed offline from {osp.abspath(args.kit)}\n')
    log(f'done in {time.time() - t0:.0f} s: {args.venv} is ready '
        f'(make test VENV={args.venv})')


def start(args, argv):
    state = args.state
    os.makedirs(state, exist_ok=True)
    pid_file = osp.join(state, 'pid')
    if osp.exists(pid_file) and not osp.exists(osp.join(state, 'rc')):
        with open(pid_file) as f:
            pid = int(f.read())
        if alive(pid):
            raise InstallError(f'an install is already running (pid {pid}):'
                               ' see `offline_install.py status`')
    read_kit(args.kit)  # refuse a wrong folder now, not in the log
    for name in ('rc', 'log', 'pid'):
        if osp.exists(osp.join(state, name)):
            os.remove(osp.join(state, name))
    with open(osp.join(state, 'log'), 'w') as logf:
        proc = subprocess.Popen(
            [sys.executable, osp.abspath(__file__), 'run'] + argv[1:],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=dict(os.environ, **{BACKGROUND: '1'}))
    with open(pid_file, 'w') as f:
        f.write(str(proc.pid))
    log(f'started (pid {proc.pid}); log: {state}/log; poll with '
        f'`python3 {osp.relpath(__file__)} status [--wait SECONDS]`')


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # a finished child of nobody is a zombie until reaped
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[-1][:1] != 'Z'
    except OSError:
        return True


def status(args):
    """0: finished fine, 1: failed, 3: still running."""
    state = args.state
    pid_file = osp.join(state, 'pid')
    if not osp.exists(pid_file):
        raise InstallError('no install was started here: run '
                           '`offline_install.py start KIT`')
    with open(pid_file) as f:
        pid = int(f.read())
    deadline = time.time() + (args.wait or 0)
    rc_file = osp.join(state, 'rc')
    while not osp.exists(rc_file) and alive(pid) and time.time() < deadline:
        time.sleep(5)
    with open(osp.join(state, 'log'), errors='replace') as f:
        lines = f.read().splitlines()
    steps = [line for line in lines if line.startswith('offline_install: [')]
    tail = lines[-args.lines:]
    started = osp.getmtime(pid_file)
    if osp.exists(rc_file):
        with open(rc_file) as f:
            rc = int(f.read())
        state = 'finished' if rc == 0 else f'failed (exit {rc})'
        code = 0 if rc == 0 else 1
        took = osp.getmtime(rc_file) - started
    elif alive(pid):
        state, code, took = 'running', 3, time.time() - started
    else:
        state, code, took = 'died without an exit status', 1, 0
    print(f'install {state}, {took:.0f} s; last step: '
          f'{steps[-1] if steps else "none yet"}')
    print('\n'.join(tail))
    return code


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='command', required=True)
    for name in ('start', 'run'):
        s = sub.add_parser(name, help='install in the background' if
                           name == 'start' else 'install in the foreground')
        s.add_argument('kit', help='kit folder written by make_kit.py')
        s.add_argument('--venv', default=osp.join(REPO, '.venv'),
                       help='venv to create or reuse (default: the repo\'s '
                       '.venv, which make test / make demo use)')
        s.add_argument('--python', default='python3',
                       help='interpreter whose packages (torch, numpy...) '
                       'the venv builds on (default: python3)')
        s.add_argument('--cuda', choices=['auto', 'yes', 'no'],
                       default='auto', help="mmcv's CUDA ops (auto: with "
                       'a CUDA torch and nvcc)')
        s.add_argument('--archs', help='TORCH_CUDA_ARCH_LIST (default: the '
                       'visible GPUs)')
        s.add_argument('--jobs', type=int, help='parallel compile jobs')
        s.add_argument('--mmcv-wheel', help='a prebuilt mmcv 2.1.0 wheel '
                       'for this machine, instead of the kit\'s mmcv')
    s = sub.add_parser('status', help='how far the background install got')
    subs = [sub.choices['start'], sub.choices['run'], s]
    s.add_argument('--wait', type=float, help='wait up to this many '
                   'seconds for it to end')
    s.add_argument('--lines', type=int, default=15,
                   help='log lines to show')
    for s in subs:
        s.add_argument('--state', default=STATE, help='folder for the '
                       "background install's log, pid and exit status")
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        if args.command == 'status':
            return status(args)
        if args.command == 'start':
            start(args, argv)
            return 0
        rc = 1
        try:
            install(args)
            rc = 0
        except InstallError as e:
            print(f'error: {e}', file=sys.stderr)
            rc = 2
        except subprocess.CalledProcessError as e:
            print(f'error: {" ".join(map(str, e.cmd[:5]))} ... failed (exit '
                  f'{e.returncode}); see the output above', file=sys.stderr)
        finally:
            if os.environ.get(BACKGROUND):
                # tells `status` how it ended
                tmp = osp.join(args.state, 'rc.part')
                with open(tmp, 'w') as f:
                    f.write(str(rc))
                os.replace(tmp, osp.join(args.state, 'rc'))
        return rc
    except InstallError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
