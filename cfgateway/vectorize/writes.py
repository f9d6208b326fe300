"""Writes of :class:`~cfgateway.vectorize.VectorizeIndex`: insert/upsert in concurrent requests of at most 5,000
vectors, delete by ids, and waiting for the mutations (sync and async; the decisions live in ``plans`` and
``waiting``).

A batch that fails for good stops the write: requests not yet sent are cancelled and the error carries
``.mutations``, the mutations accepted before it (upserts are idempotent: sending the same vectors again is safe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import replace
from typing import Any

from cfgateway.vectorize import plans, wire
from cfgateway.vectorize.port import IndexClient
from cfgateway.vectorize.types import IndexConfig, IndexInfo, MetadataIndex, Mutation, Vector
from cfgateway.vectorize.waiting import (
    UNKNOWN,
    GetInfo,
    GetMetadataIndexes,
    GetVectors,
    Sleep,
    Step,
    WaitPolicy,
    wait_plan,
)

Batches = Iterable[Sequence[Vector]] | AsyncIterable[Sequence[Vector]]


def _attach(exc: BaseException, results: dict[int, Mutation]) -> None:
    try:
        exc.mutations = [results[i] for i in sorted(results)]  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions without a __dict__
        pass


def _reap(done: Iterable[Future[tuple[int, Mutation]]] | Iterable[asyncio.Task[tuple[int, Mutation]]],
          results: dict[int, Mutation]) -> None:
    """Keep every finished success, then raise the first failure."""
    error: BaseException | None = None
    for f in done:
        exc = f.exception()
        if exc is not None:
            error = error or exc
        else:
            i, m = f.result()
            results[i] = m
    if error is not None:
        raise error


async def _aiter(batches: Batches) -> AsyncIterator[Sequence[Vector]]:
    if isinstance(batches, AsyncIterable):
        async for b in batches:
            yield b
    else:
        for b in batches:
            yield b


class IndexWrites:
    """The write half of :class:`~cfgateway.vectorize.VectorizeIndex`."""

    client: IndexClient
    name: str
    namespace: str | None

    def config(self) -> IndexConfig:
        raise NotImplementedError

    async def aconfig(self) -> IndexConfig:
        raise NotImplementedError

    def info(self) -> IndexInfo:
        raise NotImplementedError

    async def ainfo(self) -> IndexInfo:
        raise NotImplementedError

    def list_metadata_indexes(self) -> list[MetadataIndex]:
        raise NotImplementedError

    async def alist_metadata_indexes(self) -> list[MetadataIndex]:
        raise NotImplementedError

    # -- insert / upsert -------------------------------------------------------------------------------------
    def upsert(self, vectors: Sequence[Vector], *, wait: bool = True, timeout: float | None = None) -> list[Mutation]:
        """Insert or replace whole vectors (values and metadata). With ``wait`` (default), returns once the
        writes are readable; otherwise at once, with the mutations to :meth:`wait_for` later."""
        return self.write_batches("upsert", [vectors], wait=wait, timeout=timeout)

    def insert(self, vectors: Sequence[Vector], *, wait: bool = True, timeout: float | None = None) -> list[Mutation]:
        """Insert vectors; ids that already exist are left as they are."""
        return self.write_batches("insert", [vectors], wait=wait, timeout=timeout)

    async def aupsert(self, vectors: Sequence[Vector], *, wait: bool = True, timeout: float | None = None
                      ) -> list[Mutation]:
        return await self.awrite_batches("upsert", [vectors], wait=wait, timeout=timeout)

    async def ainsert(self, vectors: Sequence[Vector], *, wait: bool = True, timeout: float | None = None
                      ) -> list[Mutation]:
        return await self.awrite_batches("insert", [vectors], wait=wait, timeout=timeout)

    def _send_write(self, i: int, kind: str, call: wire.Call, part: Sequence[Vector]) -> tuple[int, Mutation]:
        mid = self.client.send(call)
        return i, plans.write_mutation(kind, self.name, mid, part, self.client.wait_policy.sample)

    async def _asend_write(self, i: int, kind: str, call: wire.Call, part: Sequence[Vector]) -> tuple[int, Mutation]:
        mid = await self.client.asend(call)
        return i, plans.write_mutation(kind, self.name, mid, part, self.client.wait_policy.sample)

    def write_batches(self, kind: str, batches: Iterable[Sequence[Vector]], *, wait: bool = True,
                      timeout: float | None = None) -> list[Mutation]:
        """Write ``batches`` (an iterable, consumed lazily: the next batch may be computed while earlier ones
        upload) in requests of at most 5,000 vectors, ``client.max_concurrency`` at a time."""
        dims = self.config().dimensions
        before = self.info().processed_up_to_mutation if wait else UNKNOWN
        limit = self.client.max_concurrency
        results: dict[int, Mutation] = {}
        inflight: set[Future[tuple[int, Mutation]]] = set()
        n = 0
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="cf-vectorize")
        try:
            for batch in batches:
                vectors = plans.prepare_vectors(batch, self.namespace, dims)
                for call, part in plans.write_calls(self.name, kind, vectors):
                    while len(inflight) >= limit:
                        done, inflight = wait_futures(inflight, return_when=FIRST_COMPLETED)
                        _reap(done, results)
                    inflight.add(pool.submit(self._send_write, n, kind, call, part))
                    n += 1
            while inflight:
                done, inflight = wait_futures(inflight, return_when=FIRST_COMPLETED)
                _reap(done, results)
        except BaseException as exc:
            for f in inflight:
                f.cancel()
            wait_futures(inflight)  # requests already on the wire finish: their mutations are reported too
            results.update(f.result() for f in inflight if not f.cancelled() and f.exception() is None)
            _attach(exc, results)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        mutations = [results[i] for i in sorted(results)]
        if wait:
            self._wait(mutations, timeout, before)
        return mutations

    async def awrite_batches(self, kind: str, batches: Batches, *, wait: bool = True,
                             timeout: float | None = None) -> list[Mutation]:
        dims = (await self.aconfig()).dimensions
        before = (await self.ainfo()).processed_up_to_mutation if wait else UNKNOWN
        limit = self.client.max_concurrency
        results: dict[int, Mutation] = {}
        tasks: set[asyncio.Task[tuple[int, Mutation]]] = set()
        n = 0
        try:
            async for batch in _aiter(batches):
                vectors = plans.prepare_vectors(batch, self.namespace, dims)
                for call, part in plans.write_calls(self.name, kind, vectors):
                    while len(tasks) >= limit:
                        done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                        _reap(done, results)
                    tasks.add(asyncio.create_task(self._asend_write(n, kind, call, part)))
                    n += 1
            while tasks:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                _reap(done, results)
        except BaseException as exc:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            results.update(t.result() for t in tasks if not t.cancelled() and t.exception() is None)
            _attach(exc, results)
            raise
        mutations = [results[i] for i in sorted(results)]
        if wait:
            await self._await(mutations, timeout, before)
        return mutations

    # -- delete ----------------------------------------------------------------------------------------------
    def delete_by_ids(self, ids: Sequence[str], *, wait: bool = True, timeout: float | None = None
                      ) -> list[Mutation]:
        """Delete vectors by id (ids that do not exist are ignored by the service)."""
        chunks = plans.id_chunks(plans.check_unique_ids(ids))
        before = self.info().processed_up_to_mutation if wait and chunks else UNKNOWN
        out = []
        for chunk in chunks:
            mid = self.client.send(wire.delete_by_ids(self.name, chunk))
            out.append(plans.delete_mutation(self.name, mid, chunk, self.client.wait_policy.sample))
        if wait:
            self._wait(out, timeout, before)
        return out

    async def adelete_by_ids(self, ids: Sequence[str], *, wait: bool = True, timeout: float | None = None
                             ) -> list[Mutation]:
        chunks = plans.id_chunks(plans.check_unique_ids(ids))
        before = (await self.ainfo()).processed_up_to_mutation if wait and chunks else UNKNOWN
        out = []
        for chunk in chunks:
            mid = await self.client.asend(wire.delete_by_ids(self.name, chunk))
            out.append(plans.delete_mutation(self.name, mid, chunk, self.client.wait_policy.sample))
        if wait:
            await self._await(out, timeout, before)
        return out

    # -- waiting ---------------------------------------------------------------------------------------------
    def _policy(self, timeout: float | None) -> WaitPolicy:
        policy = self.client.wait_policy
        return policy if timeout is None else replace(policy, timeout=timeout)

    def _raw_vectors(self, ids: Sequence[str]) -> list[Vector]:
        return [v for chunk in plans.id_chunks(ids) for v in self.client.send(wire.get_by_ids(self.name, chunk))]

    async def _araw_vectors(self, ids: Sequence[str]) -> list[Vector]:
        out: list[Vector] = []
        for chunk in plans.id_chunks(ids):
            out += await self.client.asend(wire.get_by_ids(self.name, chunk))
        return out

    def _step(self, step: Step) -> Any:
        if isinstance(step, GetInfo):
            return self.info()
        if isinstance(step, GetVectors):
            return self._raw_vectors(step.ids)
        if isinstance(step, GetMetadataIndexes):
            return self.list_metadata_indexes()
        assert isinstance(step, Sleep)
        time.sleep(step.seconds)
        return None

    async def _astep(self, step: Step) -> Any:
        if isinstance(step, GetInfo):
            return await self.ainfo()
        if isinstance(step, GetVectors):
            return await self._araw_vectors(step.ids)
        if isinstance(step, GetMetadataIndexes):
            return await self.alist_metadata_indexes()
        assert isinstance(step, Sleep)
        await asyncio.sleep(step.seconds)
        return None

    def wait_for(self, mutations: Sequence[Mutation], *, timeout: float | None = None) -> None:
        """Return once every mutation's effect is readable; :class:`cfgateway.TimeoutError` past ``timeout``
        (default: the client's ``wait_policy.timeout``) naming the mutation. See :mod:`cfgateway.vectorize.waiting`."""
        self._wait(mutations, timeout, UNKNOWN)

    async def await_for(self, mutations: Sequence[Mutation], *, timeout: float | None = None) -> None:
        await self._await(mutations, timeout, UNKNOWN)

    def _wait(self, mutations: Sequence[Mutation], timeout: float | None, baseline: Any) -> None:
        if not mutations:
            return
        plan, answer = wait_plan(mutations, self._policy(timeout), baseline=baseline), None
        try:
            while True:
                answer = self._step(plan.send(answer))
        except StopIteration:
            return

    async def _await(self, mutations: Sequence[Mutation], timeout: float | None, baseline: Any) -> None:
        if not mutations:
            return
        plan, answer = wait_plan(mutations, self._policy(timeout), baseline=baseline), None
        try:
            while True:
                answer = await self._astep(plan.send(answer))
        except StopIteration:
            return


__all__ = ["IndexWrites"]
