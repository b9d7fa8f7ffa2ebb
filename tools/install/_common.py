"""What the install scripts share: logging, commands, errors, mmcv's sdist
(standard library only: they run before citymask's dependencies are in)."""
import hashlib
import os
import os.path as osp
import subprocess
import sys
import tempfile

MMCV_VERSION = '2.1.0'
MMCV_SDIST_SHA256 = \
    'd387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f'
HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
CACHE = osp.join(os.environ.get('XDG_CACHE_HOME') or
                 osp.expanduser('~/.cache'), 'citymask')


class InstallError(Exception):
    """A problem the user has to fix; printed as one ``error:`` line."""


def log(msg):
    print(f'{osp.splitext(osp.basename(sys.argv[0]))[0]}: {msg}', flush=True)


def run(cmd, capture=False, **kwargs):
    """Run ``cmd`` (failing on a non-zero exit); its stdout if ``capture``."""
    return subprocess.run(cmd, check=True, text=True, **kwargs,
                          stdout=subprocess.PIPE if capture else None).stdout


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def mmcv_sdist(path=None):
    """``path`` if it is PyPI's mmcv sdist (by sha256); by default the cached
    one, downloaded if absent. pip runs its setup.py, which imports
    pkg_resources: setuptools < 81 for that, by either pip's variable."""
    name = f'mmcv-{MMCV_VERSION}.tar.gz'
    cached = osp.join(CACHE, name)
    if path is None and not (osp.isfile(cached) and
                             sha256(cached) == MMCV_SDIST_SHA256):
        log(f'downloading {name}')
        os.makedirs(CACHE, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            cons = osp.join(tmp, 'constraints.txt')
            with open(cons, 'w') as f:
                f.write('setuptools<81\n')
            run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
                 '--no-binary', ':all:', '-d', tmp, f'mmcv=={MMCV_VERSION}'],
                env=dict(os.environ, PIP_CONSTRAINT=cons,
                         PIP_BUILD_CONSTRAINT=cons))
            os.replace(osp.join(tmp, name), cached)
    path = path or cached
    if not osp.isfile(path) or sha256(path) != MMCV_SDIST_SHA256:
        raise InstallError(f'{path} is not PyPI\'s {name} (missing, or its '
                           f'sha256 is not {MMCV_SDIST_SHA256})')
    return path


def cli(work, args):
    """``work(args)``'s exit status: an InstallError as one ``error:`` line
    (2), a failed command by its first words (1; its output is above)."""
    try:
        work(args)
    except InstallError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f'error: {" ".join(map(str, e.cmd[:6]))} ... failed (exit '
              f'{e.returncode}); see the output above', file=sys.stderr)
        return 1
    return 0
