"""Emulated Vectorize v2 REST API: ``/client/v4/accounts/{account}/vectorize/v2/indexes...`` (vectorize-api.md).

Routing, the error envelope, and index and metadata-index management live here; vector reads and writes in
:mod:`cfgateway.emulator.vectorize_vectors`. Every request body is treated as hostile: anything the service
would refuse gets a 4xx in Cloudflare's envelope. # guess: the codes of validation failures the contract does
not record (bad name, too many vectors, bad filter, ...) are 40000; 40026 answers bodies that are not the
expected JSON, as recorded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from cfgateway.emulator import vectorize_vectors as vv
from cfgateway.emulator.context import Ctx
from cfgateway.emulator.reply import Reply
from cfgateway.emulator.vectorize_replies import bad, err, find, json_body, ok, state_of
from cfgateway.emulator.vectorize_state import EmuIndex, VectorizeState, iso

NAME_RE = re.compile(r"^([a-z]+[a-z0-9_-]*[a-z0-9]+)$")
PRESETS = {
    "@cf/baai/bge-small-en-v1.5": 384,
    "@cf/baai/bge-base-en-v1.5": 768,
    "@cf/baai/bge-large-en-v1.5": 1024,
    "openai/text-embedding-ada-002": 1536,
    "cohere/embed-multilingual-v2.0": 768,
}
METRICS = ("cosine", "euclidean", "dot-product")
MAX_METADATA_INDEXES = 10
_PATH = re.compile(r"^v2/indexes(?:/([^/]*)(/.*)?)?$")
_ACCOUNT = re.compile(r"^/client/v4/accounts/([^/]+)/")

VHandler = Callable[[Ctx, str, str | None], Reply]


# -- indexes ----------------------------------------------------------------------------------------------
def _config(body: dict[str, Any], st: VectorizeState) -> tuple[int, str] | Reply:
    cfg = body.get("config")
    if not isinstance(cfg, dict):
        return err(400, 40026, "Failed to parse the request body as JSON: config: expected an object")
    if "preset" in cfg:
        if cfg["preset"] not in PRESETS or len(cfg) != 1:
            return err(400, 40026, "Failed to parse the request body as JSON: config.preset: unknown preset")
        return PRESETS[cfg["preset"]], st.settings.preset_metric
    dims, metric = cfg.get("dimensions"), cfg.get("metric")
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 1536:
        return err(400, 40026, "Failed to parse the request body as JSON: config.dimensions: expected 1 to 1536")
    if metric not in METRICS:
        return err(400, 40026, "Failed to parse the request body as JSON: config.metric: expected one of "
                   + ", ".join(METRICS))
    return dims, str(metric)


def create_index(ctx: Ctx, account: str, _name: str | None) -> Reply:
    body = json_body(ctx)
    if isinstance(body, Reply):
        return body
    st, name = state_of(ctx), body.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name.encode()) > 64:
        return bad(f"invalid index name {str(name)[:80]!r}: lowercase letters, digits, '-' and '_', at most 64 bytes")
    config = _config(body, st)
    if isinstance(config, Reply):
        return config
    if (account, name) in st.indexes:
        return err(st.settings.duplicate_status, 3002, f'vectorize.index.duplicate_name - Index name "{name}"')
    now = iso(time.time())
    desc = body.get("description")
    index = EmuIndex(name, config[0], config[1], desc if isinstance(desc, str) else "", now, now)
    st.indexes[(account, name)] = index
    st.deleted.discard((account, name))
    return ok(index.to_dict(), st.settings.create_status)


def list_indexes(ctx: Ctx, account: str, _name: str | None) -> Reply:
    return ok([ix.to_dict() for (acct, _), ix in sorted(state_of(ctx).indexes.items()) if acct == account])


def describe(ctx: Ctx, account: str, name: str | None) -> Reply:
    index = find(ctx, account, name)
    return index if isinstance(index, Reply) else ok(index.to_dict())


def delete_index(ctx: Ctx, account: str, name: str | None) -> Reply:
    index = find(ctx, account, name)
    if isinstance(index, Reply):
        return index
    st = state_of(ctx)
    del st.indexes[(account, index.name)]
    st.deleted.add((account, index.name))
    return ok(None)


def info(ctx: Ctx, account: str, name: str | None) -> Reply:
    index = find(ctx, account, name)
    if isinstance(index, Reply):
        return index
    out: dict[str, Any] = {"dimensions": index.dimensions, "vectorCount": len(index.vectors)}
    if index.reported is not None:  # both fields appear once a mutation has been processed
        out["processedUpToDatetime"] = index.reported_at
        out["processedUpToMutation"] = index.reported
    return ok(out)


# -- metadata indexes -----------------------------------------------------------------------------------------
def _property(body: dict[str, Any]) -> str | Reply:
    prop = body.get("propertyName")
    parts = prop.split(".") if isinstance(prop, str) else [""]
    if not isinstance(prop, str) or len(prop) > 512 or any(not p or '"' in p or p.startswith("$") for p in parts):
        return err(400, 40026, "Failed to parse the request body as JSON: propertyName: invalid")
    return prop


def create_metadata_index(ctx: Ctx, account: str, name: str | None) -> Reply:
    index, body = find(ctx, account, name), json_body(ctx)
    if isinstance(index, Reply) or isinstance(body, Reply):
        return index if isinstance(index, Reply) else body  # type: ignore[return-value]
    prop = _property(body)
    if isinstance(prop, Reply):
        return prop
    kind = body.get("indexType")
    if kind not in ("string", "number", "boolean"):
        return err(400, 40026, "Failed to parse the request body as JSON: indexType: expected string, number, boolean")
    st = state_of(ctx)
    names = st.pending_index_names(index)
    if prop in names:
        return bad(f"a metadata index on {prop!r} already exists")
    if len(names) >= MAX_METADATA_INDEXES:
        return bad(f"at most {MAX_METADATA_INDEXES} metadata indexes per index")
    return ok({"mutationId": st.enqueue(index, "metadata_index_create", (prop, kind))})


def list_metadata_indexes(ctx: Ctx, account: str, name: str | None) -> Reply:
    index = find(ctx, account, name)
    if isinstance(index, Reply):
        return index
    rows = [{"propertyName": p, "indexType": t} for p, t in sorted(index.metadata_indexes.items())]
    return ok({"metadataIndexes": rows})


def delete_metadata_index(ctx: Ctx, account: str, name: str | None) -> Reply:
    index, body = find(ctx, account, name), json_body(ctx)
    if isinstance(index, Reply) or isinstance(body, Reply):
        return index if isinstance(index, Reply) else body  # type: ignore[return-value]
    prop = _property(body)
    if isinstance(prop, Reply):
        return prop
    st = state_of(ctx)
    if prop not in st.pending_index_names(index):
        return bad(f"there is no metadata index on {prop!r}")
    return ok({"mutationId": st.enqueue(index, "metadata_index_delete", prop)})


# -- routing --------------------------------------------------------------------------------------------------
def _routes() -> dict[tuple[str | None, str], dict[str, VHandler]]:
    return {
        (None, ""): {"GET": list_indexes, "POST": create_index},
        ("name", ""): {"GET": describe, "DELETE": delete_index},
        ("name", "/info"): {"GET": info},
        ("name", "/insert"): {"POST": vv.insert},
        ("name", "/upsert"): {"POST": vv.upsert},
        ("name", "/query"): {"POST": vv.query},
        ("name", "/get_by_ids"): {"POST": vv.get_by_ids},
        ("name", "/delete_by_ids"): {"POST": vv.delete_by_ids},
        ("name", "/list"): {"GET": vv.list_vectors},
        ("name", "/metadata_index/create"): {"POST": create_metadata_index},
        ("name", "/metadata_index/list"): {"GET": list_metadata_indexes},
        ("name", "/metadata_index/delete"): {"POST": delete_metadata_index},
    }


def vectorize_target(ctx: Ctx, rest: str) -> Callable[[Ctx], Reply] | Reply:
    """The handler for ``.../accounts/{account}/vectorize/{rest}``, or an error reply (404 7003, 405 7001)."""
    m, acct = _PATH.match(rest.rstrip("/")), _ACCOUNT.match(ctx.path)  # a trailing slash is the same resource
    if m is None or acct is None:
        return err(404, 7003, f"Could not route to {ctx.path[:200]}, perhaps your object identifier is invalid?")
    name, tail = m.group(1), m.group(2) or ""
    methods = _routes().get(("name" if name is not None else None, tail))
    if methods is None:
        return err(404, 7003, f"Could not route to {ctx.path[:200]}, perhaps your object identifier is invalid?")
    handler = methods.get(ctx.method)
    if handler is None:
        return err(405, 7001, f"{ctx.method} not supported for requested URI.")
    account = acct.group(1)

    def run(c: Ctx) -> Reply:
        with state_of(c).lock:
            return handler(c, account, name)

    return run


__all__ = ["vectorize_target"]
