"""Every error type citymask raises for a problem the user can fix.

Tools print these as one line (no traceback) and exit non-zero; see
:func:`citymask.cli.exit_on_error`.
"""


class CitymaskError(Exception):
    """A problem with the user's input: the message says what and what to do.
    """


class CheckpointError(CitymaskError):
    """A file that is not a checkpoint citymask can (or may) read."""


class ConversionError(CitymaskError):
    """Input that is not a valid Cityscapes tree; the message names the file.
    """


def one_line(error: BaseException) -> str:
    """The one line a tool prints for ``error``.

    An error re-raised from a dataloader worker carries the worker's whole
    traceback in its message; only the worker's own message is kept.
    """
    message = str(error).strip()
    if 'Traceback' in message:
        message = message.splitlines()[-1].split('Error: ', 1)[-1]
    return message
