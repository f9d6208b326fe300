"""The Vectorize v2 REST client: an account's indexes, and :meth:`VectorizeClient.index` for one of them.

Settings come from :func:`cfgateway.config.load_settings` like every client (arguments > ``CLOUDFLARE_*``
environment > ``cfgateway.toml`` profile); the token needs Vectorize Read (reads) or Write (everything).
Requests go through :class:`cfgateway.http.transport.Transport` (pooled, retried on 429/971/5xx/connection
errors, errors mapped to :mod:`cfgateway.errors`). Billed calls become usage records in the tracker's ledger.
"""

from __future__ import annotations

import time
from typing import Any

from cfgateway.config import Settings, load_settings
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import Catalog, load_catalog
from cfgateway.costs.ledger import open_ledger
from cfgateway.errors import APIError, CloudflareError, ConfigError
from cfgateway.http.transport import Transport
from cfgateway.vectorize import plans, wire
from cfgateway.vectorize.costs import usage_record
from cfgateway.vectorize.index import VectorizeIndex
from cfgateway.vectorize.types import IndexDescription
from cfgateway.vectorize.validate import check_account_id, check_index_name
from cfgateway.vectorize.waiting import WaitPolicy

DEFAULT_CONCURRENCY = 4  # write requests in flight (Cloudflare's API allows 1,200 requests per 5 minutes)


class VectorizeClient:
    """An account's Vectorize v2 indexes.

    >>> vz = VectorizeClient()                                   # settings from CLOUDFLARE_*  # doctest: +SKIP
    >>> docs = vz.create_index("docs", dimensions=768, metric="cosine", exist_ok=True)  # doctest: +SKIP
    >>> vz.index("docs").query([0.1] * 768, top_k=3)                                    # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        tracker: CostTracker | None = None,
        catalog: Catalog | None = None,
        transport: Transport | None = None,
        wait_policy: WaitPolicy | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        user: str | None = None,
        **setting_overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(**setting_overrides)
        account = check_account_id(self.settings.account_id)
        token = self.settings.api_token.get_secret_value() if self.settings.api_token else ""
        if not token:
            raise ConfigError("Cloudflare API token is not set: pass api_token= or set CLOUDFLARE_API_TOKEN "
                              "(a token with Vectorize Read and Write)")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.base = f"{self.settings.base_url}/accounts/{account}/vectorize/v2/indexes"
        self._auth = {"Authorization": f"Bearer {token}"}
        self.catalog = catalog or load_catalog(self.settings.catalog)
        if tracker is None and self.settings.ledger:
            tracker = CostTracker(open_ledger(self.settings.ledger), catalog=self.catalog)
        self.tracker = tracker
        self.transport = transport or Transport(timeout=self.settings.timeout, max_retries=self.settings.max_retries)
        self.wait_policy = wait_policy or WaitPolicy()
        self.max_concurrency = max_concurrency
        self.user = user

    def __repr__(self) -> str:
        return f"VectorizeClient(base={self.base!r}, tracker={self.tracker is not None})"

    # -- sending (the only I/O; everything else is in wire/plans/waiting) ----------------------------------
    def _headers(self, call: wire.Call) -> dict[str, str]:
        if call.content_type is None:
            return self._auth
        return {**self._auth, "Content-Type": call.content_type}

    def _book(self, call: wire.Call, started: float, t0: float, error: BaseException | None) -> None:
        if self.tracker is None or call.billing is None:
            return
        rec = usage_record(call.index or "", call.billing, self.catalog.vectorize, started=started,
                           latency=time.perf_counter() - t0, error=error, user=self.user)
        self.tracker.record(rec)

    def send(self, call: wire.Call) -> Any:
        """Send one call and parse its ``result`` (sync)."""
        started, t0 = time.time(), time.perf_counter()
        label = f"vectorize/{call.index}" if call.index else "vectorize"
        try:
            raw = self.transport.request(call.method, self.base + call.path, self._headers(call), call.body,
                                         model=label)
            out = call.parse(wire.parse_envelope(raw.content))
        except CloudflareError as exc:
            self._book(call, started, t0, exc)
            raise
        self._book(call, started, t0, None)
        return out

    async def asend(self, call: wire.Call) -> Any:
        """Send one call and parse its ``result`` (async)."""
        started, t0 = time.time(), time.perf_counter()
        label = f"vectorize/{call.index}" if call.index else "vectorize"
        try:
            raw = await self.transport.arequest(call.method, self.base + call.path, self._headers(call), call.body,
                                                model=label)
            out = call.parse(wire.parse_envelope(raw.content))
        except CloudflareError as exc:
            self._book(call, started, t0, exc)
            raise
        self._book(call, started, t0, None)
        return out

    # -- indexes -----------------------------------------------------------------------------------------
    def index(self, name: str, *, namespace: str | None = None) -> VectorizeIndex:
        """A handle on one index (nothing is sent); ``namespace`` applies to its writes and queries."""
        return VectorizeIndex(self, name, namespace=namespace)

    def list_indexes(self) -> list[IndexDescription]:
        return self.send(wire.list_indexes())  # type: ignore[no-any-return]

    async def alist_indexes(self) -> list[IndexDescription]:
        return await self.asend(wire.list_indexes())  # type: ignore[no-any-return]

    def create_index(self, name: str, *, dimensions: int | None = None, metric: str | None = None,
                     preset: str | None = None, description: str | None = None,
                     exist_ok: bool = False) -> IndexDescription:
        """Create an index from ``dimensions`` (+ ``metric``, default cosine) or a ``preset``. With
        ``exist_ok``, an existing index of that name is returned if its configuration matches."""
        call = wire.create_index(name, plans.create_config(dimensions, metric, preset), description)
        try:
            return self.send(call)  # type: ignore[no-any-return]
        except APIError as exc:
            if not (exist_ok and exc.code == 3002):
                raise
            return _matching(self.send(wire.describe(name)), dimensions, metric)

    async def acreate_index(self, name: str, *, dimensions: int | None = None, metric: str | None = None,
                            preset: str | None = None, description: str | None = None,
                            exist_ok: bool = False) -> IndexDescription:
        call = wire.create_index(name, plans.create_config(dimensions, metric, preset), description)
        try:
            return await self.asend(call)  # type: ignore[no-any-return]
        except APIError as exc:
            if not (exist_ok and exc.code == 3002):
                raise
            return _matching(await self.asend(wire.describe(name)), dimensions, metric)

    def delete_index(self, name: str) -> None:
        self.send(wire.delete_index(check_index_name(name)))

    async def adelete_index(self, name: str) -> None:
        await self.asend(wire.delete_index(check_index_name(name)))

    def close(self) -> None:
        self.transport.close()

    async def aclose(self) -> None:
        await self.transport.aclose()


def _matching(found: IndexDescription, dimensions: int | None, metric: str | None) -> IndexDescription:
    cfg = found.config
    if (dimensions is not None and cfg.dimensions != dimensions) or (metric is not None and cfg.metric != metric):
        raise ConfigError(
            f"index {found.name!r} already exists with {cfg.dimensions} dimensions and metric {cfg.metric!r}, not "
            f"{dimensions} / {metric!r} (its configuration cannot change): use another name, or delete it first"
        )
    return found


__all__ = ["DEFAULT_CONCURRENCY", "VectorizeClient"]
