"""Machine-task tools run on a decoded image: ``--for machine:NAME``.

A tool is a function ``(decoded, bitstream, options) -> dict`` (JSON-ready) registered
in ``TOOLS``; a new tool is one module plus one line here.
"""

from __future__ import annotations

from typing import Any, Callable

from taskcodec.errors import TaskcodecError

ToolFn = Callable[[Any, Any, dict], dict]


def _detect(decoded, bs, options: dict) -> dict:
    from taskcodec.consumers.machine.detect import run

    return run(decoded, bs, options)


def _classify(decoded, bs, options: dict) -> dict:
    from taskcodec.consumers.machine.classify import run

    return run(decoded, bs, options)


TOOLS: dict[str, ToolFn] = {"detect": _detect, "classify": _classify}


def get_tool(name: str) -> ToolFn:
    try:
        return TOOLS[name]
    except KeyError:
        raise TaskcodecError(f"unknown machine tool {name!r}; available: {', '.join(sorted(TOOLS))}") from None
