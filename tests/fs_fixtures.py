"""File systems for reliability tests: a real full disk and a read-only one.

Mounted as tmpfs where the machine allows it (root, CAP_SYS_ADMIN); tests
that use them have patched-write twins (:func:`fail_writes`) that run
everywhere.
"""
import builtins
import subprocess

import pytest


def _mount(path, *options):
    return subprocess.run(['mount', '-t', 'tmpfs', '-o', ','.join(options),
                           'tmpfs', str(path)], capture_output=True)


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs: a real full disk."""
    mnt = tmp_path / 'tiny'
    mnt.mkdir()
    if _mount(mnt, 'size=1m').returncode != 0:
        pytest.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN); the '
                    'patched-write tests cover disk-full here')
    yield mnt
    subprocess.run(['umount', '-l', str(mnt)], check=True)


@pytest.fixture
def read_only_fs(tmp_path):
    """A read-only tmpfs: EROFS on every write."""
    mnt = tmp_path / 'ro'
    mnt.mkdir()
    if _mount(mnt, 'size=1m', 'ro').returncode != 0:
        pytest.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN)')
    yield mnt
    subprocess.run(['umount', '-l', str(mnt)], check=True)


class _FailingFile:
    """A file opened for writing whose writes raise ``error`` once the
    shared ``budget['left']`` bytes are spent (no budget: at once)."""

    def __init__(self, f, error, budget=None):
        self._f, self._error, self._budget = f, error, budget

    def write(self, data):
        if self._budget is None or len(data) > self._budget['left']:
            raise self._error
        self._budget['left'] -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fail_writes(monkeypatch, module, error, budget=None):
    """Patch ``open`` in ``module``: files opened for writing fail with
    ``error`` (e.g. ENOSPC: a simulated full disk, or KeyboardInterrupt)
    once ``budget['left']`` bytes, shared by every file, are written."""
    real_open = builtins.open

    def fake_open(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return _FailingFile(f, error, budget) if 'w' in mode else f
    monkeypatch.setattr(module, 'open', fake_open, raising=False)
