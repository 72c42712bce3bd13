"""Consumers of decoded output: machine tasks run on a decoded image (``machine/``) and
reconstruction of a whole image for people (``reconstruct/``). Grounding, the encode side,
is ``taskcodec.grounding``."""
