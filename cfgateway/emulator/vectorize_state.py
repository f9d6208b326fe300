"""Emulated Vectorize v2 state: indexes, vectors, metadata indexes, and the queue of pending mutations.

A write is a mutation (vectorize-api.md §5): it is *processed* ``delay_s`` after it was accepted (then ``info``
reports it) and *visible* to reads ``read_lag_s`` later. Mutations are applied in order, lazily, whenever a
request arrives. The switches in :class:`VectorizeSettings` cover what the contract leaves UNKNOWN, so clients
can be tested against each possibility.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


@dataclass(slots=True)
class VectorizeSettings:
    """How the emulated Vectorize behaves; change them on ``state.vectorize.settings`` or in
    ``EmulatorConfig(vectorize=...)`` (``state.clear()`` restores the configured ones)."""

    delay_s: float = 0.0  # accepted -> processed (reported by info.processedUpToMutation)
    read_lag_s: float = 0.0  # processed -> visible to query/get_by_ids/list
    # what info.processedUpToMutation names: "mutation" = the last mutation of the batch processed (mutations
    # that fall due together form one batch, so an earlier id is never reported), "batch_id" = a fresh id per
    # batch that is no mutation's id
    report: str = "mutation"
    not_found_status: int = 404  # status of 3000/3005 (400 in one third-party report)
    duplicate_status: int = 409  # status of 3002
    create_status: int = 200  # 200 per the OpenAPI spec, 201 per the docs' Python example
    unindexed_filter: str = "empty"  # filter on a property without a metadata index: "empty" or "error"
    negation_matches_missing: bool = True  # $ne/$nin match vectors that lack the property
    unparsable_default: str = "error"  # unparsable-behavior when the query parameter is absent
    preset_metric: str = "cosine"  # the metric an index created from a preset gets
    query_all_namespaces: bool = True  # a query without namespace searches every namespace (else: none only)
    get_by_ids_order: str = "request"  # "request", "reverse" or "stored"
    max_ids: int = 1000  # ids per get_by_ids / delete_by_ids request

    def copy(self) -> VectorizeSettings:
        return replace(self)


@dataclass(slots=True)
class StoredVector:
    id: str
    values: list[float]
    metadata: dict[str, Any] | None
    namespace: str | None
    indexed: frozenset[str]  # metadata indexes that existed when it was written


@dataclass(slots=True)
class PendingMutation:
    id: str
    kind: str  # insert | upsert | delete | metadata_index_create | metadata_index_delete
    payload: Any
    accepted: float
    processed: float | None = None


@dataclass
class EmuIndex:
    name: str
    dimensions: int
    metric: str
    description: str = ""
    created_on: str = ""
    modified_on: str = ""
    vectors: dict[str, StoredVector] = field(default_factory=dict)
    metadata_indexes: dict[str, str] = field(default_factory=dict)
    pending: list[PendingMutation] = field(default_factory=list)  # not yet processed, in order
    unseen: list[PendingMutation] = field(default_factory=list)  # processed, not yet visible, in order
    reported: str | None = None
    reported_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"created_on": self.created_on, "modified_on": self.modified_on, "name": self.name,
                "description": self.description, "config": {"dimensions": self.dimensions, "metric": self.metric}}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


class VectorizeState:
    """Every account's indexes (keyed by account and name) behind one lock."""

    def __init__(self, settings: VectorizeSettings | None = None) -> None:
        self._configured = settings or VectorizeSettings()
        self.settings = self._configured.copy()
        self.lock = threading.RLock()
        self.indexes: dict[tuple[str, str], EmuIndex] = {}
        self.deleted: set[tuple[str, str]] = set()
        self.cursors: dict[str, tuple[list[str], float, int]] = {}  # cursor -> (ids left, expiry, total)

    def clear(self) -> None:
        with self.lock:
            self.settings = self._configured.copy()
            self.indexes.clear()
            self.deleted.clear()
            self.cursors.clear()

    def settings_dict(self) -> dict[str, Any]:
        return asdict(self.settings)

    def update(self, changes: Any) -> None:
        """Change switches from JSON (the control endpoint); unknown names or wrong types are a ValueError."""
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object of Vectorize settings")
        kinds = {f.name: type(getattr(self.settings, f.name)) for f in fields(VectorizeSettings)}
        for name, value in changes.items():
            want = kinds.get(name)
            if want is None:
                raise ValueError(f"unknown Vectorize setting {name!r}; known: {', '.join(sorted(kinds))}")
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not want:
                raise ValueError(f"Vectorize setting {name!r} takes a {want.__name__}")
        with self.lock:
            self.settings = replace(self.settings, **changes)
            for name in ("delay_s", "read_lag_s"):
                setattr(self.settings, name, float(getattr(self.settings, name)))

    # -- mutations --------------------------------------------------------------------------------------
    def enqueue(self, index: EmuIndex, kind: str, payload: Any) -> str:
        m = PendingMutation(str(uuid.uuid4()), kind, payload, time.time())
        index.pending.append(m)
        return m.id

    def advance(self, index: EmuIndex, now: float | None = None) -> None:
        """Process the mutations that are due, then make visible those whose read lag has passed."""
        now = time.time() if now is None else now
        s = self.settings
        due = [m for m in index.pending if m.accepted + s.delay_s <= now]
        if due:
            del index.pending[: len(due)]
            for m in due:
                m.processed = m.accepted + s.delay_s
            index.unseen.extend(due)
            index.reported = self._reported(due)
            index.reported_at = iso(max(m.processed or now for m in due))
        while index.unseen and (index.unseen[0].processed or now) + s.read_lag_s <= now:
            self._apply(index, index.unseen.pop(0))

    def _reported(self, batch: list[PendingMutation]) -> str:
        if self.settings.report == "batch_id":
            return str(uuid.uuid4())
        return batch[-1].id

    def _apply(self, index: EmuIndex, m: PendingMutation) -> None:
        if m.kind in ("insert", "upsert"):
            indexed = frozenset(index.metadata_indexes)
            for v in m.payload:
                if m.kind == "insert" and v["id"] in index.vectors:
                    continue
                index.vectors[v["id"]] = StoredVector(v["id"], v["values"], v.get("metadata"), v.get("namespace"),
                                                      indexed)
        elif m.kind == "delete":
            for vid in m.payload:
                index.vectors.pop(vid, None)
        elif m.kind == "metadata_index_create":
            index.metadata_indexes[m.payload[0]] = m.payload[1]
        elif m.kind == "metadata_index_delete":
            index.metadata_indexes.pop(m.payload, None)
        index.modified_on = iso(time.time())

    def pending_index_names(self, index: EmuIndex) -> dict[str, str | None]:
        """Metadata indexes once every accepted mutation is applied (for limits and duplicates)."""
        names: dict[str, str | None] = dict(index.metadata_indexes)
        for m in [*index.unseen, *index.pending]:
            if m.kind == "metadata_index_create":
                names[m.payload[0]] = m.payload[1]
            elif m.kind == "metadata_index_delete":
                names.pop(m.payload, None)
        return names


__all__ = ["EmuIndex", "PendingMutation", "StoredVector", "VectorizeSettings", "VectorizeState", "iso"]
