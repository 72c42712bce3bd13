"""taskcodec: compress images for the job they will be used for.

Data flows one way through plain, typed stage functions::

    task text -> TaskPolicy -> [Detection] -> [Decision] -> layers -> bytes -> decode route

See ``taskcodec.stages`` for the stages and ``taskcodec.flows`` for their
Prefect composition.
"""

__version__ = "0.1.0"


def _learned_config():
    """The learned codec's options from taskcodec's settings (the codec library reads no settings)."""
    from taskcodec.codec.learned.config import LearnedConfig
    from taskcodec.settings import get_settings

    s = get_settings()
    return LearnedConfig(weights=s.learned_weights, tile=s.learned_tile)


def _wire_codecs() -> None:
    from taskcodec.codec.learned import config

    config.configure(_learned_config)


_wire_codecs()

__all__ = ["compress", "decode", "explain", "plan"]


def __getattr__(name: str):  # the API loads on first use, so `import taskcodec` stays light
    if name in ("compress", "decode", "explain", "plan", "Decoded", "Encoded"):
        from taskcodec import api

        return getattr(api, name)
    raise AttributeError(f"module 'taskcodec' has no attribute {name!r}")
