"""Auto-pagination over ``{data, nextCursor, hasMore}`` lists.

Iterating a pager walks every page lazily (``for x in client.meters.list()`` /
``async for x in …``); ``first_page()`` returns one page when the caller pages by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Dict, Generic, Iterator, List, Optional, TypeVar

from pydantic import TypeAdapter

from ._base import Request

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    data: List[T]
    next_cursor: Optional[str]
    has_more: bool


def _page(raw: Any, adapter: TypeAdapter) -> Page:
    if isinstance(raw, list):  # a list the service answers unpaged: one page
        return Page([adapter.validate_python(x) for x in raw], None, False)
    items = [adapter.validate_python(x) for x in raw.get("data", [])]
    cursor = raw.get("nextCursor")
    return Page(items, cursor, bool(raw.get("hasMore")) and cursor is not None)


class SyncPager(Generic[T]):
    def __init__(self, send: Callable[[Request], Any], request: Request, item: Any) -> None:
        self._send = send
        self._request = request
        self._adapter: TypeAdapter = TypeAdapter(item)

    def _fetch(self, cursor: Optional[str]) -> Page[T]:
        params: Dict[str, Any] = dict(self._request.params or {})
        if cursor is not None:
            params["cursor"] = cursor
        req = Request(method="GET", path=self._request.path, params=params)
        return _page(self._send(req).json(), self._adapter)

    def first_page(self) -> Page[T]:
        return self._fetch((self._request.params or {}).get("cursor"))

    def pages(self) -> Iterator[Page[T]]:
        page = self.first_page()
        yield page
        while page.has_more:
            page = self._fetch(page.next_cursor)
            yield page

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data

    def to_list(self) -> List[T]:
        return list(self)


class AsyncPager(Generic[T]):
    def __init__(self, send: Callable[[Request], Any], request: Request, item: Any) -> None:
        self._send = send
        self._request = request
        self._adapter: TypeAdapter = TypeAdapter(item)

    async def _fetch(self, cursor: Optional[str]) -> Page[T]:
        params: Dict[str, Any] = dict(self._request.params or {})
        if cursor is not None:
            params["cursor"] = cursor
        req = Request(method="GET", path=self._request.path, params=params)
        return _page((await self._send(req)).json(), self._adapter)

    async def first_page(self) -> Page[T]:
        return await self._fetch((self._request.params or {}).get("cursor"))

    async def pages(self) -> AsyncIterator[Page[T]]:
        page = await self.first_page()
        yield page
        while page.has_more:
            page = await self._fetch(page.next_cursor)
            yield page

    async def __aiter__(self) -> AsyncIterator[T]:  # type: ignore[override]
        async for page in self.pages():
            for item in page.data:
                yield item

    async def to_list(self) -> List[T]:
        return [item async for item in self]
