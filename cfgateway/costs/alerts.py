"""Alerts that reach people: budget thresholds, rollout changes and breaker openings, sent to sinks.

>>> alerts = Alerts([log_sink, WebhookSink("https://hooks.slack.com/services/…")], store=ledger)  # doctest: +SKIP
>>> tracker = CostTracker(ledger, budgets, on_alert=alerts.budget_hook())                       # doctest: +SKIP

An :class:`AlertEvent` has a ``kind`` (``budget``, ``rollout``, ``breaker``), a ``key`` (what it is
about), a ``message`` for people and ``fields`` for machines. A sink is any callable taking the event:
:func:`log_sink` (a WARNING on ``cfgateway.alerts``), :class:`WebhookSink` (a JSON POST with a
Slack-compatible ``text`` field, sent from a background thread with bounded retries and backoff, so
a call never waits for it), :class:`StoreSink` (the recent alerts, kept in the ledger's state for the
dashboard), or your own function. A sink that raises is logged and the others still get the event.

Dedupe: :meth:`Alerts.emit` with ``once=`` marks the alert in the store (``mark_alert``: once across every
process sharing it, until the mark expires). Budget alerts arrive already deduped by the
:class:`~cfgateway.costs.budget.CostTracker` (once per threshold per window).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cfgateway.costs.ledger.state import StateStore
from cfgateway.costs.webhook import WebhookSink
from cfgateway.errors import ConfigError

if TYPE_CHECKING:
    from cfgateway.config import Settings
    from cfgateway.costs.budget import Alert as BudgetAlert

logger = logging.getLogger("cfgateway.alerts")

KINDS = ("budget", "rollout", "breaker")
RECENT_KEY = "alerts:recent"
RECENT_MAX = 50
DEFAULT_BREAKER_WINDOW_S = 300.0


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert: what happened (``kind``, ``key``), a sentence for people, figures for machines."""

    kind: str
    key: str
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"alert kind must be one of {KINDS}, got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; ``text`` is what Slack (and Slack-compatible webhooks) show."""
        return {"text": self.message, "kind": self.kind, "key": self.key, "ts": self.ts,
                "fields": _plain(dict(self.fields))}


AlertSink = Callable[[AlertEvent], Any]


def log_sink(event: AlertEvent) -> None:
    """A WARNING on the ``cfgateway.alerts`` logger (the default sink)."""
    logger.warning("[%s] %s", event.kind, event.message)


class StoreSink:
    """Keeps the last ``keep`` alerts in the store's state (``alerts:recent``), newest first, for the
    dashboard and ``cfgateway`` commands of every process sharing the store."""

    def __init__(self, store: StateStore, keep: int = RECENT_MAX) -> None:
        self.store = store
        self.keep = keep

    def __repr__(self) -> str:
        return f"StoreSink({self.store!r})"

    def __call__(self, event: AlertEvent) -> None:
        for attempt in range(100):  # compare-and-set: concurrent writers retry on a fresh list
            raw = self.store.get_state(RECENT_KEY)
            items = json.loads(raw) if raw else []
            new = json.dumps([event.to_dict(), *items][: self.keep], separators=(",", ":"))
            if self.store.compare_and_set(RECENT_KEY, raw, new):
                return
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))  # let the other writer finish
        logger.error("could not keep alert %r in %r: the recent list kept changing", event.message, self.store)


def recent_alerts(store: Any) -> list[dict[str, Any]]:
    """The alerts a :class:`StoreSink` kept, newest first (``[]`` for a store without state)."""
    if not isinstance(store, StateStore):
        return []
    raw = store.get_state(RECENT_KEY)
    return list(json.loads(raw)) if raw else []


