"""Prefect's environment, set before ``prefect`` is first imported.

By default each data dir gets its own Prefect home, and calling a flow starts a
temporary local Prefect server there. Set ``PREFECT_API_URL`` to use a real
Prefect server instead (see README). A taskcodec process killed with -9 leaves
that temporary server running; the next one reaps it (``reap_orphaned_servers``).
"""

from __future__ import annotations

import os
import sys

from taskcodec.settings import get_settings


SERVER_APP = "prefect.server.api.server:create_app"


def reap_orphaned_servers(prefect_home: str) -> list[int]:
    """Stop temporary Prefect servers of this Prefect home whose parent died (adopted by init).

    Linux only (reads /proc); a server someone else started, or one whose parent lives, is left alone."""
    import signal

    killed = []
    proc = "/proc"
    if not os.path.isdir(proc):
        return killed
    for pid in filter(str.isdigit, os.listdir(proc)):
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            if SERVER_APP not in cmd:
                continue
            with open(f"{proc}/{pid}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"{proc}/{pid}/environ", "rb") as fh:
                env = dict(kv.split(b"=", 1) for kv in fh.read().split(b"\0") if b"=" in kv)
        except (OSError, ValueError, IndexError):
            continue
        if ppid == 1 and env.get(b"PREFECT_HOME", b"").decode(errors="replace") == prefect_home:
            try:
                os.kill(int(pid), signal.SIGTERM)
                killed.append(int(pid))
            except OSError:
                pass
    return killed


def configure_prefect() -> None:
    if "prefect" in sys.modules:
        return
    s = get_settings()
    home = s.prefect_home
    home.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("PREFECT_API_URL"):
        reap_orphaned_servers(str(home))
    defaults = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "DASK_LOGGING__DISTRIBUTED": "warning",
        "DASK_DISTRIBUTED__WORKER__DAEMON": "false",
    }
    for k, v in defaults.items():
        os.environ.setdefault(k, v)
    if not os.environ.get("TASKCODEC_PREFECT_VERBOSE"):
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
