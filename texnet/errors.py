"""The one exception type texnet raises for bad input.

Entry points catch it and print its message as a single line, so users see what
to fix (a path, an option) instead of a traceback from deep inside a library.
"""


class TexnetError(Exception):
    """Bad user input or environment: the message names the file/option and the fix."""
