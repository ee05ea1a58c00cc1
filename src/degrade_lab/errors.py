"""The one exception type that reaches a user as a plain message (no traceback)."""


class UserInputError(Exception):
    """Bad user input: an unreadable file, an empty folder, mismatched pairs, a missing checkpoint.

    The CLI prints the message and exits with status 2; the message always names the file or
    setting at fault and what to do about it.
    """
