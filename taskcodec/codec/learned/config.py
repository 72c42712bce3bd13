"""The learned codec's run-time options: which weights, and the tile size of its transforms.

The codec reads nothing of the application's settings: ``current()`` asks a provider, by default
the shipped weights and 1024-px tiles. The application installs its own (``configure``):
``taskcodec`` (the package root) wires ``TASKCODEC_LEARNED_WEIGHTS`` / ``TASKCODEC_LEARNED_TILE``
in, read afresh at every call so a changed setting takes effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class LearnedConfig:
    weights: Path | None = None  # None: the weights shipped with the package
    tile: int = 1024  # px; g_a and g_s run on tiles of this size (a multiple of 64, at least 64)


_provider: Callable[[], LearnedConfig] = LearnedConfig


def configure(provider: Callable[[], LearnedConfig]) -> None:
    """Where ``current()`` gets the options from from now on."""
    global _provider
    _provider = provider


def current() -> LearnedConfig:
    return _provider()
