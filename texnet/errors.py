"""The one exception type texnet raises for bad input.

Entry points catch it and print its message as a single line, so users see what
to fix (a path, an option) instead of a traceback from deep inside a library.
"""


class TexnetError(Exception):
    """Bad user input or environment: the message names the file/option and the fix."""


def first_line(err: BaseException) -> str:
    """The first line of `err`'s message, for a one-line error; its type's name when the message is empty."""
    return str(err).strip().partition("\n")[0] or type(err).__name__


def user_error(err: BaseException | None) -> TexnetError | None:
    """The TexnetError behind `err`: itself, or the cause an exception wraps it in (Hydra's ``instantiate`` wraps
    what a ``_target_``'s constructor raises in an InstantiationException); None when there is none."""
    while err is not None and not isinstance(err, TexnetError):
        err = err.__cause__
    return err
