"""The errors a user can cause and act on: each names its culprit (a file, a config key, an id).

Everything a caller can fix — a bad configuration value, a missing or corrupt file, an unknown label or
id — raises a subclass of :class:`MaclError`. The ``macl`` command prints those as one line
``macl: error: …`` and exits with status 2; any other exception is a bug and keeps its traceback.
Each class also derives from the built-in exception a Python caller would expect (``ValueError``,
``FileNotFoundError``, ``OSError``), so ``except ValueError`` keeps working in user code.
"""

from __future__ import annotations


class MaclError(Exception):
    """Base class of the errors a user can cause; the message says what is wrong and how to fix it."""


class ConfigError(MaclError, ValueError):
    """A configuration key that does not exist, or a value of the wrong type or range (names the key)."""


class ArgumentError(MaclError, ValueError):
    """A bad argument value: a loss option, a backbone name, a query that cannot be answered."""


class MissingFileError(MaclError, FileNotFoundError):
    """A file the command needs (a config, a checkpoint, an index, a query image) does not exist."""


class CheckpointError(MaclError, ValueError):
    """A checkpoint that cannot be read, or that was written by a different configuration."""
