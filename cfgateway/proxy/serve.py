"""Running the proxy with uvicorn: one process or ``--workers N``, graceful shutdown, the bind-address rule.

A non-loopback bind address needs API keys (an open proxy on the network spends the operator's tokens).
With several workers the proxy config reaches them through ``CFGATEWAY_PROXY_STATE`` as JSON holding key
*digests* only, never a key.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

from cfgateway.errors import ConfigError
from cfgateway.proxy.auth import ProxyKey
from cfgateway.proxy.config import Limits, ProxyConfig, is_loopback
from cfgateway.routing.shadow import Shadow

STATE_ENV = "CFGATEWAY_PROXY_STATE"


def check_bind(host: str, config: ProxyConfig) -> None:
    if not is_loopback(host) and not config.keys:
        raise ConfigError(f"refusing to listen on {host!r} without an API key: anyone who can reach it would spend "
                          "your Cloudflare tokens. Add --api-key (or CFGATEWAY_PROXY_API_KEYS / [[keys]] in --config), "
                          "or listen on 127.0.0.1")


def _dec(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def dump_config(config: ProxyConfig) -> str:
    """The config as JSON for worker processes (key digests, never keys)."""
    keys = [{"user": k.user, "sha256": k.digest.hex(), "models": sorted(k.models) if k.models is not None else None,
             "daily_usd": _dec(k.daily_usd), "monthly_usd": _dec(k.monthly_usd), "dashboard": k.dashboard}
            for k in config.keys]
    limits = {f: getattr(config.limits, f) for f in Limits.__dataclass_fields__}
    return json.dumps({"aliases": {k: list(v) for k, v in config.aliases.items()}, "keys": keys,
                       "default_provider": config.default_provider, "allowed_hosts": sorted(config.allowed_hosts),
                       "cors_origins": sorted(config.cors_origins), "limits": limits,
                       "capabilities": {k: dict(v) for k, v in config.capabilities.items()},
                       "endpoint": config.endpoint,
                       "shadows": {k: v.to_dict() for k, v in config.shadows.items()}})


def load_config(text: str) -> ProxyConfig:
    d = json.loads(text)
    keys = [ProxyKey(k["user"], bytes.fromhex(k["sha256"]),
                     frozenset(k["models"]) if k["models"] is not None else None,
                     Decimal(k["daily_usd"]) if k["daily_usd"] else None,
                     Decimal(k["monthly_usd"]) if k["monthly_usd"] else None, k["dashboard"]) for k in d["keys"]]
    return ProxyConfig(aliases=d["aliases"], keys=keys, default_provider=d["default_provider"],
                       allowed_hosts=frozenset(d["allowed_hosts"]), cors_origins=frozenset(d["cors_origins"]),
                       limits=Limits(**d["limits"]), capabilities=d["capabilities"], endpoint=d["endpoint"],
                       shadows={k: Shadow.from_dict(v) for k, v in d["shadows"].items()})


def app_from_env() -> Any:
    """The uvicorn factory each worker calls (``cfgateway.proxy.serve:app_from_env``)."""
    from cfgateway.proxy.app import Proxy
    from cfgateway.proxy.ops import build_app

    text = os.environ.get(STATE_ENV)
    return build_app(Proxy(config=load_config(text) if text else ProxyConfig()))


def serve_proxy(host: str = "127.0.0.1", port: int = 8080, config: ProxyConfig | None = None, *, workers: int = 1,
                graceful_timeout: int = 30, log_level: str = "warning", access_log: bool = False) -> None:
    """Run the proxy in the foreground until SIGINT/SIGTERM; in-flight streams finish (up to ``graceful_timeout``)."""
    import logging

    import uvicorn

    config = config or ProxyConfig()
    check_bind(host, config)
    if access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("cfgateway.proxy.access").setLevel(logging.INFO)
    os.environ[STATE_ENV] = dump_config(config)
    uvicorn.run("cfgateway.proxy.serve:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=False, timeout_graceful_shutdown=graceful_timeout,
                timeout_keep_alive=30, lifespan="on")


__all__ = ["STATE_ENV", "app_from_env", "check_bind", "dump_config", "load_config", "serve_proxy"]
