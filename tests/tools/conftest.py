"""Helpers of the tool tests; the shared fixtures (``mini_data``,
``trained``) live in tests/conftest.py so the training can start with the
session."""
from ..conftest import MINI_CFG as CFG  # noqa: F401
from ..conftest import ok  # noqa: F401


def fails(res, message):
    """One ``error:`` line with ``message``, exit status 2, no traceback."""
    assert res.returncode == 2, (res.stdout + res.stderr)[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    assert message in lines[0], lines[0]
    return lines[0]
