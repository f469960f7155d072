"""A LangChain callback handler (``langchain-core``) that guards any chat model or LLM.

    from limitry_selfhosted.integrations.langchain import LimitryCallbackHandler

    handler = LimitryCallbackHandler(limitry, customer_id="acme")
    model.invoke("Hello", config={"callbacks": [handler]})

Before each model run it checks the customer's limits (dimensions ``provider: langchain`` and
``model`` plus your own) and raises ``LimitExceededError`` when denied, so the model is never
called (the handler sets ``raise_error``). When the run ends it records the token usage the
provider reported (``usage_metadata`` of the messages, else ``llm_output.token_usage``).
Works for ``invoke``, ``stream`` and their async forms (with a sync ``Limitry`` client).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Mapping, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from .._errors import LimitExceededError
from ._core import Guard, token_values

__all__ = ["LimitryCallbackHandler"]


def _model_name(serialized: Optional[Dict[str, Any]], kwargs: Dict[str, Any]) -> Optional[str]:
    params = kwargs.get("invocation_params") or {}
    metadata = kwargs.get("metadata") or {}
    for value in (params.get("model"), params.get("model_name"), metadata.get("ls_model_name")):
        if value:
            return str(value)
    ser_kwargs = (serialized or {}).get("kwargs") or {}
    name = ser_kwargs.get("model") or ser_kwargs.get("model_name")
    return str(name) if name else None


def usage_from_result(response: LLMResult) -> Optional[Dict[str, int]]:
    inputs = outputs = 0
    found = False
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None) if message is not None else None
            if usage:
                found = True
                inputs += int(usage.get("input_tokens") or 0)
                outputs += int(usage.get("output_tokens") or 0)
    if found:
        return token_values(inputs, outputs)
    token_usage = (response.llm_output or {}).get("token_usage") or (response.llm_output or {}).get("usage")
    if token_usage:
        return token_values(token_usage.get("prompt_tokens", token_usage.get("input_tokens")),
                            token_usage.get("completion_tokens", token_usage.get("output_tokens")))
    return None


class LimitryCallbackHandler(BaseCallbackHandler):
    """Checks before every chat model / LLM run and records its reported usage after it."""

    raise_error = True  # a denied check must stop the run, not be logged and ignored

    def __init__(self, limitry: Any, *, customer_id: str, event_type: str = "llm.completion",
                 dimensions: Optional[Mapping[str, str]] = None, requested: Optional[float] = None,
                 fail_mode: Optional[str] = None, recorder: Any = None) -> None:
        super().__init__()
        self.guard = Guard(limitry, customer_id=customer_id, provider="langchain", event_type=event_type,
                           dimensions=dimensions, requested=requested, fail_mode=fail_mode, recorder=recorder)
        self._runs: Dict[UUID, Optional[str]] = {}
        self._lock = threading.Lock()

    def _start(self, run_id: UUID, model: Optional[str]) -> None:
        check = self.guard.limitry.limits.check(self.guard.customer_id, dimensions=self.guard.dims(model),
                                                requested=self.guard.requested, fail_mode=self.guard.fail_mode)
        if not check.allowed:
            raise LimitExceededError(check)
        with self._lock:
            self._runs[run_id] = model

    def on_chat_model_start(self, serialized: Dict[str, Any], messages: List[List[Any]], *, run_id: UUID,
                            **kwargs: Any) -> None:
        self._start(run_id, _model_name(serialized, kwargs))

    def on_llm_start(self, serialized: Dict[str, Any], prompts: List[str], *, run_id: UUID, **kwargs: Any) -> None:
        self._start(run_id, _model_name(serialized, kwargs))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            model = self._runs.pop(run_id, None)
        values = usage_from_result(response)
        if values is not None:
            self.guard.record(model, values)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
