"""The proxy's ``/dashboard``: the monitoring page (:mod:`cfgateway.dashboard`) over the proxy's ledger.

Who may open it (the page shows every user's spend, so never more people than may call the API):
keys marked ``dashboard = true`` in ``[[keys]]`` or given with ``--dashboard-key``; on a proxy with one
unrestricted key, that key; on a proxy without keys (loopback only), anyone who can reach it. A proxy shared
by several tenants with no dashboard key answers 403 saying how to add one. Browsers get an HTTP Basic
prompt: any user name, the key as the password.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from cfgateway.dashboard import create_dashboard_app, key_of

NO_LEDGER = ("the dashboard reads the proxy's ledger and this proxy keeps none: start it with CFGATEWAY_LEDGER "
             "(e.g. sqlite:///costs.db or redis://host/0) or budgets on its keys")
NO_KEY = ("this proxy serves several users and no key opens the dashboard (it shows every user's spend): mark "
          "one with dashboard = true in its [[keys]] table, or start the proxy with --dashboard-key KEY")


def _refusal(status: int, message: str) -> Route:
    async def refuse(request: Request) -> Response:
        return PlainTextResponse(message, status_code=status)
    return Route("/{rest:path}", refuse, methods=["GET"])


def dashboard_routes(proxy: Any) -> list[BaseRoute]:
    """``/dashboard`` (and everything under it) for ``proxy`` (a :class:`~cfgateway.proxy.app.Proxy`)."""
    if proxy.tracker is None:
        return [Mount("/dashboard", routes=[_refusal(404, NO_LEDGER)])]
    if proxy.keys.dashboard_keys() == []:
        return [Mount("/dashboard", routes=[_refusal(403, NO_KEY)])]
    app = create_dashboard_app(proxy.tracker.ledger, budgets=proxy.tracker.budgets, title="cfgateway proxy",
                               authorize=lambda header: proxy.keys.opens_dashboard(key_of(header)))
    return [Mount("/dashboard", app=app)]


__all__ = ["dashboard_routes"]
