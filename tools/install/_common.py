"""What the install scripts share: logging, commands, errors, the cache.

Standard library only: they run before citymask's dependencies are there.
"""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile

MMCV_VERSION = '2.1.0'
# PyPI's mmcv-2.1.0.tar.gz
MMCV_SDIST_SHA256 = \
    'd387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f'
CACHE = osp.join(os.environ.get('XDG_CACHE_HOME') or
                 osp.expanduser('~/.cache'), 'citymask')
# pip distributions that all install the same cv2 module
OPENCV_FLAVOURS = ('opencv-python', 'opencv-python-headless',
                   'opencv-contrib-python', 'opencv-contrib-python-headless')


class InstallError(Exception):
    """A problem the user has to fix; printed as one ``error:`` line."""


def log(msg):
    name = osp.splitext(osp.basename(sys.argv[0]))[0]
    print(f'{name}: {msg}', flush=True)


def run(cmd, capture=False, **kwargs):
    """Run ``cmd`` (failing on a non-zero exit); its stdout if ``capture``."""
    return subprocess.run(cmd, check=True, text=True, **kwargs,
                          stdout=subprocess.PIPE if capture else None).stdout


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def mmcv_sdist(path=None):
    """``path`` if it is PyPI's mmcv sdist (by its sha256); by default the
    cached one, downloaded with pip if absent. pip runs the sdist's
    setup.py, which imports pkg_resources: its build env gets setuptools <
    81 (PIP_CONSTRAINT, and PIP_BUILD_CONSTRAINT for pip >= 25.3)."""
    name = f'mmcv-{MMCV_VERSION}.tar.gz'
    if path is None:
        path = osp.join(CACHE, name)
        if not osp.isfile(path) or sha256(path) != MMCV_SDIST_SHA256:
            log(f'downloading {name}')
            os.makedirs(CACHE, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                cons = osp.join(tmp, 'constraints.txt')
                with open(cons, 'w') as f:
                    f.write('setuptools<81\n')
                run([sys.executable, '-m', 'pip', 'download', '-q',
                     '--no-deps', '--no-binary', ':all:', '-d', tmp,
                     f'mmcv=={MMCV_VERSION}'], env=dict(
                         os.environ, PIP_CONSTRAINT=cons,
                         PIP_BUILD_CONSTRAINT=cons))
                shutil.copyfile(osp.join(tmp, name), path + '.part')
            os.replace(path + '.part', path)
    if not osp.isfile(path):
        raise InstallError(f'no mmcv sdist at {path}')
    if sha256(path) != MMCV_SDIST_SHA256:
        raise InstallError(f'{path} is not PyPI\'s {name} (sha256 differs '
                           f'from {MMCV_SDIST_SHA256})')
    return path


def cli(work):
    """``work()`` as a command's exit status: an ``InstallError`` as one
    ``error:`` line (2), a failed command by its first words (1; its own
    output is above)."""
    try:
        work()
    except InstallError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f'error: {" ".join(map(str, e.cmd[:6]))} ... failed (exit '
              f'{e.returncode}); see the output above', file=sys.stderr)
        return 1
    return 0
