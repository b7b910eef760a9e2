"""User-facing errors: one line, names the file/field and what to do. The CLI prints them
without a traceback and exits non-zero."""


class MemwhError(Exception):
    """An expected failure with a one-line message meant for the user."""

    exit_code = 2
