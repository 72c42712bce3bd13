"""``python -m taskcodec``: the same as the ``taskcodec`` command."""

from taskcodec.cli import main

main()
