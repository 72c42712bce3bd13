"""Errors that carry a message fit to show a user (no traceback needed)."""

from __future__ import annotations


class TaskcodecError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing sentence."""


class ImageInputError(TaskcodecError):
    """An input file is not a usable image (missing, empty, not an image, too large)."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class BitstreamError(TaskcodecError):
    """A .tcb file is corrupt, truncated, forged or of an unknown version."""

    def __init__(self, reason: str, path: object | None = None):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class PlanningError(TaskcodecError):
    """The task text cannot be turned into a policy (empty, nothing recognised)."""


class GroundingSpecError(TaskcodecError):
    """A grounding backend spec string is malformed or names a missing backend."""


class BudgetError(TaskcodecError):
    """A byte budget is too small even for the mandatory part of a bitstream."""


class OutputExistsError(TaskcodecError):
    """An output file exists and the user did not ask to replace it."""

    def __init__(self, path: object):
        self.path = str(path)
        super().__init__(f"{self.path}: already exists; pass --overwrite to replace it")


class OutputFormatError(TaskcodecError):
    """An output path asks for a format taskcodec does not write."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {reason}")


class StoreError(TaskcodecError):
    """The store (SQL database) is missing, unreadable, read-only, not a database, or went away mid-run."""


class MissingExtraError(TaskcodecError):
    """An optional feature was asked for and the extra that provides it is not installed."""

    def __init__(self, what: str, extra: str, module: str):
        self.extra, self.module = extra, module
        super().__init__(f"{what} needs the optional package '{module}', which is not installed: "
                         f"pip install 'taskcodec[{extra}]'")


def require_extra(extra: str, what: str, *modules: str) -> None:
    """Raise ``MissingExtraError`` naming the extra to install unless every module can be imported."""
    import importlib.util

    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(what, extra, module)


def error_text(path, exc: Exception) -> str:
    """One line naming the file: a ``TaskcodecError`` says it already; anything else gets the path."""
    return str(exc) if isinstance(exc, TaskcodecError) else f"{path}: {type(exc).__name__}: {exc}"
