"""The read-after-write wait plan, driven step by step with scripted answers (no server): equality, a skipped
mutation id, batch ids, reads lagging the info, a baseline that blocks a premature "identical" read, the grace
after the info names the mutation, and the deadline error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cfgateway.errors import TimeoutError as CFTimeoutError
from cfgateway.vectorize import IndexInfo, MetadataIndex, Mutation, Vector, WaitPolicy
from cfgateway.vectorize.waiting import GetInfo, GetMetadataIndexes, GetVectors, Sleep, sample, wait_plan

POLICY = WaitPolicy(timeout=30.0, poll_initial=1.0, poll_max=1.0, recheck_every=3, reached_grace=5.0)
V = Vector("a", [1.0, 2.0], {"t": "new"})
UPSERT = Mutation("m1", "upsert", "docs", ("a",), (V,))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(plan: Any, clock: Clock, info: Callable[[float], str | None], vectors: Callable[[float], list[Vector]],
          indexes: Callable[[float], list[MetadataIndex]] = lambda t: []) -> list[str]:
    """Run the plan; the answers depend on the fake time. Returns the kinds of steps taken."""
    steps, answer = [], None
    try:
        while True:
            step = plan.send(answer)
            steps.append(type(step).__name__)
            if isinstance(step, GetInfo):
                answer = IndexInfo(2, 1, info(clock.now))
            elif isinstance(step, GetVectors):
                answer = vectors(clock.now)
            elif isinstance(step, GetMetadataIndexes):
                answer = indexes(clock.now)
            else:
                assert isinstance(step, Sleep)
                clock.now += step.seconds
                answer = None
    except StopIteration:
        return steps


def old_until(t: float) -> Callable[[float], list[Vector]]:
    return lambda now: [V] if now >= t else [Vector("a", [0.0, 0.0], {"t": "old"})]


def test_equality_then_read() -> None:
    clock = Clock()
    steps = drive(wait_plan([UPSERT], POLICY, clock, baseline="m0"), clock,
                  lambda t: "m1" if t >= 3 else "m0", old_until(3))
    assert clock.now == 3 and steps[-2:] == ["GetInfo", "GetVectors"]


def test_a_skipped_mutation_id_ends_when_the_write_is_readable_not_at_the_deadline() -> None:
    clock = Clock()
    drive(wait_plan([UPSERT], POLICY, clock, baseline="m0"), clock, lambda t: "m2" if t >= 4 else "m0", old_until(4))
    assert clock.now == 4


def test_batch_ids_with_reads_lagging_the_info() -> None:
    clock = Clock()
    drive(wait_plan([UPSERT], POLICY, clock, baseline=None), clock, lambda t: "batch-9" if t >= 2 else None,
          old_until(7))
    assert 7 <= clock.now <= 7 + POLICY.recheck_every + 1  # rechecked every few polls while the info stays the same


def test_the_baseline_blocks_an_identical_read_before_processing() -> None:
    clock = Clock()
    # reads already show the written state (an identical re-upsert); processing happens at t=5
    steps = drive(wait_plan([UPSERT], POLICY, clock, baseline="m0"), clock, lambda t: "m1" if t >= 5 else "m0",
                  lambda t: [V])
    assert clock.now == 5 and "GetVectors" not in steps[:-1]
    clock2 = Clock()
    drive(wait_plan([UPSERT], POLICY, clock2), clock2, lambda t: "m1" if t >= 5 else "m0", lambda t: [V])
    assert clock2.now == 0  # without a baseline, the reads decide at once


def test_reached_but_never_readable_ends_after_the_grace_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    drive(wait_plan([UPSERT], POLICY, clock, baseline="m0"), clock, lambda t: "m1" if t >= 2 else "m0",
          lambda t: [])
    assert 7 <= clock.now <= 8 and "reads still do not show it" in caplog.text


def test_the_deadline_names_the_mutation() -> None:
    clock = Clock()
    with pytest.raises(CFTimeoutError, match=r"mutation m1 \(upsert of 1 vector\(s\) in index 'docs'\).*30s") as e:
        drive(wait_plan([UPSERT], POLICY, clock, baseline="m0"), clock, lambda t: "m0", lambda t: [])
    assert isinstance(e.value, TimeoutError) and "nothing processed" not in str(e.value)
    clock2 = Clock()
    with pytest.raises(CFTimeoutError, match="nothing processed yet"):
        drive(wait_plan([UPSERT], POLICY, clock2), clock2, lambda t: None, lambda t: [])


def test_deletes_inserts_and_metadata_indexes() -> None:
    clock = Clock()
    delete = Mutation("d", "delete", "docs", ("a", "b"), ("a", "b"))
    insert = Mutation("i", "insert", "docs", ("c",), ("c",))
    create = Mutation("x", "metadata_index_create", "docs", ("k",), ())
    drive(wait_plan([delete, insert, create], POLICY, clock, baseline="m0"), clock,
          lambda t: "i" if t >= 2 else "m0",
          lambda t: [Vector("c", [1.0, 1.0])] if t >= 2 else [Vector("a", [1.0, 1.0])],
          lambda t: [MetadataIndex("k", "string")] if t >= 3 else [])
    assert clock.now == 3


def test_sample_spreads_over_the_ids() -> None:
    assert sample(list(range(100)), 5) == (0, 25, 50, 74, 99)
    assert sample([1, 2], 5) == (1, 2)
