"""The monitoring page: ``cfgateway dashboard --ledger URL`` or :func:`create_dashboard_app` (a Starlette
app the proxy mounts at ``/dashboard``).

>>> budgets = [Budget(limit=500, alerts=[100, 300])]
>>> app = create_dashboard_app(open_ledger("sqlite:///costs.db"), budgets=budgets)  # doctest: +SKIP

Routes (relative, so the app works mounted under any prefix): ``/`` the page (server-side SVG charts,
inline CSS, no script: works offline and refreshes itself), ``/data.json`` the same figures as JSON.
With ``api_keys``, both need ``Authorization: Bearer KEY`` or HTTP Basic auth with the key as the
password (what a browser prompts for); a wrong or missing key gets 401.
Needs starlette (``cfgateway[proxy]``); uvicorn to serve it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Sequence
from typing import Any

from cfgateway.costs.budget import Budget

__all__ = ["create_dashboard_app", "key_of", "serve_dashboard"]


def _import_starlette() -> Any:
    try:
        import starlette.applications
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the dashboard needs starlette and uvicorn: pip install 'cfgateway[proxy]'") from exc
    return starlette


def key_of(authorization: str) -> str | None:
    """The key a ``Bearer`` or HTTP Basic (the key as the password) ``Authorization`` header carries."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def allowed(authorization: str, keys: Sequence[str]) -> bool:
    """Does the ``Authorization`` header carry one of ``keys`` (compared in constant time)?"""
    got = key_of(authorization)
    if got is None:
        return False
    return any(hmac.compare_digest(got.encode(), k.encode()) for k in keys)


def create_dashboard_app(
    ledger: Any,
    *,
    budgets: Sequence[Budget] = (),
    days: int = 30,
    refresh: int = 30,
    api_keys: Sequence[str] | None = None,
    title: str = "cfgateway",
    authorize: Callable[[str], bool] | None = None,
) -> Any:
    """A Starlette app serving the page for ``ledger`` (any ledger; state-keeping ones add rollouts and alerts).
    ``authorize(authorization_header) -> bool`` replaces ``api_keys`` (the proxy checks its own keys)."""
    _import_starlette()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from cfgateway.dashboard.figures import collect
    from cfgateway.dashboard.page import render_page

    if not 1 <= days <= 366:
        raise ValueError(f"dashboard days must be 1..366, got {days}")
    keys = [k for k in (api_keys or []) if k]
    headers = {"cache-control": "no-store", "x-content-type-options": "nosniff",
               "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"}

    def refused(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        ok = authorize(header) if authorize is not None else not keys or allowed(header, keys)
        if not ok:
            return Response("a dashboard key is required", status_code=401, media_type="text/plain",
                            headers={"www-authenticate": 'Basic realm="cfgateway dashboard", charset="UTF-8"'})
        return None

    async def page(request: Request) -> Response:
        no = refused(request)
        if no is not None:
            return no
        # the ledger is read in a worker thread: a slow SQLite file or Redis never stalls the server's event loop
        figures = await run_in_threadpool(collect, ledger, days=days, budgets=budgets)
        return HTMLResponse(render_page(figures, title=title, refresh=refresh), headers=headers)

    async def data(request: Request) -> Response:
        no = refused(request)
        if no is not None:
            return no
        figures = await run_in_threadpool(collect, ledger, days=days, budgets=budgets)
        return JSONResponse(figures.to_dict(), headers=headers)

    app = Starlette(routes=[Route("/", page, methods=["GET"]), Route("/data.json", data, methods=["GET"])])
    app.state.ledger = ledger
    return app


def serve_dashboard(ledger: Any, host: str, port: int, **kwargs: Any) -> None:
    import uvicorn

    uvicorn.run(create_dashboard_app(ledger, **kwargs), host=host, port=port, log_level="warning")
