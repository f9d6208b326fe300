"""Waiting until asynchronous Vectorize writes are visible (vectorize-api.md §5), sans-IO.

:func:`wait_plan` is a generator of steps (:class:`GetInfo`, :class:`GetVectors`, :class:`GetMetadataIndexes`,
:class:`Sleep`); a sync or an async driver performs each step and sends its answer back.

How it decides (# guess: the assumptions, since the contract leaves them open):

* ``processedUpToMutation`` names the *last* mutation of a processed batch, so a mutation may never be named
  (its id skipped) and the order of mutation ids is unknown. The plan therefore never waits for equality alone:
  whenever the reported value changes (or every few polls), it checks the effect itself with a read — a sample of
  the written ids has the written metadata and values (upsert), is present (insert), is gone (delete); a metadata
  index is listed (or no longer listed). A skipped id thus ends the wait as soon as its effect is readable.
* Reads (query, get_by_ids) may lag ``processedUpToMutation``; returning only once a read shows the write gives
  read-after-write. We assume a query sees a mutation once get_by_ids does (both read the same index snapshot),
  and that a mutation becomes visible as a whole, so a sample of its ids stands for all of them.
* A read that already shows the written state proves nothing before processing has moved on (an upsert of
  identical content, a delete of absent ids; and a re-upsert that only serves to enter a new metadata index
  looks the same). So when the value reported *before* the write is known (``baseline``, read by writes with
  ``wait=True``), a mutation counts as done only once the reported value differs from it — some batch was
  processed after the write was accepted; mutations are applied in order (write-ahead log), so with no other
  writes pending that batch holds ours. Without a baseline (:meth:`wait_for` on mutations written with
  ``wait=False``), any processed mutation lets the reads decide.
* Once the info names the mutation itself, reads are given ``reached_grace`` seconds to catch up; after that the
  wait ends with a warning (a later write by someone else to the same ids would otherwise hold it to the deadline).
* Past ``timeout`` seconds the plan raises :class:`cfgateway.TimeoutError` naming the mutation(s).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from cfgateway import errors
from cfgateway.vectorize.types import IndexInfo, MetadataIndex, Mutation, Vector

log = logging.getLogger("cfgateway.vectorize")

_UNSEEN: Any = object()
UNKNOWN: Any = _UNSEEN  # "no baseline": the reported value before the write was not read


@dataclass(frozen=True, slots=True)
class WaitPolicy:
    """How long and how often to poll. Defaults suit Cloudflare (writes take seconds, sometimes minutes)."""

    timeout: float = 300.0  # seconds before TimeoutError
    poll_initial: float = 0.25  # first pause between polls; grows by ``backoff`` up to ``poll_max``
    poll_max: float = 3.0
    backoff: float = 1.5
    sample: int = 8  # ids read back per mutation to check its effect
    recheck_every: int = 3  # polls without a change between two read checks
    reached_grace: float = 10.0


@dataclass(frozen=True, slots=True)
class GetInfo:
    pass


@dataclass(frozen=True, slots=True)
class GetVectors:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GetMetadataIndexes:
    pass


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Step = GetInfo | GetVectors | GetMetadataIndexes | Sleep
Plan = Generator[Step, Any, None]


def sample(items: Sequence[Any], n: int) -> tuple[Any, ...]:
    """At most ``n`` items spread over ``items``, first and last included."""
    if len(items) <= n:
        return tuple(items)
    if n <= 1:
        return (items[0],)
    step = (len(items) - 1) / (n - 1)
    return tuple(items[round(i * step)] for i in range(n))


def _same_values(a: Sequence[float], b: Sequence[float]) -> bool:
    # Vectorize stores float32: compare at float32 precision.
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6) for x, y in zip(a, b, strict=True))


def _vector_visible(m: Mutation, got: dict[str, Vector]) -> bool:
    if m.kind == "delete":
        return all(i not in got for i in m.expected)
    if m.kind == "insert":
        return all(i in got for i in m.expected)
    for want in m.expected:  # upsert: the stored vector is the one written
        have = got.get(want.id)
        if have is None or (have.metadata or None) != (want.metadata or None) or not _same_values(have.values,
                                                                                                   want.values):
            return False
        if want.namespace is not None and have.namespace not in (None, want.namespace):
            return False
    return True


def _index_visible(m: Mutation, listed: list[MetadataIndex]) -> bool:
    names = {x.property_name for x in listed}
    return (m.ids[0] in names) == (m.kind == "metadata_index_create")


def _check(pending: dict[str, Mutation]) -> Generator[Step, Any, list[str]]:
    """Read back the effect of every pending mutation; the ids of those now visible."""
    vector_muts = [m for m in pending.values() if m.kind in ("insert", "upsert", "delete")]
    index_muts = [m for m in pending.values() if m.kind not in ("insert", "upsert", "delete")]
    done: list[str] = []
    if vector_muts:
        ids = tuple(dict.fromkeys(x if isinstance(x, str) else x.id for m in vector_muts for x in m.expected))
        got_list: list[Vector] = yield GetVectors(ids)
        got = {v.id: v for v in got_list}
        done += [m.id for m in vector_muts if _vector_visible(m, got)]
    if index_muts:
        listed: list[MetadataIndex] = yield GetMetadataIndexes()
        done += [m.id for m in index_muts if _index_visible(m, listed)]
    return done


def _timeout(pending: dict[str, Mutation], policy: WaitPolicy, reported: Any) -> errors.TimeoutError:
    first = list(pending.values())[:3]
    names = "; ".join(f"mutation {m.id} ({m.describe()})" for m in first)
    more = f" and {len(pending) - len(first)} more" if len(pending) > len(first) else ""
    seen = "nothing processed yet" if reported in (None, _UNSEEN) else f"processedUpToMutation={reported}"
    return errors.TimeoutError(
        f"Vectorize {names}{more} not visible after {policy.timeout:g}s (index info: {seen}); raise the wait "
        "timeout (wait_timeout=), or write with wait=False and wait for the mutation later"
    )


def wait_plan(mutations: Sequence[Mutation], policy: WaitPolicy, clock: Callable[[], float] = time.monotonic,
              baseline: Any = UNKNOWN) -> Plan:
    """Steps that end once every mutation's effect is readable (see the module docstring). ``baseline``: the
    ``processedUpToMutation`` read before the writes were sent (``None`` = nothing processed yet)."""
    pending = {m.id: m for m in mutations}
    deadline = clock() + policy.timeout
    interval, last, quiet = policy.poll_initial, _UNSEEN, 0
    reached: dict[str, float] = {}
    while pending:
        info: IndexInfo = yield GetInfo()
        now_seen = info.processed_up_to_mutation
        if now_seen in pending:
            reached.setdefault(now_seen, clock())
        changed, last = now_seen != last, now_seen
        moved = now_seen is not None and (baseline is UNKNOWN or now_seen != baseline)
        if moved and (changed or quiet >= policy.recheck_every or reached):
            quiet = 0
            for mid in (yield from _check(pending)):
                pending.pop(mid, None)
        else:
            quiet += 1
        for mid, since in reached.items():
            if mid in pending and clock() - since > policy.reached_grace:
                log.warning("Vectorize reports mutation %s processed but reads still do not show it after %.0fs; "
                            "continuing (a later write to the same ids may have replaced it)", mid,
                            policy.reached_grace)
                pending.pop(mid)
        if not pending:
            return
        left = deadline - clock()
        if left <= 0:
            raise _timeout(pending, policy, last)
        yield Sleep(min(interval, left))
        interval = min(interval * policy.backoff, policy.poll_max)


__all__ = [
    "UNKNOWN", "GetInfo", "GetMetadataIndexes", "GetVectors", "Sleep", "Step", "WaitPolicy", "sample", "wait_plan",
]
