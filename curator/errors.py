"""Errors a user can act on.

Every error curator raises on purpose is a `CuratorError`: the CLI prints its
message on one line and exits with status 2, never a traceback. The message
says what went wrong *and* what to do about it.
"""


class CuratorError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class WorkspaceLocked(CuratorError):
    """Another process holds the workspace file for writing."""


class NothingUsable(CuratorError):
    """An input had no usable row at all."""


class SchemaTooNew(CuratorError):
    """The workspace was written by a newer curator than this one."""
