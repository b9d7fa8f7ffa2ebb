"""Errors the user can fix; tools print them as one line (citymask.cli)."""


class CitymaskError(Exception):
    """A problem with the user's input: the message says what to do."""


class CheckpointError(CitymaskError):
    """A file that is not a checkpoint citymask can (or may) read."""


class ConversionError(CitymaskError):
    """Input that is not a valid Cityscapes tree (the file is named)."""


def one_line(error: BaseException) -> str:
    """The line a tool prints for ``error``: of an error re-raised from a
    dataloader worker (with the worker's traceback), the worker's message.
    """
    message = str(error).strip()
    if 'Traceback' in message:
        message = message.splitlines()[-1].split('Error: ', 1)[-1]
    return message
