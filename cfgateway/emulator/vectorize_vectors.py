"""Emulated Vectorize vector routes: insert/upsert (NDJSON, or multipart with a ``vectors`` file part),
query, get_by_ids, delete_by_ids and list (vectorize-api.md §4, §6, §8)."""

from __future__ import annotations

import json
import math
import secrets
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from cfgateway.emulator.context import Ctx
from cfgateway.emulator.reply import Reply
from cfgateway.emulator.vectorize_query import FilterError, f32, normalise_filter, search
from cfgateway.emulator.vectorize_replies import bad, err, find, json_body, ok, state_of
from cfgateway.emulator.vectorize_state import EmuIndex, iso

MAX_VECTORS = 5000
MAX_UPLOAD = 100_000_000
MAX_METADATA = 10 * 1024
CURSOR_TTL_S = 600.0
BAD_SIZE = 40000  # guess: the code of a too-large upload is not recorded


def _payload(ctx: Ctx) -> bytes | Reply:
    """The NDJSON bytes: the raw body, or the ``vectors`` part of a multipart/form-data body."""
    ctype = ctx.headers.get("content-type", "")
    if len(ctx.raw) > MAX_UPLOAD:
        return err(413, BAD_SIZE, "request is larger than 100 MB")
    if not ctype.lower().startswith("multipart/form-data"):
        return ctx.raw
    msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode("latin-1") + ctx.raw)
    for part in msg.iter_parts() if msg.is_multipart() else []:
        if part.get_param("name", header="content-disposition") == "vectors":
            data = part.get_payload(decode=True)
            return data if isinstance(data, bytes) else b""
    return bad("multipart body has no 'vectors' file part")



