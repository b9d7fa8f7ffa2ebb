"""The error type for problems a user can fix, and how tools report it."""
import functools
import sys
from typing import Callable


class CitymaskError(Exception):
    """A problem with the user's input: the message says what and what to do.

    Tools print it as one line (no traceback) and exit non-zero.
    """


def exit_on_error(main: Callable) -> Callable:
    """Decorate a tool's ``main`` so a :class:`CitymaskError` becomes one
    ``error: ...`` line on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except CitymaskError as e:
            print(f'error: {e}', file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(130)

    return wrapper
