"""``taskcodec`` command line: a package of command modules on one root app (``common.app``).

    common    the root app, consoles, input expansion, failures, progress, report table
    encode    plan, ground, compress, archive
    demo      the offline end-to-end demo
    decode    decode, info, why
    codec     bench, train-codec
    schedule  the ``schedule`` sub-app (create, list, pause, resume, delete) and serve

Importing the package registers every command; the modules import ``common`` only, never each
other or this file.
"""

from __future__ import annotations

from rich.markup import escape

# Importing a command module registers its commands, in this order in --help.
from taskcodec.cli import encode  # noqa: F401,I001
from taskcodec.cli import demo  # noqa: F401
from taskcodec.cli import schedule  # noqa: F401
from taskcodec.cli import codec  # noqa: F401
from taskcodec.cli import decode  # noqa: F401
from taskcodec.cli.common import app, err
from taskcodec.errors import TaskcodecError

__all__ = ["app", "main"]


def main() -> None:
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except TaskcodecError as exc:  # raised outside a command's own handling (a store fault, say): one line
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise SystemExit(1) from None
    except OperationalError as exc:  # the store failed mid-command: locked past the busy timeout, disk full...
        from taskcodec.settings import get_settings

        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        hint = " (another process holds it; TASKCODEC_DB_BUSY_TIMEOUT_S)" if "locked" in reason else ""
        err.print(f"[red]error:[/] {escape(get_settings().db_url)}: the store failed: {escape(reason)}{hint}")
        raise SystemExit(1) from None