def _keys_ok(obj: Any) -> bool:
    if isinstance(obj, dict):
        return all(isinstance(k, str) and k and "." not in k and '"' not in k and not k.startswith("$")
                   and _keys_ok(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_keys_ok(v) for v in obj)
    return True


def _vector_problem(v: Any, dims: int) -> str | None:
    """Why a parsed NDJSON object is not a valid vector (None when it is)."""
    if not isinstance(v, dict) or not isinstance(v.get("id"), str) or not 0 < len(v["id"].encode()) <= 64:
        return "each vector needs a string id of 1 to 64 bytes"
    values = v.get("values")
    if not isinstance(values, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in values):
        return f'invalid vector for id="{v["id"]}", values must be an array of numbers'
    if len(values) != dims:
        return f'invalid vector for id="{v["id"]}", expected {dims} dimensions, and got {len(values)} dimensions'
    ns, md = v.get("namespace"), v.get("metadata")
    if ns is not None and (not isinstance(ns, str) or not 0 < len(ns.encode()) <= 64):
        return f'invalid vector for id="{v["id"]}", namespace must be 1 to 64 bytes'
    if md is not None and (not isinstance(md, dict) or not _keys_ok(md)
                           or len(json.dumps(md, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_METADATA):
        return f'invalid vector for id="{v["id"]}", metadata must be an object of at most 10 KiB with valid keys'
    return None


def _parse_lines(ctx: Ctx, data: bytes, index: EmuIndex) -> list[dict[str, Any]] | Reply:
    mode = ctx.query.get("unparsable-behavior") or state_of(ctx).settings.unparsable_default
    if mode not in ("error", "discard"):
        return bad("unparsable-behavior must be error or discard")
    out: list[dict[str, Any]] = []
    for n, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            v = json.loads(line)
        except ValueError:
            if mode == "discard":
                continue
            return err(400, 40026, f"Failed to parse the request body as NDJSON: line {n} is not JSON")  # guess
        problem = _vector_problem(v, index.dimensions)
        if problem is not None:
            return err(400, 40012, problem)
        vec = {"id": v["id"], "values": f32([float(x) for x in v["values"]])}
        for key in ("metadata", "namespace"):
            if v.get(key) is not None:
                vec[key] = v[key]
        out.append(vec)
    if not out:
        return bad("no vectors in the request body")
    if len(out) > MAX_VECTORS:
        return bad(f"at most {MAX_VECTORS} vectors per request, got {len(out)}")
    return out


def _write(ctx: Ctx, account: str, name: str | None, kind: str) -> Reply:
    index = find(ctx, account, name)
    if isinstance(index, Reply):
        return index
    data = _payload(ctx)
    if isinstance(data, Reply):
        return data
    vectors = _parse_lines(ctx, data, index)
    if isinstance(vectors, Reply):
        return vectors
    return ok({"mutationId": state_of(ctx).enqueue(index, kind, vectors)})


def insert(ctx: Ctx, account: str, name: str | None) -> Reply:
    return _write(ctx, account, name, "insert")


def upsert(ctx: Ctx, account: str, name: str | None) -> Reply:
    return _write(ctx, account, name, "upsert")


# -- query ------------------------------------------------------------------------------------------------
def _query_problem(body: dict[str, Any]) -> Reply | None:
    k = body.setdefault("topK", 5)
    mode = body.setdefault("returnMetadata", "none")
    if not isinstance(mode, str) or mode not in ("none", "indexed", "all"):
        return err(400, 40026, "Failed to parse the request body as JSON: returnMetadata: expected value")
    if not isinstance(body.setdefault("returnValues", False), bool):
        return err(400, 40026, "Failed to parse the request body as JSON: returnValues: expected a boolean")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        return err(400, 40026, "Failed to parse the request body as JSON: topK: expected a positive integer")
    if (body["returnValues"] or mode == "all") and k > 50:
        return err(400, 40025, f"with returnValues=true or returnMetadata=all, max top K is 50, but got {k}; for a top "
                   "K up to 100, retry with returnValues=false and returnMetadata=indexed")
    if k > 100:
        return err(400, 40025, f"max top K is 100, but got {k}")  # guess: text of the plain limit
    ns = body.get("namespace")
    if ns is not None and (not isinstance(ns, str) or not ns):
        return err(400, 40026, "Failed to parse the request body as JSON: namespace: expected a string")
    return None


def _query_vector(body: dict[str, Any], index: EmuIndex) -> list[float] | Reply | None:
    """The query vector (a stored vector's values for ``vectorId``; None when that id does not exist)."""
    if "vectorId" in body:
        stored = index.vectors.get(body["vectorId"]) if isinstance(body["vectorId"], str) else None
        return None if stored is None else stored.values  # guess: an unknown vectorId matches nothing
    vec = body.get("vector")
    if not isinstance(vec, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vec):
        return err(400, 40026, "Failed to parse the request body as JSON: vector: expected an array of numbers")
    if len(vec) != index.dimensions:
        return err(400, 40006, f"invalid query vector, expected {index.dimensions} dimensions, and got {len(vec)} "
                   "dimensions")
    return f32([float(x) for x in vec])


def query(ctx: Ctx, account: str, name: str | None) -> Reply:
    index, body = find(ctx, account, name), json_body(ctx)
    if isinstance(index, Reply) or isinstance(body, Reply):
        return index if isinstance(index, Reply) else body  # type: ignore[return-value]
    body = dict(body)
    problem = _query_problem(body)
    if problem is not None:
        return problem
    vector = _query_vector(body, index)
    if isinstance(vector, Reply):
        return vector
    try:
        spec = normalise_filter(body["filter"]) if body.get("filter") is not None else None
        found = [] if vector is None else search(index, vector, body, spec, state_of(ctx).settings)
    except FilterError as exc:
        return bad(f"invalid filter: {exc}")
    return ok({"count": len(found), "matches": found})


# -- by id ------------------------------------------------------------------------------------------------
def _ids(ctx: Ctx) -> list[str] | Reply:
    body = json_body(ctx)
    if isinstance(body, Reply):
        return body
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return err(400, 40026, "Failed to parse the request body as JSON: ids: expected an array of strings")
    limit = state_of(ctx).settings.max_ids
    if len(ids) > limit:
        return bad(f"at most {limit} ids per request, got {len(ids)}")
    return ids


def get_by_ids(ctx: Ctx, account: str, name: str | None) -> Reply:
    index, ids = find(ctx, account, name), _ids(ctx)
    if isinstance(index, Reply) or isinstance(ids, Reply):
        return index if isinstance(index, Reply) else ids  # type: ignore[return-value]
    order = state_of(ctx).settings.get_by_ids_order
    wanted = set(ids)
    if order == "stored":
        found = [v for v in index.vectors.values() if v.id in wanted]
    else:
        found = [index.vectors[i] for i in dict.fromkeys(ids) if i in index.vectors]
        found = found[::-1] if order == "reverse" else found
    out = []
    for v in found:
        row: dict[str, Any] = {"id": v.id, "values": v.values}
        if v.metadata is not None:
            row["metadata"] = v.metadata
        if v.namespace is not None:
            row["namespace"] = v.namespace
        out.append(row)
    return ok(out)


def delete_by_ids(ctx: Ctx, account: str, name: str | None) -> Reply:
    index, ids = find(ctx, account, name), _ids(ctx)
    if isinstance(index, Reply) or isinstance(ids, Reply):
        return index if isinstance(index, Reply) else ids  # type: ignore[return-value]
    return ok({"mutationId": state_of(ctx).enqueue(index, "delete", list(ids))})


def list_vectors(ctx: Ctx, account: str, name: str | None) -> Reply:
    """Pages of ids from a snapshot taken at the first page; cursors expire."""
    index = find(ctx, account, name)
    if isinstance(index, Reply):
        return index
    raw = ctx.query.get("count", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        return bad("count must be from 1 to 1000")
    st, now = state_of(ctx), time.time()
    cursor = ctx.query.get("cursor")
    if cursor:
        entry = st.cursors.pop(cursor, None)
        if entry is None or entry[1] < now:
            return bad("the cursor is invalid or has expired")
        ids, total = entry[0], entry[2]
    else:
        ids = sorted(index.vectors)
        total = len(ids)
    page, rest = ids[: int(raw)], ids[int(raw):]
    next_cursor = None
    if rest:
        next_cursor = secrets.token_urlsafe(16)
        st.cursors[next_cursor] = (rest, now + CURSOR_TTL_S, total)
    return ok({"count": len(page), "totalCount": total, "isTruncated": bool(rest), "nextCursor": next_cursor,
               "cursorExpirationTimestamp": iso(now + CURSOR_TTL_S) if rest else None,
               "vectors": [{"id": i} for i in page]})


__all__ = ["delete_by_ids", "get_by_ids", "insert", "list_vectors", "query", "upsert"]
