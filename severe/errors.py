"""User-facing errors: the CLI prints them as one line, never as a traceback."""


class SevereError(Exception):
    """A user mistake or bad input (missing file, wrong method, malformed annotation...).

    The message must name the file, key or value at fault and say what to do.
    """


class WriteError(SevereError):
    """An output file cannot be written (read-only file system, no space left, permission, a path under a
    regular file); the message names the path and the cause."""
