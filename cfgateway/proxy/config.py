"""The proxy's own settings (the Cloudflare connection settings stay in :class:`cfgateway.config.Settings`).

Sources, later ones adding to or overriding earlier ones: the proxy config file (``--config``, TOML),
the environment (``CFGATEWAY_PROXY_API_KEYS``, ``CFGATEWAY_PROXY_DASHBOARD_KEYS``,
``CFGATEWAY_PROXY_DEFAULT_PROVIDER``, ``CFGATEWAY_PROXY_ALLOWED_HOSTS``, ``CFGATEWAY_PROXY_CORS_ORIGINS``),
then command-line options. The models a request without one runs on come from the core settings
(``chat_model`` / ``embed_model``: the aliases ``default`` and ``default-embedding``)::

    default_provider = "openai"            # bare names such as "gpt-4o-mini" -> "openai/gpt-4o-mini"
    allowed_hosts = ["proxy.internal"]     # Host headers accepted besides the loopback names
    cors_origins = ["https://app.example"] # browser origins allowed to call (none by default)

    [aliases]
    fast = ["@cf/meta/llama-3.1-8b-instruct-fp8-fast", "openai/gpt-4o-mini"]

    [limits]                               # every field of :class:`Limits`
    max_body_bytes = 8388608

    [shadows.fast]                         # a shadow of an alias (or of a model string: [shadows."openai/gpt-4o-mini"])
    candidate = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    sample = 0.1                           # any field of cfgateway.Shadow; the baseline is the alias's first model
    max_cost = 5

    [[keys]]                               # see cfgateway.proxy.auth
    user = "alice"
    sha256 = "…"
    models = ["fast"]
    daily_usd = "5"
    dashboard = false                      # true: this key also opens /dashboard (every user's spend)
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cfgateway.errors import ConfigError
from cfgateway.proxy.auth import ProxyKey, key_from_spec, key_from_table
from cfgateway.routing.model_strings import split_share
from cfgateway.routing.routes import PROVIDERS, split_model
from cfgateway.routing.shadow import Shadow

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may cost the proxy; each excess is a 413/400/408 in OpenAI's shape."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_messages: int = 2048
    max_embedding_inputs: int = 2048
    max_n: int = 8
    read_timeout_s: float = 30.0
    max_cached_clients: int = 256

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"proxy limit {f.name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class ProxyConfig:
    """Aliases, keys, the browser guard and limits."""

    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    keys: Sequence[ProxyKey] = ()
    default_provider: str | None = None
    allowed_hosts: frozenset[str] = frozenset()
    cors_origins: frozenset[str] = frozenset()
    limits: Limits = field(default_factory=Limits)
    # An alias's capabilities when the catalog's are not what it serves: {"fast": {"function_calling": True}}
    capabilities: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    # Workers AI endpoint of the routes: "auto" (native /ai/run), or "openai" (/ai/v1, OpenAI-compatible)
    endpoint: str = "auto"
    # Shadow comparisons by the name a request uses: an alias, or a model string ({provider}/{model}, @cf/...)
    shadows: Mapping[str, Shadow] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dp = self.default_provider
        if dp is not None and dp not in PROVIDERS and not dp.startswith("custom-"):
            raise ConfigError(f"default provider {dp!r} is unknown (known: {', '.join(sorted(PROVIDERS))}, "
                              "or custom-{slug})")
        if self.endpoint not in ("auto", "native", "openai"):
            raise ConfigError(f"endpoint must be auto, native or openai, got {self.endpoint!r}")
        for name, models in self.aliases.items():
            if not name or not models:
                raise ConfigError(f"alias {name!r} needs at least one model")
        object.__setattr__(self, "shadows", {self._shadow_key(n, s): s for n, s in self.shadows.items()})

    def _shadow_key(self, name: str, shadow: Any) -> str:
        """An alias, or the model string a model name stands for (a bare name: with the default provider)."""
        if not isinstance(shadow, Shadow):
            raise ConfigError(f"shadow {name!r} must be a cfgateway.Shadow, got {type(shadow).__name__}")
        if name in self.aliases:
            return name
        model = name
        if "/" not in name and not name.startswith("@") and self.default_provider is not None:
            model = f"{self.default_provider}/{name}"
        try:
            split_model(model)
        except ConfigError as exc:
            raise ConfigError(f"shadow {name!r}: the name is neither an alias of this proxy nor a model string "
                              f"({exc})") from None
        return model

    @property
    def hosts(self) -> frozenset[str]:
        return LOOPBACK_HOSTS | {h.lower() for h in self.allowed_hosts}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_alias(item: str) -> tuple[str, list[str]]:
    name, sep, models = item.partition("=")
    members = [m.strip() for m in models.split(",") if m.strip()]
    if not sep or not name.strip() or not members:
        raise ConfigError(f"--alias takes NAME=MODEL[,FALLBACK...], got {item!r}")
    return name.strip(), members


def parse_shadow(item: str) -> tuple[str, Shadow]:
    """``NAME=CANDIDATE[@SAMPLE]`` (``--shadow``; ``:SAMPLE`` with a decimal share also works): a shadow of
    the alias or model ``NAME``, sampling 10 % unless told."""
    name, sep, spec = item.partition("=")
    candidate, sample = split_share(spec)
    if not sep or not name.strip() or not candidate:
        raise ConfigError("--shadow takes NAME=CANDIDATE[@SAMPLE], e.g. "
                          f"fast=@cf/meta/llama-3.3-70b-instruct-fp8-fast@0.1; got {item!r}")
    sample = "0.1" if sample is None else sample
    return name.strip(), Shadow.from_dict({"candidate": candidate, "sample": sample})


def _shadows(file_tables: Any, cli: Sequence[str]) -> dict[str, Shadow]:
    if not isinstance(file_tables or {}, Mapping):
        raise ConfigError("shadows must be tables: [shadows.NAME] with candidate, sample, similarity_model, max_cost")
    out = {str(name): Shadow.from_dict(table) for name, table in (file_tables or {}).items()}
    out.update(dict(parse_shadow(s) for s in cli))
    return out


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _read_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"proxy config file {path} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    known = {"aliases", "keys", "default_provider", "allowed_hosts", "cors_origins", "limits", "capabilities",
             "endpoint", "shadows"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return data


def _keys(file_rows: Any, env_specs: list[str], cli_specs: Sequence[str],
          dashboard_specs: Sequence[str] = ()) -> list[ProxyKey]:
    try:
        keys = [key_from_table(r) for r in file_rows or []]
        keys += [key_from_spec(s) for s in [*env_specs, *cli_specs]]
        keys += [key_from_spec(s, dashboard_only=True) for s in dashboard_specs]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return keys


def load_proxy_config(
    *,
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    aliases: Sequence[str] = (),
    api_keys: Sequence[str] = (),
    default_provider: str | None = None,
    allowed_hosts: Sequence[str] = (),
    cors_origins: Sequence[str] = (),
    limits: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    shadows: Sequence[str] = (),
    dashboard_keys: Sequence[str] = (),
) -> ProxyConfig:
    """The proxy settings from the file, the environment and command-line values (see the module docstring)."""
    environ = os.environ if env is None else env
    data = _read_file(config_path) if config_path else {}
    alias_map: dict[str, list[str]] = {k: list(v) for k, v in (data.get("aliases") or {}).items()}
    alias_map.update(dict(parse_alias(a) for a in aliases))
    lim = {**(data.get("limits") or {}), **{k: v for k, v in (limits or {}).items() if v is not None}}
    try:
        limits_obj = Limits(**lim)
    except TypeError as exc:
        raise ConfigError(f"unknown proxy limit: {exc}; known: {', '.join(f.name for f in fields(Limits))}") from None
    return ProxyConfig(
        aliases=alias_map,
        keys=_keys(data.get("keys"), _split(environ.get("CFGATEWAY_PROXY_API_KEYS")), api_keys,
                   [*_split(environ.get("CFGATEWAY_PROXY_DASHBOARD_KEYS")), *dashboard_keys]),
        default_provider=default_provider or environ.get("CFGATEWAY_PROXY_DEFAULT_PROVIDER")
        or data.get("default_provider"),
        allowed_hosts=frozenset([*(data.get("allowed_hosts") or []),
                                 *_split(environ.get("CFGATEWAY_PROXY_ALLOWED_HOSTS")), *allowed_hosts]),
        cors_origins=frozenset([*(data.get("cors_origins") or []),
                                *_split(environ.get("CFGATEWAY_PROXY_CORS_ORIGINS")), *cors_origins]),
        limits=limits_obj,
        capabilities={k: dict(v) for k, v in (data.get("capabilities") or {}).items()},
        endpoint=endpoint or data.get("endpoint") or "auto",
        shadows=_shadows(data.get("shadows"), shadows),
    )


def with_limits(config: ProxyConfig, **changes: Any) -> ProxyConfig:
    return replace(config, limits=replace(config.limits, **changes))


__all__ = [
    "LOOPBACK_HOSTS", "Limits", "ProxyConfig", "is_loopback", "load_proxy_config", "parse_alias", "parse_shadow",
    "with_limits",
]
