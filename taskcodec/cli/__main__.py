"""``python -m taskcodec.cli``."""

from taskcodec.cli import main

main()
