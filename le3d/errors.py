"""User-facing errors: the CLI prints them as one line (no traceback) and exits non-zero."""


class Le3dError(Exception):
    """A problem with the user's input (file, flag, scene): the message says what and where."""


class InputError(Le3dError, ValueError):
    """Bad argument to a Python API function (shape, dtype, device, non-finite value)."""
