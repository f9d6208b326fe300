"""Quality gates of a rollout: figures of one stage from the ledger's records, and the verdict.

A stage's evidence is every record of the candidate route made while the stage was in force:

- shadow pairs (outcome ``shadow``, ``model`` = the candidate): similarity to the baseline's answer,
  the candidate's latency and cost beside the baseline's, and its error if it failed;
- the candidate's own live attempts (users already moved to it): their errors count in the error
  rate too, so a candidate that starts failing is rolled back even before shadows exist.

Errors that are the caller's doing (bad input, a budget refusal, a too-long context) are not held
against the candidate (:data:`NOT_CANDIDATE_FAULTS`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from cfgateway.costs.ledger.record import UsageRecord
from cfgateway.errors import ConfigError
from cfgateway.types import ChatResponse

Action = Literal["advance", "hold", "rollback"]

NOT_CANDIDATE_FAULTS = frozenset({
    "InvalidInputError", "BadRequestError", "ContextLengthExceededError", "BudgetExceededError",
    "RequestTooLargeError", "ConfigError",
})


@dataclass(frozen=True, slots=True)
class Gates:
    """What a stage must show before the rollout advances.

    ``min_samples`` shadow pairs; mean similarity >= ``min_similarity``; error rate <=
    ``max_error_rate``; candidate/baseline mean latency <= ``max_latency_ratio`` and cost <=
    ``max_cost_ratio`` (``None`` = not gated). A stage is rolled back once it has
    ``rollback_min_samples`` attempts and its error rate or mean similarity is outside the gates.
    """

    min_samples: int = 200
    min_similarity: float = 0.95
    max_error_rate: float = 0.02
    max_latency_ratio: float | None = 1.5
    max_cost_ratio: float | None = None
    rollback_min_samples: int = 20

    def __post_init__(self) -> None:
        if self.min_samples < 1 or self.rollback_min_samples < 1:
            raise ConfigError("gates: min_samples and rollback_min_samples must be at least 1")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ConfigError(f"gates: min_similarity is a cosine in [-1, 1], got {self.min_similarity}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ConfigError(f"gates: max_error_rate is a share in [0, 1] (0.02 = 2 %), got {self.max_error_rate}")
        for name in ("max_latency_ratio", "max_cost_ratio"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"gates: {name} must be a positive ratio or None, got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gates:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown gate setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(slots=True)
class StageStats:
    """The evidence of one stage (``percent`` of users on the candidate, from ``since`` to ``until``)."""

    percent: float
    since: float
    until: float | None = None
    samples: int = 0  # shadow pairs
    shadow_errors: int = 0
    live_calls: int = 0  # the candidate's own attempts for users on it
    live_errors: int = 0
    similarities: list[float] = field(default_factory=list)
    bar: float = 0.95
    _latency: list[float] = field(default_factory=lambda: [0.0, 0.0], repr=False)  # candidate, baseline sums
    _cost: list[Decimal] = field(default_factory=lambda: [Decimal(0), Decimal(0)], repr=False)

    @property
    def attempts(self) -> int:
        return self.samples + self.live_calls

    @property
    def errors(self) -> int:
        return self.shadow_errors + self.live_errors

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.attempts if self.attempts else None

    @property
    def mean_similarity(self) -> float | None:
        return math.fsum(self.similarities) / len(self.similarities) if self.similarities else None

    @property
    def p5_similarity(self) -> float | None:
        return _percentile(sorted(self.similarities), 0.05)

    @property
    def share_at_bar(self) -> float | None:
        """The share of compared pairs whose similarity reaches the bar (``Gates.min_similarity``)."""
        if not self.similarities:
            return None
        return sum(1 for s in self.similarities if s >= self.bar) / len(self.similarities)

    @property
    def latency_ratio(self) -> float | None:
        cand, base = self._latency
        return cand / base if base > 0 else None

    @property
    def cost_ratio(self) -> float | None:
        """Candidate cost / baseline cost over the pairs where both are priced (``None``: none are)."""
        cand, base = self._cost
        return float(cand / base) if base > 0 else None

    def add(self, r: UsageRecord) -> None:
        if r.shadow:
            if r.error is not None:
                self.samples += 1
                self.shadow_errors += r.error not in NOT_CANDIDATE_FAULTS
                return
            if r.similarity is not None:  # a pair the similarity model could not compare is no sample
                self.samples += 1
                self.similarities.append(float(r.similarity))
            if r.baseline_latency_s:
                self._latency[0] += r.latency_s
                self._latency[1] += r.baseline_latency_s
            if r.cost is not None and r.baseline_cost is not None:
                self._cost[0] += r.cost
                self._cost[1] += r.baseline_cost
        elif r.outcome not in NOT_CANDIDATE_FAULTS:
            # guess: the candidate's live attempts count in its error rate (not only shadow pairs)
            self.live_calls += 1
            self.live_errors += not r.ok

    def to_dict(self) -> dict[str, Any]:
        def rnd(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "percent": self.percent, "since": self.since, "until": self.until, "samples": self.samples,
            "live_calls": self.live_calls, "errors": self.errors, "error_rate": rnd(self.error_rate),
            "mean_similarity": rnd(self.mean_similarity), "p5_similarity": rnd(self.p5_similarity),
            "share_at_bar": rnd(self.share_at_bar), "latency_ratio": rnd(self.latency_ratio),
            "cost_ratio": rnd(self.cost_ratio),
        }  # fmt: skip


def stage_stats(
    records: Iterable[UsageRecord], *, candidate: str, percent: float, since: float, until: float | None = None,
    baseline: str | None = None, bar: float = 0.95,
) -> StageStats:
    """The figures of the candidate's records with ``since <= ts < until`` (shadows compared against
    ``baseline`` only, when given)."""
    stats = StageStats(percent, since, until, bar=bar)
    for r in records:
        if r.model != candidate or r.ts < since or (until is not None and r.ts >= until):
            continue
        if r.shadow and baseline is not None and r.baseline not in (None, baseline):
            continue
        stats.add(r)
    return stats


def _last_record(x: Any) -> UsageRecord | None:
    records = getattr(x, "records", None) or []
    last = records[-1] if records else None
    return last if isinstance(last, UsageRecord) else None


def shadow_record(
    candidate: ChatResponse | BaseException, baseline: ChatResponse, *, candidate_model: str,
    similarity: float | None, ts: float | None = None, user: str | None = None,
) -> UsageRecord:
    """The ledger record of one shadow pair: the candidate's cost, latency and error (its own last
    attempt record when it has one), the similarity, and the baseline's route, latency and cost.

    ``similarity`` is ``None`` when the candidate failed. Add it with ``ledger.add(...)``; the
    candidate's own call should not also be recorded in that ledger (use a client whose tracker keeps
    another ledger), or its cost counts twice.
    """
    base = _last_record(baseline)
    own = _last_record(candidate)
    error = type(candidate).__name__ if isinstance(candidate, BaseException) else None
    if own is None:
        own = UsageRecord(ts=time.time() if ts is None else ts, model=candidate_model,
                          provider=getattr(candidate, "provider", None) or candidate_model.split("/")[0],
                          operation="chat")
    return replace(
        own, outcome="shadow", error=error, similarity=None if error else similarity, model=candidate_model,
        baseline=baseline.model, baseline_latency_s=base.latency_s if base else None,
        baseline_cost=base.cost if base else None, fallback=False, user=user if user is not None else own.user,
        ts=own.ts if ts is None else ts,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def judge(stats: StageStats, gates: Gates, *, last_stage: bool = False) -> Verdict:
    """Advance, hold or roll back, with the reason, from one stage's figures."""
    rate, mean = stats.error_rate, stats.mean_similarity
    if stats.attempts >= gates.rollback_min_samples and rate is not None and rate > gates.max_error_rate:
        return Verdict("rollback", f"error rate {_pct(rate)} ({stats.errors} of {stats.attempts}) is above the "
                                   f"{_pct(gates.max_error_rate)} gate")
    if len(stats.similarities) >= gates.rollback_min_samples and mean is not None and mean < gates.min_similarity:
        return Verdict("rollback", f"mean similarity {mean:.4f} over {len(stats.similarities)} pairs is below "
                                   f"the {gates.min_similarity} gate")
    if stats.samples < gates.min_samples:
        return Verdict("hold", f"{stats.samples} of {gates.min_samples} shadow samples")
    if mean is None:
        return Verdict("hold", "no shadow pair has a similarity yet (every candidate answer failed?)")
    if gates.max_latency_ratio is not None:
        lat = stats.latency_ratio
        if lat is None:
            return Verdict("hold", "latency ratio unknown: no pair carries the baseline's latency")
        if lat > gates.max_latency_ratio:
            return Verdict("hold", f"latency ratio {lat:.2f} is above the {gates.max_latency_ratio} gate")
    if gates.max_cost_ratio is not None:
        cost = stats.cost_ratio
        if cost is None:
            return Verdict("hold", "cost ratio unknown: no pair has both costs priced (add the models to the catalog)")
        if cost > gates.max_cost_ratio:
            return Verdict("hold", f"cost ratio {cost:.2f} is above the {gates.max_cost_ratio} gate")
    if last_stage:
        return Verdict("hold", f"at the last stage ({stats.percent:g} %): the rollout is complete")
    share = stats.share_at_bar or 0.0
    return Verdict("advance", f"gates pass: {stats.samples} samples, mean similarity {mean:.4f} "
                              f"({_pct(share)} of pairs >= {gates.min_similarity}), error rate {_pct(rate or 0.0)}")


__all__ = [
    "NOT_CANDIDATE_FAULTS",
    "Action",
    "Gates",
    "StageStats",
    "Verdict",
    "judge",
    "shadow_record",
    "stage_stats",
]
