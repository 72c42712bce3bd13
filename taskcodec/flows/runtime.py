"""Prefect's environment, set before ``prefect`` is first imported.

By default each data dir gets its own Prefect home, and calling a flow starts a
temporary local Prefect server there. Set ``PREFECT_API_URL`` to use a real
Prefect server instead (see README).
"""

from __future__ import annotations

import os
import sys

from taskcodec.settings import get_settings


def configure_prefect() -> None:
    if "prefect" in sys.modules:
        return
    s = get_settings()
    home = s.prefect_home
    home.mkdir(parents=True, exist_ok=True)
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