class Alerts:
    """Sends each alert to every sink; with ``store``, dedupes across processes and keeps recent alerts."""

    def __init__(self, sinks: Sequence[AlertSink] = (log_sink,), *, store: Any = None,
                 keep_recent: bool = True) -> None:
        self.sinks: list[AlertSink] = list(sinks)
        self.store = store
        if keep_recent and isinstance(store, StateStore):
            self.sinks.append(StoreSink(store))

    def __repr__(self) -> str:
        return f"Alerts(sinks={self.sinks!r})"

    def emit(self, event: AlertEvent, *, once: str | None = None, expires: float | None = None) -> bool:
        """Send ``event`` to every sink; with ``once``, only the first time that mark is made (until
        ``expires``, epoch seconds; default a day) in any process sharing the store. Says whether it was sent."""
        if once is not None and self.store is not None:
            mark = getattr(self.store, "mark_alert", None)
            if mark is not None and not mark(f"{event.kind}|{once}", expires=expires or event.ts + 86400):
                return False
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:
                logger.exception("alert sink %r failed for: %s", sink, event.message)
        return True

    __call__ = emit

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait for background sinks (webhooks) to deliver what is queued; False if one timed out."""
        return all(sink.flush(timeout) for sink in self.sinks if isinstance(sink, WebhookSink))

    # -- sources ---------------------------------------------------------------------------
    def budget_hook(self) -> Callable[[BudgetAlert], None]:
        """An ``on_alert`` for :class:`~cfgateway.costs.budget.CostTracker` (already once per threshold per window)."""

        def on_alert(alert: BudgetAlert) -> None:
            self.emit(budget_event(alert))

        return on_alert

    def breaker_opened(self, route: str, *, window: float | None = None, **fields: Any) -> bool:
        """A route's circuit breaker opened: alert once per route per ``window`` seconds (its cooldown,
        default 300) across processes."""
        event = breaker_event(route, **fields)
        span = window or DEFAULT_BREAKER_WINDOW_S
        slot = int(event.ts // span)
        return self.emit(event, once=f"{route}|{slot}", expires=(slot + 1) * span + 60)

    def on_breaker_change(self, route: str, old: str, new: str, **fields: Any) -> None:
        """A breaker state-change hook: alerts when ``new`` is ``"open"``, ignores other changes."""
        if new == "open" and old != "open":
            self.breaker_opened(route, **fields)


def budget_event(alert: BudgetAlert) -> AlertEvent:
    """A budget threshold crossing as an alert event."""
    b = alert.budget
    fields = {"budget": b.name, "threshold": alert.threshold, "spent": alert.spent, "limit": b.limit,
              "window": b.window, "window_start": alert.window_start, "scope": b.scope, "scope_key": alert.key}
    return AlertEvent("budget", f"{b.name}|{alert.key or ''}|{alert.threshold}", alert.message, fields)


def breaker_event(route: str, **fields: Any) -> AlertEvent:
    """A breaker opening as an alert event (``fields``: failures, cooldown, ... as the breaker tells)."""
    cooldown = fields.get("cooldown")
    tail = f"; calls skip it for {float(cooldown):g} s" if cooldown is not None else ""
    return AlertEvent("breaker", route, f"circuit breaker opened for route {route}{tail}",
                      {"route": route, **fields})


def alerts_from_settings(settings: Settings, *, store: Any = None) -> Alerts:
    """The sinks a profile names: ``alert_sinks`` (``["log", "webhook"]``; default: log, plus the webhook
    when ``alert_webhook`` is set) and ``alert_webhook`` (its URL)."""
    names = getattr(settings, "alert_sinks", None)
    url = getattr(settings, "alert_webhook", None)
    if names is None:
        names = ["log", "webhook"] if url else ["log"]
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    sinks: list[AlertSink] = []
    for name in names:
        if name == "log":
            sinks.append(log_sink)
        elif name == "webhook":
            if not url:
                raise ConfigError("alert_sinks names 'webhook' but alert_webhook (a URL) is not set")
            sinks.append(WebhookSink(str(url)))
        else:
            raise ConfigError(f"unknown alert sink {name!r} in alert_sinks; known: log, webhook")
    return Alerts(sinks, store=store)


_SHARED: dict[tuple[Any, ...], Alerts] = {}
_SHARED_LOCK = threading.Lock()


def shared_alerts(settings: Settings, store: Any = None) -> Alerts:
    """One :class:`Alerts` per process for the same sinks and store (webhook threads are not made per client)."""
    key = (getattr(settings, "alert_webhook", None), str(getattr(settings, "alert_sinks", None)), id(store))
    with _SHARED_LOCK:
        alerts = _SHARED.get(key)
        if alerts is None:
            alerts = _SHARED[key] = alerts_from_settings(settings, store=store)
        return alerts


__all__ = [
    "KINDS",
    "AlertEvent",
    "AlertSink",
    "Alerts",
    "StoreSink",
    "WebhookSink",
    "alerts_from_settings",
    "breaker_event",
    "budget_event",
    "log_sink",
    "recent_alerts",
    "shared_alerts",
]
