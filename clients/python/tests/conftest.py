from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from harness import FakeProvider, FaultProxy, LimitryServer
from limitry_selfhosted import AsyncLimitry, Limitry


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitryServer]:
    """One service for the suite, on a fresh SQLite file; tests use their own customers."""
    srv = LimitryServer(tmp_path_factory.mktemp("limitry"))
    srv.api_key = srv.create_key("suite")  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LimitryServer]:
    """A service this test may stop and restart."""
    srv = LimitryServer(tmp_path)
    srv.api_key = srv.create_key("own")  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def client(server: LimitryServer) -> Iterator[Limitry]:
    with Limitry(server.api_key, base_url=server.url, backoff_base=0.05) as c:  # type: ignore[attr-defined]
        yield c


@pytest.fixture
async def aclient(server: LimitryServer):
    async with AsyncLimitry(server.api_key, base_url=server.url, backoff_base=0.05) as c:  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def proxy(server: LimitryServer) -> Iterator[FaultProxy]:
    p = FaultProxy(server.port)
    yield p
    p.close()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider(input_tokens=123, output_tokens=45)
    yield p
    p.close()


_counter = itertools.count()


@pytest.fixture
def customer() -> str:
    """A customer external id no other test uses."""
    return f"cust-{uuid.uuid4().hex[:10]}-{next(_counter)}"


def make_token_meter(client: Limitry, field: str = "values.total_tokens", name: str = "Tokens"):
    return client.meters.create(name=f"{name} {uuid.uuid4().hex[:6]}", aggregation="sum", field=field,
                                event_filter={"eventType": "llm.completion"})
