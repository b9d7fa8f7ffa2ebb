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
            message = str(e).strip()
            if 'Traceback' in message:
                # re-raised from a dataloader worker: keep the worker's line
                message = message.splitlines()[-1].split('Error: ', 1)[-1]
            print(f'error: {message}', file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(130)

    return wrapper
