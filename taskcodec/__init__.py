"""taskcodec: compress images for the job they will be used for.

Data flows one way through plain, typed stage functions::

    task text -> TaskPolicy -> [Detection] -> [Decision] -> layers -> bytes -> decode route

See ``taskcodec.pipeline`` for the stages and ``taskcodec.flows`` for their
Prefect composition.
"""

__version__ = "0.1.0"
