"""File systems for reliability tests: a real full disk and a read-only one.

Mounted as tmpfs where the machine allows it (root, CAP_SYS_ADMIN); tests
that use them have patched-write twins that run everywhere.
"""
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
