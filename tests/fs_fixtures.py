"""A real full disk and a read-only one (tmpfs: needs root), and patched
writes (:func:`fail_writes`) that run anywhere."""
import builtins
import subprocess

import pytest


def _tmpfs(path, *options):
    path.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', ','.join(options),
                       'tmpfs', str(path)], capture_output=True).returncode:
        pytest.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN)')
    yield path
    subprocess.run(['umount', '-l', str(path)], check=True)


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs: a real full disk."""
    yield from _tmpfs(tmp_path / 'tiny', 'size=1m')


@pytest.fixture
def read_only_fs(tmp_path):
    """A read-only tmpfs: EROFS on every write."""
    yield from _tmpfs(tmp_path / 'ro', 'size=1m', 'ro')


def fail_writes(monkeypatch, module, error, budget=None):
    """Patch ``open`` in ``module``: writes raise ``error`` once
    ``budget['left']`` bytes, shared by every file, are written (or at once).
    """
    real_open = builtins.open

    def fake_open(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if 'w' in mode:
            write = f.write

            def failing_write(data):
                if budget is None or len(data) > budget['left']:
                    raise error
                budget['left'] -= len(data)
                return write(data)
            f.write = failing_write  # an instance attribute: io allows it
        return f
    monkeypatch.setattr(module, 'open', fake_open, raising=False)
