"""``GET /v1/models`` and ``GET /v1/models/{id}``: catalog models and aliases, with AutoGen's ``model_info``.

An alias reports what the proxy serves for it: the proxy forwards tools, images and response formats to
its chain, so a capability is on when any member has it (the member that has it can answer), unless the
operator states the alias's capabilities in the config file (``[capabilities] fast = {…}``). Its ``family``
is its primary model's (AutoGen keys behaviour on the family, not on the alias's name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfgateway.costs.catalog import Catalog
from cfgateway.openai_sdk import autogen_model_info
from cfgateway.proxy.clients import ClientPool

_CAPS = ("vision", "function_calling", "json_output", "structured_output")


def alias_info(members: tuple[str, ...], catalog: Catalog, stated: Mapping[str, bool] | None) -> dict[str, Any]:
    infos = [autogen_model_info(m, catalog=catalog) for m in members]
    out = dict(infos[0])
    for cap in _CAPS:
        out[cap] = any(i[cap] for i in infos)
    out.update({k: bool(v) for k, v in (stated or {}).items() if k in _CAPS})
    return out


def entry(name: str, pool: ClientPool, stated: Mapping[str, Mapping[str, bool]]) -> dict[str, Any]:
    r = pool.resolve(name)
    primary = pool.catalog.get(r.members[0])
    if r.alias:
        info = alias_info(r.members, pool.catalog, stated.get(name))
        owner = "cfgateway-alias"
    else:
        info = autogen_model_info(r.members[0], catalog=pool.catalog)
        owner = primary.provider if primary else r.members[0].split("/", 1)[0]
    out: dict[str, Any] = {"id": name, "object": "model", "created": 0, "owned_by": owner,
                           "model_info": {**info, "context_window": primary.context_window if primary else None},
                           "kind": primary.kind if primary else None}
    if r.alias:
        out["members"] = list(r.members)
    return out


def listing(pool: ClientPool, stated: Mapping[str, Mapping[str, bool]], allowed: frozenset[str] | None) -> list[Any]:
    names = [*pool.catalog.models, *pool.aliases]
    return [entry(n, pool, stated) for n in names if allowed is None or n in allowed]


__all__ = ["alias_info", "entry", "listing"]
