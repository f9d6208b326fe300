"""``cfgateway check``: is the configuration right, and does the service accept it?

One line per check (``PASS``, ``FAIL`` or ``SKIP``), exit code 1 when any fails, no secret printed:
configuration, API token, account, gateway (exists; requires ``cf-aig-authorization`` when a gateway token
is set; accepts the token), each configured model answering a one-token call (``--no-calls`` to skip) and
the embedding fallbacks agreeing on dimensions. It talks to the configured endpoints: Cloudflare, or the
emulator when ``CLOUDFLARE_API_BASE_URL`` / ``CLOUDFLARE_AI_GATEWAY_BASE_URL`` point at it.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

from cfgateway import errors
from cfgateway.cli._config import add_config_options
from cfgateway.config import Settings, redact_url


@dataclass
class Report:
    lines: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, status: str, name: str, detail: str) -> None:
        self.lines.append((status, name, detail))
        print(f"{status:<4}  {name}: {detail}", flush=True)

    @property
    def failed(self) -> bool:
        return any(status == "FAIL" for status, _, _ in self.lines)


def _api_error(exc: errors.CloudflareError) -> tuple[int | None, int | None]:
    return getattr(exc, "status", None), getattr(exc, "code", None)


def check_api(s: Settings, transport: Any, report: Report) -> None:
    """The API token and the account, with one catalog read (``GET …/ai/models/search``)."""
    if not s.api_token:
        report.add("SKIP", "api token", "not set (CLOUDFLARE_API_TOKEN, config key api_token_env): Workers AI needs it")
        return
    if not s.account_id:
        report.add("FAIL", "account", "not set: set CLOUDFLARE_ACCOUNT_ID (config key account_id)")
        return
    url = f"{s.base_url}/accounts/{s.account_id}/ai/models/search?per_page=1"
    headers = {"Authorization": f"Bearer {s.api_token.get_secret_value()}"}
    try:
        transport.request("GET", url, headers)
    except errors.AuthenticationError:
        report.add("FAIL", "api token", f"rejected by {redact_url(s.base_url)}: check CLOUDFLARE_API_TOKEN "
                   "(config key api_token_env); it needs Workers AI Read+Edit")
        report.add("SKIP", "account", "not checked (the API token was rejected)")
        return
    except errors.NotFoundError:
        report.add("PASS", "api token", f"accepted by {redact_url(s.base_url)}")
        report.add("FAIL", "account", f"{s.account_id} not found: check CLOUDFLARE_ACCOUNT_ID (config key account_id)")
        return
    except errors.CloudflareError as exc:
        report.add("FAIL", "api token", f"could not be checked: {exc}")
        return
    report.add("PASS", "api token", f"accepted by {redact_url(s.base_url)}")
    report.add("PASS", "account", f"{s.account_id} exists")


def _probe(transport: Any, url: str, headers: dict[str, str]) -> tuple[int | None, int | None]:
    # guess: an empty Universal Endpoint request is refused after the gateway's lookup and auth, so its
    # answer tells whether the gateway exists and wants cf-aig-authorization without running any model.
    try:
        transport.request("POST", url, {"Content-Type": "application/json", **headers}, b"[]")
    except errors.APIError as exc:
        return _api_error(exc)
    return 200, None


def check_gateway(s: Settings, transport: Any, report: Report) -> None:
    if not s.gateway_id:
        report.add("SKIP", "gateway", "no gateway id (CLOUDFLARE_AI_GATEWAY_ID, config key gateway_id)")
        return
    url = f"{s.gateway_base_url}/{s.account_id}/{s.gateway_id}"
    status, code = _probe(transport, url, {})
    if code == 2001:
        report.add("FAIL", "gateway", f"{s.gateway_id} does not exist in account {s.account_id}: check "
                   "CLOUDFLARE_AI_GATEWAY_ID (config key gateway_id)")
        return
    if status is None:
        report.add("FAIL", "gateway", f"{redact_url(s.gateway_base_url)} did not answer")
        return
    authenticated = code == 2009
    report.add("PASS", "gateway", f"{s.gateway_id} exists ({'authenticated' if authenticated else 'unauthenticated'})")
    if not s.gateway_token:
        if authenticated:
            report.add("FAIL", "gateway token", "the gateway requires cf-aig-authorization: set "
                       "CLOUDFLARE_AI_GATEWAY_TOKEN (config key gateway_token_env)")
        return
    if not authenticated:
        report.add("FAIL", "gateway auth", "a gateway token is set but the gateway does not require "
                   "cf-aig-authorization: turn on Authenticated Gateway (otherwise anyone with its URL spends "
                   "your stored provider keys)")
        return
    _, code = _probe(transport, url, {"cf-aig-authorization": f"Bearer {s.gateway_token.get_secret_value()}"})
    if code == 2009:
        fix = "check CLOUDFLARE_AI_GATEWAY_TOKEN (config key gateway_token_env)"
        report.add("FAIL", "gateway token", f"rejected: {fix}")
    else:
        report.add("PASS", "gateway token", "accepted")


def configured_models(s: Settings, extra: list[str]) -> list[tuple[str, str]]:
    """``(kind, model)`` for every model the configuration names, in order, without repeats."""
    out: list[tuple[str, str]] = []
    chat = [s.chat_model] if s.chat_model else []
    chat += [*s.fallbacks, *(r.get("model") or r["candidate"] for r in s.rollout)]
    embed = ([s.embed_model] if s.embed_model else []) + list(s.embed_fallbacks)
    for kind, models in (("chat", [*chat, *extra]), ("embed", embed)):
        for m in models:
            if (kind, m) not in out:
                out.append((kind, m))
    return out


def _one_call(kind: str, model: str, s: Settings, transport: Any) -> str:
    from cfgateway.client import Client
    from cfgateway.types import ChatRequest, Message

    client = Client(model, settings=s, transport=transport, endpoint=s.endpoint or "auto")  # type: ignore[arg-type]
    if kind == "chat":
        answer = client.chat(ChatRequest([Message("user", "ping")], max_tokens=1))
        return f"answered ({answer.usage.output_tokens if answer.usage else '?'} token)"
    dims = s.embed_dimensions
    vectors = client.embed(["ping"], dimensions=dims).vectors
    return f"answered ({len(vectors[0])} dims)"


def check_models(s: Settings, transport: Any, report: Report, *, calls: bool, extra: list[str]) -> dict[str, int]:
    """One-token calls; the vector size each embedding model answered with."""
    from cfgateway.routing.routes import resolve_route

    sizes: dict[str, int] = {}
    models = configured_models(s, extra)
    if not models:
        report.add("SKIP", "models", "none configured (CFGATEWAY_CHAT_MODEL / chat_model, CFGATEWAY_EMBED_MODEL / "
                   "embed_model, or --model)")
    for kind, model in models:
        name = f"{kind} {model}"
        try:
            resolve_route(model, s, s.endpoint or "auto")  # type: ignore[arg-type]
            if not calls:
                report.add("SKIP", name, "route resolves; no call made (--no-calls)")
                continue
            started = time.perf_counter()
            detail = _one_call(kind, model, s, transport)
        except errors.CloudflareError as exc:
            report.add("FAIL", name, str(exc))
            continue
        if kind == "embed":
            sizes[model] = int(detail.split("(")[1].split()[0])
        report.add("PASS", name, f"{detail} in {(time.perf_counter() - started) * 1000:.0f} ms")
    return sizes


def check_dimensions(s: Settings, sizes: dict[str, int], report: Report) -> None:
    chain = ([s.embed_model] if s.embed_model else []) + list(s.embed_fallbacks)
    if len(chain) < 2:
        return
    from cfgateway.costs.catalog import load_catalog

    catalog = load_catalog(s.catalog)
    wanted = s.embed_dimensions
    found: dict[str, int | None] = {}
    for model in chain:
        info = catalog.get(model)
        native = info.dims if info else None
        flexible = bool(info and info.flex_dims and wanted and native and wanted <= native)
        found[model] = sizes.get(model) or (wanted if flexible else native)
    distinct = {v for v in found.values()}
    shown = ", ".join(f"{m}={v or 'unknown'}" for m, v in found.items())
    if None in distinct or len(distinct) != 1:
        fix = "set embed_dimensions (CFGATEWAY_EMBED_DIMENSIONS) to a size every route serves, or change fallbacks"
        report.add("FAIL", "embedding dimensions", f"the embedding chain disagrees: {shown}; {fix}")
    else:
        report.add("PASS", "embedding dimensions", f"every route gives {distinct.pop()} ({shown})")


def _run(args: argparse.Namespace) -> int:
    from cfgateway.config import load_settings
    from cfgateway.http.transport import Transport

    report = Report()
    try:
        s = load_settings(profile=args.profile, config_path=args.config)
        for model in (s.chat_model, s.embed_model, *s.fallbacks, *s.embed_fallbacks, *args.model):
            if model:
                from cfgateway.routing.routes import split_model

                split_model(model, s.endpoint or "auto")  # type: ignore[arg-type]
    except errors.ConfigError as exc:
        report.add("FAIL", "configuration", str(exc))
        return 1
    where = f"file {s.config_path}" + (f" [profiles.{s.profile}]" if s.profile else "") if s.config_path else "env"
    report.add("PASS", "configuration", f"valid ({where})")
    transport = Transport(timeout=min(s.timeout, 30.0), max_retries=0)
    try:
        check_api(s, transport, report)
        check_gateway(s, transport, report)
        sizes = check_models(s, transport, report, calls=not args.no_calls, extra=list(args.model))
        check_dimensions(s, sizes, report)
    finally:
        transport.close()
    return 1 if report.failed else 0


def register(sub: Any) -> None:
    c = sub.add_parser("check", help="check the configuration against the configured endpoints")
    add_config_options(c)
    c.add_argument("--no-calls", action="store_true", help="do not send a one-token call to each model")
    c.add_argument("--model", action="append", default=[], help="also check this chat model (repeatable)")
    c.set_defaults(func=_run)
