"""Prefect flows composing the stages of ``taskcodec.pipeline``."""

from taskcodec.flows.runtime import configure_prefect

configure_prefect()

from taskcodec.flows.compress import ImageReport, compress_flow, decode_flow  # noqa: E402

__all__ = ["ImageReport", "compress_flow", "decode_flow"]
