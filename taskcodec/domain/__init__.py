"""The ground floor: what every stage may use and that uses nothing above it.

``policy`` (the task policy and its labels), ``vocabulary`` (the label vocabulary, its synonyms
and groups), ``embeddings`` (MiniLM sentence embeddings for label matching) and ``geometry``
(boxes). They import only ``taskcodec.errors``, ``taskcodec.settings`` and ``taskcodec.imageio``.
"""
