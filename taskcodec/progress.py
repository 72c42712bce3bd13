"""A process-local progress listener, so the CLI can draw a bar while a flow runs
without passing a callback through Prefect's (serialised) flow parameters."""

from __future__ import annotations

from typing import Callable

_listener: Callable[[str, bool], None] | None = None


def set_listener(fn: Callable[[str, bool], None] | None) -> None:
    global _listener
    _listener = fn


def item_done(path: str, ok: bool) -> None:
    if _listener is not None:
        _listener(path, ok)
