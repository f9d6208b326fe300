"""Proxy API keys: kept as SHA-256 digests, compared in constant time, each naming a tenant.

A tenant (:class:`ProxyKey`) is the user the ledger books its calls under, the models it may call
(``None`` = any) and its own daily / monthly budgets (USD). Keys come from ``--api-key`` (``KEY`` or
``USER:KEY``), ``CFGATEWAY_PROXY_API_KEYS`` (comma-separated, same forms) and the ``[[keys]]`` tables of
the proxy config file (``key = "…"`` or ``sha256 = "<hex digest>"``, so the file need not hold the key).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from cfgateway.wire.openai_server import RequestError


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class ProxyKey:
    """One accepted key (its digest only) and the tenant it names."""

    user: str
    digest: bytes = field(repr=False)
    models: frozenset[str] | None = None
    daily_usd: Decimal | None = None
    monthly_usd: Decimal | None = None
    dashboard: bool = False  # may open /dashboard (every user's spend)

    def may_call(self, model: str) -> bool:
        return self.models is None or model in self.models


def _usd(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{what} must be a USD amount, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"{what} must be a non-negative USD amount, got {value!r}")
    return d


def key_from_spec(spec: str, *, dashboard_only: bool = False) -> ProxyKey:
    """``KEY`` or ``USER:KEY``; a bare key's user is ``key-`` and the first 8 hex digits of its digest.
    ``dashboard_only``: a key that opens ``/dashboard`` and may call no model (``--dashboard-key``)."""
    spec = spec.strip()
    user, sep, key = spec.partition(":")
    if not sep:
        user, key = "", spec
    if len(key) < 8:
        raise ValueError("a proxy API key must be at least 8 characters long")
    digest = key_digest(key)
    if dashboard_only:
        return ProxyKey(user or f"dashboard-{digest.hex()[:8]}", digest, frozenset(), dashboard=True)
    return ProxyKey(user or f"key-{digest.hex()[:8]}", digest)


def key_from_table(row: Mapping[str, Any]) -> ProxyKey:
    """One ``[[keys]]`` table: ``user``, ``key`` or ``sha256``, optional ``models``, ``daily_usd``, ``monthly_usd``,
    ``dashboard`` (true: the key also opens ``/dashboard``)."""
    user = row.get("user")
    if not isinstance(user, str) or not user:
        raise ValueError("each [[keys]] entry needs a user name (user = \"alice\")")
    if isinstance(row.get("key"), str):
        digest = key_digest(row["key"])
    elif isinstance(row.get("sha256"), str):
        try:
            digest = bytes.fromhex(row["sha256"])
        except ValueError:
            raise ValueError(f"[[keys]] {user}: sha256 must be a hex digest") from None
        if len(digest) != 32:
            raise ValueError(f"[[keys]] {user}: sha256 must be 64 hex digits")
    else:
        raise ValueError(f"[[keys]] {user}: give key = \"…\" or sha256 = \"<hex of sha256(key)>\"")
    models = row.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise ValueError(f"[[keys]] {user}: models must be a list of model strings or aliases")
    unknown = set(row) - {"user", "key", "sha256", "models", "daily_usd", "monthly_usd", "dashboard"}
    if unknown:
        raise ValueError(f"[[keys]] {user}: unknown field(s) {', '.join(sorted(unknown))}")
    if not isinstance(row.get("dashboard", False), bool):
        raise ValueError(f"[[keys]] {user}: dashboard must be true or false")
    return ProxyKey(user, digest, frozenset(models) if models is not None else None,
                    _usd(row.get("daily_usd"), f"[[keys]] {user}: daily_usd"),
                    _usd(row.get("monthly_usd"), f"[[keys]] {user}: monthly_usd"), bool(row.get("dashboard", False)))


INVALID_KEY = ("invalid proxy API key: send the key this proxy's operator gave you as "
               "'Authorization: Bearer <key>' (the openai SDK's api_key)")


class KeyRing:
    """The accepted keys. ``check`` answers the tenant, or raises a 401 :class:`RequestError`."""

    def __init__(self, keys: Iterable[ProxyKey] = ()) -> None:
        self.keys = list(keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def check(self, authorization: str | None) -> ProxyKey | None:
        """``None`` when no keys are configured (open proxy); the matching tenant otherwise."""
        if not self.keys:
            return None
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise RequestError(INVALID_KEY, status=401, type_="authentication_error", code="invalid_api_key")
        digest = key_digest(token)
        found: ProxyKey | None = None
        for k in self.keys:  # every digest compared: the time taken does not depend on which one matched
            if hmac.compare_digest(k.digest, digest):
                found = k
        if found is None:
            raise RequestError(INVALID_KEY, status=401, type_="authentication_error", code="invalid_api_key")
        return found

    def dashboard_keys(self) -> list[ProxyKey] | None:
        """The keys that open ``/dashboard``: those marked ``dashboard``; else the one key of a single-key proxy
        that may call every model (its operator's); ``[]`` when tenants share the proxy and none is marked (the
        page shows every user's spend); ``None`` when the proxy has no keys (loopback only: open)."""
        if not self.keys:
            return None
        marked = [k for k in self.keys if k.dashboard]
        if marked:
            return marked
        return list(self.keys) if len(self.keys) == 1 and self.keys[0].models is None else []

    def opens_dashboard(self, token: str | None) -> bool:
        keys = self.dashboard_keys()
        if keys is None:
            return True
        digest = key_digest(token or "")
        hits = [hmac.compare_digest(k.digest, digest) for k in keys]  # every digest compared
        return token is not None and any(hits)


__all__ = ["INVALID_KEY", "KeyRing", "ProxyKey", "key_digest", "key_from_spec", "key_from_table"]
