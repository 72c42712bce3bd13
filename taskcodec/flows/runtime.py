"""Prefect's environment, set before ``prefect`` is first imported.

A user who has set Prefect up (``PREFECT_API_URL``, ``PREFECT_HOME``, ``PREFECT_PROFILE``
or ``PREFECT_PROFILES_PATH`` in the environment, or a ``~/.prefect/profiles.toml``)
gets exactly that: taskcodec changes none of it, and flows run on their server and
log to it. Otherwise each taskcodec data dir gets its own Prefect home, where calling
a flow starts a temporary local server, and Prefect's console handler shows warnings
only (the runs' INFO logs still reach the server, for its UI). A taskcodec process
killed with -9 leaves that temporary server running; the next one reaps it
(``reap_orphaned_servers``).

Interactive commands do not need any of this: ``use_flows`` says when a command
should run as a flow at all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


USER_SETTINGS = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH")


def _profiles_file() -> Path:
    return Path(os.environ.get("PREFECT_PROFILES_PATH")
                or Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect") / "profiles.toml")


def user_has_prefect() -> bool:
    """Whether the user set Prefect up themselves (environment or profiles file)."""
    return any(os.environ.get(k) for k in USER_SETTINGS) or _profiles_file().is_file()


def server_configured() -> bool:
    """Whether flows would run on a Prefect server the user runs: ``PREFECT_API_URL`` in the environment
    or in the active profile of their profiles file."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    try:
        import tomllib

        profiles = tomllib.loads(_profiles_file().read_text())
    except (OSError, ValueError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return bool(profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


INTERACTIVE_MAX_IMAGES = 8


def use_flows(n_items: int) -> bool:
    """Run as a Prefect flow? ``TASKCODEC_FLOWS`` always / never decide; auto: yes for a batch (more than
    ``INTERACTIVE_MAX_IMAGES`` items) and whenever a Prefect server is configured, while a few files with
    no server are done directly, with no server start."""
    mode = get_settings().flows
    if mode != "auto":
        return mode == "always"
    return n_items > INTERACTIVE_MAX_IMAGES or server_configured()


def configure_prefect() -> None:
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    os.environ.setdefault("DASK_DISTRIBUTED__WORKER__DAEMON", "false")  # workers may start processes
    if "prefect" in sys.modules:
        return
    home = get_settings().prefect_home
    if not server_configured():  # a temporary server a killed taskcodec left behind, in whichever home it used
        reap_orphaned_servers(os.environ.get("PREFECT_HOME") or str(home))
    if user_has_prefect():
        return
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    }
    for k, v in defaults.items():
        os.environ.setdefault(k, v)
    if not os.environ.get("TASKCODEC_PREFECT_VERBOSE"):  # quiet terminal; the server still gets INFO logs
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
