"""Checks for the structured settings (lists, rollout stages, gateway options, budgets): plain data in, plain
data out, every problem a :class:`ConfigError` naming the key and the fix. The objects (``Rollout``,
``GatewayOptions``, ``Budget``) are built from this data by :mod:`cfgateway.connection`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from cfgateway.errors import ConfigError
from cfgateway.routing.model_strings import check_model_string, split_share

# The fields of cfgateway.GatewayOptions (routing.routes), kept here so a typo fails when the file is read.
GATEWAY_OPTION_KEYS = (
    "cache_ttl", "skip_cache", "cache_key", "metadata", "collect_log", "collect_log_payload", "event_id",
    "request_timeout_ms", "max_attempts", "retry_delay_ms", "backoff", "custom_cost", "byok_alias",
)
CHAT_DEFAULT_KEYS = ("temperature", "max_tokens", "top_p", "top_k", "seed", "stop", "frequency_penalty",
                     "presence_penalty", "repetition_penalty", "reasoning_effort")
BUDGET_KEYS = ("limit", "window", "scope", "key", "alerts", "name")
ROLLOUT_KEYS = ("model", "percent", "salt")
# The fields of cfgateway.Shadow (routing.shadow), checked in full when the connection builds it.
SHADOW_KEYS = ("candidate", "sample", "similarity_model", "max_cost", "baseline", "by", "name", "workers",
               "max_pending")


def check_list(name: str, value: Any, *, split: bool = True) -> list[Any]:
    """A list from a TOML array, or from a comma-separated string (environment variables)."""
    if isinstance(value, str) and split:
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Mapping) and not split:
        return [value]
    raise ConfigError(f"{name} must be a list (a TOML array, or comma-separated in the environment), got {value!r}")


def _stage(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping) and "candidate" in item:  # a staged rollout: read by routing.rollout_from_settings
        return {**item, "candidate": check_model_string(item["candidate"])}
    if isinstance(item, str):  # "MODEL:PERCENT" (CFGATEWAY_ROLLOUT)
        model, sep, pct = item.rpartition(":")
        if not sep:
            raise ConfigError(f"rollout entry {item!r} must be MODEL:PERCENT, e.g. '@cf/google/gemma-4-26b-a4b-it:10'")
        item = {"model": model, "percent": pct}
    if not isinstance(item, Mapping):
        raise ConfigError(f"a rollout entry is a table {{model, percent, salt?}}, got {item!r}")
    unknown = sorted(set(item) - set(ROLLOUT_KEYS))
    if unknown or "model" not in item or "percent" not in item:
        raise ConfigError(f"a rollout entry takes model, percent and optionally salt; got keys {sorted(item)}")
    try:
        percent = float(item["percent"])
    except (TypeError, ValueError):
        raise ConfigError(f"rollout percent must be a number from 0 to 100, got {item['percent']!r}") from None
    if not 0 <= percent <= 100:
        raise ConfigError(f"rollout percent must be from 0 to 100, got {percent}")
    out: dict[str, Any] = {"model": check_model_string(item["model"]), "percent": percent}
    if item.get("salt") is not None:
        out["salt"] = str(item["salt"])
    return out


def check_rollout(value: Any) -> tuple[Mapping[str, Any], ...]:
    """Rollout stages: ``[{model, percent, salt?}]`` in the file, ``MODEL:PERCENT[,…]`` in the environment."""
    if isinstance(value, Mapping):
        value = [value]
    return tuple(_stage(item) for item in check_list("rollout", value))


_RATE_KEYS = frozenset({"rpm", "tpm", "rps", "requests", "tokens", "per"})


def check_rate_limits(value: Any) -> dict[str, Any]:
    """``{model string or glob: {rpm = 60, tpm = ...} | "catalog"}``; JSON text in the environment."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError('CFGATEWAY_RATE_LIMITS must be JSON, e.g. {"custom-deepinfra/*": {"rpm": 60}}') from None
    if not isinstance(value, Mapping):
        raise ConfigError(f'rate_limits must be a table of model -> {{rpm = 60}} (or "catalog"), got {value!r}')
    out: dict[str, Any] = {}
    for model, rule in value.items():
        if rule == "catalog":
            out[str(model)] = rule
            continue
        if not isinstance(rule, Mapping) or not rule or set(rule) - _RATE_KEYS:
            raise ConfigError(f"rate_limits[{model!r}] must be a table with keys from {sorted(_RATE_KEYS)} "
                              f'(or "catalog"), got {rule!r}')
        out[str(model)] = dict(rule)
    return out


def check_shadow(value: Any) -> dict[str, Any]:
    """A shadow: ``[profiles.x.shadow]`` with ``candidate``, ``sample``, ``similarity_model``, ``max_cost``...
    in the file, ``CANDIDATE@SAMPLE`` (or ``CANDIDATE:0.1``) in the environment (``CFGATEWAY_SHADOW``)."""
    if isinstance(value, str):
        model, sample = split_share(value)
        if sample is None:
            raise ConfigError(f"shadow {value!r} must be CANDIDATE@SAMPLE (or CANDIDATE:SAMPLE with a decimal "
                              "share), e.g. '@cf/meta/llama-3.3-70b-instruct-fp8-fast@0.1'")
        value = {"candidate": model, "sample": sample}
    if not isinstance(value, Mapping):
        raise ConfigError(f"shadow must be a table with candidate, sample, similarity_model, max_cost; got {value!r}")
    unknown = sorted(set(value) - set(SHADOW_KEYS))
    if unknown or "candidate" not in value:
        raise ConfigError(f"shadow: a candidate model string is required; unknown key(s) "
                          f"{', '.join(unknown) or 'none'}; known: {', '.join(SHADOW_KEYS)}")
    out = {**value, "candidate": check_model_string(value["candidate"])}
    if "sample" in out:
        try:
            out["sample"] = float(out["sample"])
        except (TypeError, ValueError):
            raise ConfigError(f"shadow sample is a share from 0 to 1 (0.1 = 10 %), got {value['sample']!r}") from None
    if out.get("max_cost") is not None:
        out["max_cost"] = _usd(out["max_cost"], "max_cost", "shadow")
    return out


def check_options(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"gateway_options must be a table of GatewayOptions fields, got {value!r}")
    unknown = sorted(set(value) - set(GATEWAY_OPTION_KEYS))
    if unknown:
        raise ConfigError(
            f"gateway_options: unknown key(s) {', '.join(unknown)}; known: {', '.join(GATEWAY_OPTION_KEYS)}"
        )
    return dict(value)


def check_chat_defaults(value: Any) -> dict[str, Any]:
    """Completion defaults an adapter uses when the code sets none (``chat_defaults = {max_tokens = 512}``)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"chat_defaults must be a table like {{max_tokens = 512, temperature = 0.3}}, got {value!r}")
    unknown = sorted(set(value) - set(CHAT_DEFAULT_KEYS))
    if unknown:
        raise ConfigError(f"chat_defaults: unknown key(s) {', '.join(unknown)}; known: {', '.join(CHAT_DEFAULT_KEYS)}")
    return dict(value)


def _usd(value: Any, what: str, owner: str = "budget") -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{owner} {what} must be an amount in USD, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{owner} {what} must not be negative, got {value!r}")
    return str(amount)


def check_budget(value: Any) -> dict[str, Any]:
    """One budget table ``{limit?, window?, scope?, key?, alerts?, name?}``; amounts are kept as strings of
    decimals (exact), turned into :class:`~cfgateway.costs.budget.Budget` by the connection helper."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"each budget is a table with limit, window, scope, key, alerts; got {value!r}")
    unknown = sorted(set(value) - set(BUDGET_KEYS))
    if unknown:
        raise ConfigError(f"budget: unknown key(s) {', '.join(unknown)}; known: {', '.join(BUDGET_KEYS)}")
    if value.get("limit") is None and not value.get("alerts"):
        raise ConfigError("a budget needs a limit (USD), alerts (USD thresholds), or both")
    out = dict(value)
    if value.get("limit") is not None:
        out["limit"] = _usd(value["limit"], "limit")
    alerts = value.get("alerts") or []
    if not isinstance(alerts, (list, tuple)):
        raise ConfigError(f"budget alerts must be a list of USD amounts, e.g. [100, 300, 500]; got {alerts!r}")
    out["alerts"] = [_usd(a, "alert") for a in alerts]
    return out


__all__ = [
    "BUDGET_KEYS", "CHAT_DEFAULT_KEYS", "GATEWAY_OPTION_KEYS", "SHADOW_KEYS", "check_budget", "check_chat_defaults",
    "check_list", "check_options", "check_rate_limits", "check_rollout", "check_shadow",
]
