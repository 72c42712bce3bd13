"""Prefect flows composing the stages of ``taskcodec.stages`` (the loops live in ``taskcodec.batch``).

Importing this package sets Prefect's environment (``runtime.configure_prefect``) but not Prefect
itself: the flows load on first use, so ``taskcodec.flows.runtime`` stays cheap for commands that
only ask whether to run a flow at all.
"""

from importlib import import_module

from taskcodec.flows.runtime import configure_prefect

configure_prefect()

_EXPORTS = {"ArchiveItem": "archive", "archive_flow": "archive", "run_archive": "archive",
            "compress_flow": "compress", "decode_flow": "compress", "run_compress": "compress",
            "run_decode": "compress", "ImageReport": "compress"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'taskcodec.flows' has no attribute {name!r}")
    return getattr(import_module(f"taskcodec.flows.{_EXPORTS[name]}"), name)
