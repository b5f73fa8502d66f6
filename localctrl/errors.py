"""The errors a user sees: each one line naming what is wrong and where, shown by the command line without a traceback.

Every error a user can cause or mend (bad input, a missing file or model, a run that cannot resume) derives from
`LocalctrlError`; `cli.py` prints its message in red and exits with code 2. Anything else is a bug and keeps its
traceback. The subclasses also derive from the builtin they refine, so `except ValueError` keeps working.
"""


class LocalctrlError(Exception):
    """Something the user can mend; the message says what, where, and how."""


class InputError(LocalctrlError, ValueError):
    """A file, field or value that is not what was expected (the message names it and what was expected)."""


class NotAvailableError(LocalctrlError, FileNotFoundError):
    """Weights, a model or a dataset that are not on this machine (the message says how to provide them)."""
