"""Prefect flows composing the stages of ``taskcodec.pipeline``."""

from taskcodec.flows.runtime import configure_prefect

configure_prefect()

from taskcodec.flows.archive import ArchiveItem, archive_flow, run_archive  # noqa: E402
from taskcodec.flows.compress import ImageReport, compress_flow, decode_flow  # noqa: E402

__all__ = ["ArchiveItem", "ImageReport", "archive_flow", "compress_flow", "decode_flow", "run_archive"]
