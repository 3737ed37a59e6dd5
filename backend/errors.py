"""Errors that reach the user as one clear line instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    Args:
        message: one line that says what is wrong and, where possible, how to fix it.
        kind: a short machine-readable category carried by the JSON ``error`` event.
    """

    exit_code = 2

    def __init__(self, message: str, kind: str = "bad_input") -> None:
        super().__init__(message)
        self.kind = kind


class Cancelled(Exception):
    """The run was asked to stop (SIGTERM/SIGINT); partial outputs must be discarded."""

    exit_code = 130
