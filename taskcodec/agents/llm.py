"""The LLM planner: any OpenAI-compatible endpoint through langchain-openai.

``propose_llm`` asks once for a structured ``LabelProposal`` (JSON schema or tool
call). Transient failures (429, 5xx, timeouts, refused connections) are retried
with exponential backoff (tenacity); an answer that does not fit the schema gets one repair
round, in which the model sees its answer and the validation error. Whatever
still fails raises ``LLMFailure`` with the reason, and the agent falls back to
the offline planner, recording why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from taskcodec.domain.policy import MAX_LABELS
from taskcodec.prompts import prompt_version, system_prompt, user_message
from taskcodec.settings import Settings



class ProposedLabel(BaseModel):
    """Every field is required (OpenAI's strict JSON-schema mode asks for that); values are
    checked and clamped by the agent's validate step, not rejected here."""

    name: str = Field(description="singular, lower-case noun phrase")
    importance: float = Field(description="0 to 1, higher = more important")
    synonyms: list[str]


class LabelProposal(BaseModel):
    granularity: Literal["coarse", "object", "fine"]
    labels: list[ProposedLabel] = Field(max_length=4 * MAX_LABELS)
    refusal: str | None = Field(description="null, unless no label is planned: then why")


class BoundedLabel(ProposedLabel):
    name: str = Field(max_length=32, description="singular, lower-case noun phrase")
    synonyms: list[Annotated[str, Field(max_length=24)]] = Field(max_length=2)


class BoundedProposal(LabelProposal):
    """The schema a small local model is held to: a grammar this tight keeps it from looping."""

    labels: list[BoundedLabel] = Field(max_length=8)
    refusal: str | None = Field(max_length=200, description="null, unless no label is planned: then why")


LOCAL_MAX_TOKENS = 1024


class LLMFailure(Exception):
    def __init__(self, reason: str, attempts: list[dict]):
        self.reason, self.attempts = reason, attempts
        super().__init__(reason)


@dataclass
class LLMResult:
    proposal: LabelProposal
    attempts: list[dict] = field(default_factory=list)  # one entry per request: outcome, seconds
    repaired: bool = False


def llm_configured(s: Settings) -> bool:
    return bool(s.llm_gguf or s.llm_base_url or s.llm_model)


def _model(s: Settings) -> str:
    if s.llm_gguf:
        from taskcodec.agents.local_llm import model_name

        return model_name(s.llm_gguf)
    return s.llm_model or "gpt-4o-mini"


def llm_identity(s: Settings) -> tuple[str, str]:
    """(model name, prompt version) that key the policy cache for the LLM backend."""
    return _model(s), prompt_version(MAX_LABELS)


def _client(s: Settings, method: str):
    from taskcodec.errors import require_extra

    require_extra("llm", "the LLM task agent (TASKCODEC_LLM_BASE_URL)", "langchain_openai", "openai")
    from langchain_openai import ChatOpenAI

    url = s.llm_base_url
    if s.llm_gguf:  # served in-process by llama.cpp; its grammar enforces the JSON schema
        from taskcodec.agents.local_llm import LocalLLMError, base_url

        try:
            url = base_url(s.llm_gguf)
        except LocalLLMError as exc:
            raise LLMFailure(str(exc), [{"outcome": f"not started: {exc}", "seconds": 0.0}]) from None
        chat = ChatOpenAI(model=_model(s), base_url=url, api_key="none", max_retries=0, temperature=0,
                          timeout=max(s.llm_timeout_s, 120.0), max_tokens=LOCAL_MAX_TOKENS)
        return chat.with_structured_output(BoundedProposal, method="json_schema", include_raw=True)
    chat = ChatOpenAI(model=_model(s), base_url=url, api_key=s.llm_api_key or "none",
                      max_retries=0, timeout=s.llm_timeout_s, temperature=0)
    return chat.with_structured_output(LabelProposal, method=method, include_raw=True)


def _transient(exc: Exception) -> bool:
    import openai

    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                        openai.InternalServerError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``: seconds or an HTTP date), if it did."""
    response = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def _invoke(runnable, messages, s: Settings, attempts: list[dict]):
    """One logical request, retried on transient errors by tenacity: exponential backoff with full
    jitter, or the server's ``Retry-After`` when it gives one; at most ``llm_max_retries`` retries, and
    none that would end past ``llm_max_retry_s`` from the first try."""
    from tenacity import (RetryError, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay,
                          wait_random_exponential)

    def once():
        t0 = time.perf_counter()
        try:
            out = runnable.invoke(messages)
        except ValueError as exc:  # the client could not parse the answer (JSON or schema): invalid output
            attempts.append({"outcome": f"invalid answer: {str(exc)[:160]}", "seconds": round(time.perf_counter() - t0, 3)})
            return {"raw": None, "parsed": None, "parsing_error": exc}
        except Exception as exc:
            attempts.append({"outcome": f"{type(exc).__name__}: {str(exc)[:160]}",
                             "seconds": round(time.perf_counter() - t0, 3)})
            raise
        attempts.append({"outcome": "answered", "seconds": round(time.perf_counter() - t0, 3)})
        return out

    backoff = wait_random_exponential(multiplier=s.llm_backoff_s, max=max(s.llm_backoff_s, s.llm_max_retry_s))

    def wait(state) -> float:
        server = retry_after(state.outcome.exception())
        return backoff(state) if server is None else server

    tries = s.llm_max_retries + 1
    retrying = Retrying(retry=retry_if_exception(_transient), wait=wait,
                        stop=stop_after_attempt(tries) | stop_before_delay(s.llm_max_retry_s))
    try:
        return retrying(once)
    except RetryError as err:
        exc = err.last_attempt.exception()
        if err.last_attempt.attempt_number >= tries:
            raise LLMFailure(f"LLM unavailable after {tries} tries: {type(exc).__name__}", attempts) from None
        wait_s = retry_after(exc)
        wait_s = f"{wait_s:.0f} s" if wait_s is not None else "longer"
        raise LLMFailure(f"LLM unavailable: the next retry would wait {wait_s}, past the {s.llm_max_retry_s:.0f} s "
                         "cap (TASKCODEC_LLM_MAX_RETRY_S)", attempts) from None
    except Exception as exc:  # not transient: no retry
        raise LLMFailure(f"LLM request failed: {type(exc).__name__}: {str(exc)[:200]}", attempts) from None


def propose_llm(task: str, s: Settings) -> LLMResult:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    runnable = _client(s, s.llm_structured_method)
    messages = [SystemMessage(system_prompt(MAX_LABELS)), HumanMessage(user_message(task))]
    attempts: list[dict] = []
    out = _invoke(runnable, messages, s, attempts)
    if out.get("parsed") is not None and out.get("parsing_error") is None:
        return LLMResult(out["parsed"], attempts)
    error = str(out.get("parsing_error") or "the answer did not match the schema")[:500]
    raw = out.get("raw")
    answer = getattr(raw, "content", "") or str(getattr(raw, "additional_kwargs", ""))[:2000]
    repair = messages + [
        AIMessage(answer or "(empty)"),
        HumanMessage(f"Your answer could not be used: {error}\nAnswer again with only a valid JSON object "
                     "of the requested schema."),
    ]
    out = _invoke(runnable, repair, s, attempts)
    if out.get("parsed") is not None and out.get("parsing_error") is None:
        return LLMResult(out["parsed"], attempts, repaired=True)
    raise LLMFailure(f"LLM answer invalid after one repair round: {str(out.get('parsing_error'))[:200]}", attempts)
