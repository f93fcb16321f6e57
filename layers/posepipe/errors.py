"""Errors that name the problem: what a user sees as one line, an HTTP 4xx body or an error record."""

from __future__ import annotations


class PosepipeError(Exception):
    """Base class for every error posepipe reports to a user."""

    code = "error"


class InputError(PosepipeError):
    """An input file that cannot be processed: missing, empty, not media, corrupt, too large."""

    code = "bad_input"

    def __init__(self, source: str, reason: str, code: str | None = None) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        if code is not None:
            self.code = code


class ModelError(PosepipeError):
    """The pose model is missing, unreadable or cannot be built."""

    code = "model"


class EngineError(PosepipeError):
    """The pose engine asked for cannot run: an unknown name, or the torch engine without PyTorch."""

    code = "engine"
