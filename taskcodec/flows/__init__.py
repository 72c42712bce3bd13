"""Prefect flows composing the stages of ``taskcodec.stages`` (the loops live in ``taskcodec.batch``).

Importing this package changes nothing: a program that embeds the flows runs them on its own Prefect
setup. The entry points (the CLI's root command, the benchmark scripts) call
``runtime.configure_prefect`` first. The flows load on first use, so ``taskcodec.flows.runtime``
stays cheap for commands that only ask whether to run a flow at all.
"""

from importlib import import_module

_EXPORTS = {"ArchiveItem": "archive", "archive_flow": "archive", "run_archive": "archive",
            "compress_flow": "compress", "decode_flow": "compress", "run_compress": "compress",
            "run_decode": "compress", "ImageReport": "compress"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'taskcodec.flows' has no attribute {name!r}")
    return getattr(import_module(f"taskcodec.flows.{_EXPORTS[name]}"), name)
