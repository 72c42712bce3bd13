"""A local LLM for the task agent: a GGUF file served in-process by llama.cpp (xllamacpp).

Set ``TASKCODEC_LLM_GGUF=/path/model.gguf`` (extra ``[local-llm]``). The first planning
call starts llama.cpp's own OpenAI-compatible HTTP server inside this process, on a
free loopback port, and the agent talks to it through the same OpenAI client and
LangGraph graph as to any remote endpoint. Structured output is enforced by
llama.cpp: the JSON schema of ``LabelProposal`` becomes a grammar, so the model can
only emit JSON of that shape (a weak model can still choose poor labels: the
agent's validate step and the offline fallback still apply).

One server per (file, threads) per process; it stops when the process ends.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

_LOCK = threading.Lock()


class LocalLLMError(Exception):
    """The local model cannot be served (missing extra, missing or unreadable file)."""


def model_name(gguf: Path) -> str:
    """The model name a local GGUF is stored and cached under."""
    return f"gguf:{Path(gguf).name}"


def base_url(gguf: Path, threads: int = 2, n_ctx: int = 4096) -> str:
    """The ``/v1`` URL of the in-process llama.cpp server for ``gguf`` (started on first use)."""
    with _LOCK:
        return _serve(str(Path(gguf).expanduser().resolve()), threads, n_ctx)


@lru_cache(maxsize=4)
def _serve(path: str, threads: int, n_ctx: int) -> str:
    if not Path(path).is_file():
        raise LocalLLMError(f"TASKCODEC_LLM_GGUF: {path} does not exist")
    from taskcodec.errors import require_extra

    require_extra("local-llm", "TASKCODEC_LLM_GGUF (a local LLM)", "xllamacpp")
    import xllamacpp as xlc
    params = xlc.CommonParams()
    params.model.path = path
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    try:
        server = xlc.Server(params)
    except Exception as exc:  # llama.cpp says why: not a GGUF, unsupported architecture...
        raise LocalLLMError(f"TASKCODEC_LLM_GGUF: {path} could not be loaded ({exc})") from None
    _SERVERS.append(server)  # kept alive for the process
    return server.listening_address.rstrip("/") + "/v1"


_SERVERS: list = []
