"""Sending one request with timeouts and retries, in a sync and an async flavour.

Retries (``max_retries``, default 2) cover connection failures, timeouts, 429 (waiting at least
``Retry-After``) and 5xx. The request body is encoded once and the same bytes, with the same
``Idempotency-Key``, go out on every attempt, so the service counts a retried write once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from ._base import (
    MAX_RETRY_AFTER,
    Request,
    __version__,
    error_from_response,
    retry_delay,
    should_retry_status,
)
from ._errors import APIConnectionError, APIError, APITimeoutError, RateLimitError

T = TypeVar("T")

_USER_AGENT = f"limitry-selfhosted-python/{__version__}"


def _headers(api_key: str, request: Request) -> dict:
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Accept": request.accept,
        "User-Agent": _USER_AGENT,
    }
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    if request.idempotency_key is not None:
        headers["Idempotency-Key"] = request.idempotency_key
    headers.update(request.headers)
    return headers


def _transport_error(exc: Exception) -> APIError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"The Limitry service did not answer in time: {exc!r}")
    return APIConnectionError(f"Could not reach the Limitry service: {exc!r}")


def _retry_transport(request: Request, exc: Exception) -> bool:
    if request.retry == "always":
        return True
    # A write the service cannot deduplicate: only when it surely never left.
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def parse(response: httpx.Response, model: Any) -> Any:
    if model is None:
        return None
    if model is str:
        return response.text
    if response.status_code == 204 or not response.content:
        return None
    data = response.json()
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(data)
    return TypeAdapter(model).validate_python(data)


class SyncTransport:
    def __init__(self, *, api_key: str, base_url: str, timeout: Any, max_retries: int,
                 backoff_base: float, backoff_cap: float, http_client: Optional[httpx.Client]) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._owns_http = http_client is None
        self.http = http_client or httpx.Client(timeout=timeout)
        self.timeout = timeout

    def send(self, request: Request) -> httpx.Response:
        content = request.encoded()
        headers = _headers(self.api_key, request)
        url = self.base_url + request.path
        timeout = request.timeout if request.timeout is not None else self.timeout
        attempt = 0
        while True:
            try:
                response = self.http.request(request.method, url, params=request.params, content=content,
                                             headers=headers, timeout=timeout)
            except httpx.TransportError as exc:
                error: APIError = _transport_error(exc)
                if attempt >= self.max_retries or not _retry_transport(request, exc):
                    raise error from exc
                time.sleep(retry_delay(attempt, None, self.backoff_base, self.backoff_cap))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            failure = error_from_response(response)
            retry_after = getattr(failure, "retry_after", None)
            if (attempt >= self.max_retries or not should_retry_status(request, response.status_code)
                    or (retry_after is not None and retry_after > MAX_RETRY_AFTER)):
                raise failure
            time.sleep(retry_delay(attempt, retry_after, self.backoff_base, self.backoff_cap))
            attempt += 1

    def close(self) -> None:
        if self._owns_http:
            self.http.close()


class AsyncTransport:
    def __init__(self, *, api_key: str, base_url: str, timeout: Any, max_retries: int,
                 backoff_base: float, backoff_cap: float, http_client: Optional[httpx.AsyncClient]) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._owns_http = http_client is None
        self.http = http_client or httpx.AsyncClient(timeout=timeout)
        self.timeout = timeout

    async def send(self, request: Request) -> httpx.Response:
        content = request.encoded()
        headers = _headers(self.api_key, request)
        url = self.base_url + request.path
        timeout = request.timeout if request.timeout is not None else self.timeout
        attempt = 0
        while True:
            try:
                response = await self.http.request(request.method, url, params=request.params, content=content,
                                                   headers=headers, timeout=timeout)
            except httpx.TransportError as exc:
                error: APIError = _transport_error(exc)
                if attempt >= self.max_retries or not _retry_transport(request, exc):
                    raise error from exc
                await asyncio.sleep(retry_delay(attempt, None, self.backoff_base, self.backoff_cap))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            failure = error_from_response(response)
            retry_after = getattr(failure, "retry_after", None)
            if (attempt >= self.max_retries or not should_retry_status(request, response.status_code)
                    or (retry_after is not None and retry_after > MAX_RETRY_AFTER)):
                raise failure
            await asyncio.sleep(retry_delay(attempt, retry_after, self.backoff_base, self.backoff_cap))
            attempt += 1

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()


__all__ = ["SyncTransport", "AsyncTransport", "parse", "RateLimitError"]
