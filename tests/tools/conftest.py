"""Helpers of the tool tests (the shared fixtures are in tests/conftest.py,
so the training can start with the session)."""
import pytest

from citymask.errors import CitymaskError
from ..conftest import MINI_CFG as CFG  # noqa: F401
from ..conftest import ok  # noqa: F401


def fails(res, message, status=2):
    """One ``error:`` line with ``message``, exit ``status``; no traceback."""
    assert res.returncode == status, (res.stdout + res.stderr)[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    assert message in lines[0], lines[0]
    return lines[0]


def error(fn, *args, exc=CitymaskError, **kwargs):
    """The message of the ``exc`` that ``fn(*args, **kwargs)`` raises."""
    with pytest.raises(exc) as e:
        fn(*args, **kwargs)
    return str(e.value)
