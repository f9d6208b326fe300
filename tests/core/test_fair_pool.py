"""The transport's connection pools never give one idle connection to two waiting requests.

httpcore's own assignment does (shown first, so the reason for the fair pool stays visible): the second
request then fails with ConnectionNotAvailable and queues again, and under load some requests lose that
race for seconds. The pools are driven directly with stand-in connections (no sockets), then the transport
is checked to build its clients on the fair pools, and 48 concurrent requests through it all succeed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import pytest

from cfgateway.http._pools import FairAsyncPool, FairPool
from cfgateway.http.transport import Transport


class Conn:
    """A stand-in HTTP/1.1 connection: idle and available until ``busy``."""

    def __init__(self) -> None:
        self.busy = False

    def is_closed(self) -> bool:
        return False

    def has_expired(self) -> bool:
        return False

    def is_idle(self) -> bool:
        return not self.busy

    def is_available(self) -> bool:
        return not self.busy

    def can_handle_request(self, origin: Any) -> bool:
        return True


def _pool(cls: type[Any], sync: bool, idle: int, max_connections: int = 10) -> Any:
    class Pool(cls):  # type: ignore[misc, valid-type]
        def create_connection(self, origin: Any) -> Conn:
            return Conn()

    pool = Pool(max_connections=max_connections)
    pool._connections = [Conn() for _ in range(idle)]
    request_cls = (httpcore._sync.connection_pool.PoolRequest if sync
                   else httpcore._async.connection_pool.AsyncPoolRequest)
    pool._requests = [request_cls(httpcore.Request("POST", "http://127.0.0.1:9/x")) for _ in range(3)]
    return pool


def _assign(pool: Any, sync: bool) -> None:
    """Run the pool's assignment (the async pool's events need a running loop)."""
    if sync:
        pool._assign_requests_to_connections()
        return

    async def run() -> None:
        pool._assign_requests_to_connections()

    asyncio.run(run())


@pytest.mark.parametrize("sync", [False, True])
def test_httpcore_gives_one_idle_connection_to_every_waiting_request(sync: bool) -> None:
    base = httpcore.ConnectionPool if sync else httpcore.AsyncConnectionPool
    pool = _pool(base, sync, idle=1)
    _assign(pool, sync)
    assert len({id(r.connection) for r in pool._requests}) == 1  # three requests, one connection


@pytest.mark.parametrize("sync", [False, True])
def test_fair_pool_gives_each_waiting_request_its_own_connection(sync: bool) -> None:
    pool = _pool(FairPool if sync else FairAsyncPool, sync, idle=1)
    _assign(pool, sync)
    conns = [r.connection for r in pool._requests]
    assert len({id(c) for c in conns}) == 3 and conns[0] is pool._connections[0]  # the idle one, then two new
    assert len(pool._connections) == 3


def test_fair_pool_at_its_limit_leaves_the_rest_waiting() -> None:
    pool = _pool(FairPool, True, idle=1, max_connections=2)
    _assign(pool, True)
    assert [r.connection is not None for r in pool._requests] == [True, True, False]
    assert len(pool._connections) == 2
    for c in pool._connections:  # both now in use; the third still waits
        c.busy = True
    _assign(pool, True)
    assert pool._requests[2].connection is None


def test_transport_builds_its_clients_on_fair_pools(cf_emulator: Any) -> None:
    t = Transport()
    assert type(t.sync_client._transport._pool) is FairPool  # type: ignore[attr-defined]
    url = f"{cf_emulator.base_url}/accounts/acct/ai/run/@cf/meta/llama-3.1-8b-instruct"
    headers = {"Authorization": "Bearer test-token"}

    async def run() -> list[int]:
        assert type(t.async_client._transport._pool) is FairAsyncPool  # type: ignore[attr-defined]
        answers = await asyncio.gather(*(t.apost(url, headers, {"prompt": f"hi {i}"}) for i in range(48)))
        return [a.status for a in answers]

    assert asyncio.run(run()) == [200] * 48
    assert len(cf_emulator.state.requests) == 48
