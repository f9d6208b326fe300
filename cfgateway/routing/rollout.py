"""Per-call route choice: gradual rollouts by consistent hashing of a user id, and tier rules.

>>> policy = RoutingPolicy(
...     tiers=[TierRule(match={"tier": "premium"}, model="openai/gpt-4o")],
...     rollout=Rollout("@cf/google/gemma-4-26b-a4b-it", percent=10),
... )
>>> policy.choose(CallContext(user="u-42", metadata={"tier": "premium"}), "@cf/meta/llama-3.1-8b-instruct").model
'openai/gpt-4o'

The bucket of a user is ``sha256(salt + ":" + user_id)`` reduced to 0..9999, so it is the same in
every process and on every machine, and raising the percentage only ever adds users to the new
route (10% → 50% keeps the first 10%). A rollout's salt defaults to its new route, so two rollouts
pick independent sets of users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cfgateway.costs.alerts import AlertEvent
from cfgateway.errors import ConfigError
from cfgateway.routing.buckets import BUCKETS, bucket
from cfgateway.routing.controller import StagedRollout
from cfgateway.routing.gates import Gates, Verdict
from cfgateway.routing.stages import RolloutReport, RolloutState, check_stages
from cfgateway.types import CallContext

if TYPE_CHECKING:
    from cfgateway.routing.shadow import Shadow

class Rollout:
    """Send a share of users to ``new_route`` (the candidate), the rest to ``old_route`` (default: the
    chain's primary).

    Fixed: ``Rollout("@cf/…", 10)`` — 10 % of users, set in code. Staged:
    ``Rollout("@cf/…", stages=[10, 50, 100], gates=Gates(...), ledger=open_ledger(url))`` — the
    current stage lives in the ledger's store, so every process and host serves the same split, and it
    moves by :meth:`advance` / :meth:`rollback`, ``cfgateway rollout advance|rollback``, or by itself
    with ``auto=True`` when the gates pass (or fail; see :mod:`cfgateway.routing.gates`). Each move is
    kept in the rollout's history and announced to ``alerts`` (default: the log, and the recent alerts in
    the ledger). A process re-reads the stage every ``refresh`` seconds in the background.

    Calls without a user id stay on the old route (guess: a rollout should never surprise
    anonymous traffic; pass a session id as ``user`` to include it).
    """

    __slots__ = ("new_route", "old_route", "salt", "_percent", "staged")

    def __init__(
        self,
        new_route: str,
        percent: float | None = None,
        old_route: str | None = None,
        salt: str = "",
        *,
        stages: Sequence[float] | None = None,
        gates: Gates | None = None,
        ledger: Any = None,
        name: str | None = None,
        auto: bool = False,
        refresh: float = 5.0,
        check_every: float = 30.0,
        alerts: Callable[[AlertEvent], Any] | None = None,
    ) -> None:
        self.new_route, self.old_route, self.salt = new_route, old_route, salt
        self.staged: StagedRollout | None = None
        if stages is None:
            if percent is None:
                raise ConfigError("Rollout needs a percent (Rollout(model, 10)) or stages (stages=[10, 50, 100])")
            if not 0 <= percent <= 100:
                raise ConfigError(f"rollout percent must be between 0 and 100, got {percent}")
            self._percent = float(percent)
            return
        if percent is not None:
            raise ConfigError("give a Rollout either percent= (fixed) or stages= (stored, moved by gates), not both")
        from cfgateway.costs.ledger.memory import MemoryLedger  # a store for this process only

        self._percent = 0.0
        self.staged = StagedRollout(
            name=name or new_route, candidate=new_route, baseline=old_route, stages=check_stages(stages),
            gates=gates or Gates(), ledger=ledger if ledger is not None else MemoryLedger(), auto=auto,
            refresh=refresh, check_every=check_every, alerts=alerts,
        )

    def __repr__(self) -> str:
        if self.staged is None:
            return f"Rollout({self.new_route!r}, {self._percent:g}, old_route={self.old_route!r})"
        return f"Rollout({self.new_route!r}, stages={list(self.staged._initial.stages)}, ledger={self.staged.ledger!r})"

    @property
    def candidate(self) -> str:
        return self.new_route

    @property
    def percent(self) -> float:
        """The share of users on the new route now (a staged rollout's stage, from the store)."""
        return self._percent if self.staged is None else self.staged.percent()

    def includes(self, user_id: str | None) -> bool:
        percent = self.percent
        if user_id is None or percent <= 0:
            return False
        return bucket(user_id, self.salt or self.new_route) < round(percent * BUCKETS / 100)

    def choose(self, user_id: str | None, default: str) -> str:
        return self.new_route if self.includes(user_id) else (self.old_route or default)

    # -- staged rollouts ---------------------------------------------------------------------
    def _need_staged(self) -> StagedRollout:
        if self.staged is None:
            raise ConfigError("this Rollout has a fixed percent; pass stages=[...] (and ledger=) to move it")
        return self.staged

    def advance(self, reason: str = "") -> RolloutState:
        """Move to the next stage now (from a rollback: to the first stage)."""
        return self._need_staged().advance(reason)

    def rollback(self, reason: str = "") -> RolloutState:
        """Send every user back to the old route; the rollout holds until :meth:`advance`."""
        return self._need_staged().rollback(reason)

    def check(self, apply: bool | None = None) -> Verdict:
        """The gates' verdict on the current stage (applied when ``apply``, default ``auto``)."""
        return self._need_staged().check(apply)

    def status(self) -> RolloutState:
        return self._need_staged().state()

    def report(self) -> RolloutReport:
        """Per stage: samples, mean and p5 similarity, share of pairs >= the bar, error rate, latency and
        cost ratios; the verdict with its reason (``print(r.report().render())``)."""
        return self._need_staged().report()


Matcher = Any  # a value (equality), a set/list/tuple/frozenset (membership) or a callable(value) -> bool


@dataclass(frozen=True, slots=True)
class TierRule:
    """Calls whose metadata matches every key of ``match`` go to ``model``.

    The key ``"user"`` matches the call's user id. Values match by equality, by membership when the
    rule value is a set/list/tuple, or by calling it when it is callable. ``fallbacks=None`` keeps
    the chain's other routes behind ``model``; a list replaces them for these calls.
    """

    match: Mapping[str, Matcher]
    model: str
    fallbacks: Sequence[str] | None = None

    def matches(self, ctx: CallContext) -> bool:
        for key, want in self.match.items():
            have = ctx.user if key == "user" and key not in ctx.metadata else ctx.metadata.get(key)
            if callable(want):
                if not want(have):
                    return False
            elif isinstance(want, (set, frozenset, list, tuple)):
                if have not in want:
                    return False
            elif have != want:
                return False
        return True


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """The primary route for one call, the routes behind it (``None`` = the chain's own), and why."""

    model: str
    fallbacks: tuple[str, ...] | None = None
    reason: str = "default"


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """Tier rules first (the first match wins), then rollouts (the first that includes the user).

    ``shadow``: a :class:`~cfgateway.routing.shadow.Shadow` — a sampled share of the calls the
    baseline answers is also sent to its candidate in the background and compared (a chain does it).
    """

    tiers: Sequence[TierRule] = ()
    rollouts: Sequence[Rollout] = ()
    custom: Callable[[CallContext], str | None] | None = field(default=None, repr=False)
    shadow: Shadow | None = None

    @classmethod
    def build(
        cls,
        rollout: Rollout | Sequence[Rollout] | None = None,
        tiers: Sequence[TierRule] | None = None,
        route: Callable[[CallContext], str | None] | None = None,
        shadow: Shadow | None = None,
    ) -> RoutingPolicy | None:
        """A policy from ``build_client``'s keywords, or ``None`` when none was given."""
        rollouts: tuple[Rollout, ...] = ()
        if isinstance(rollout, Rollout):
            rollouts = (rollout,)
        elif rollout is not None:
            rollouts = tuple(rollout)
        if not rollouts and not tiers and route is None and shadow is None:
            return None
        return cls(tuple(tiers or ()), rollouts, route, shadow)

    def models(self) -> list[str]:
        """Every model string the policy can choose or shadow to (to resolve and check them up front)."""
        out: list[str] = []
        for t in self.tiers:
            out.extend([t.model, *(t.fallbacks or ())])
        for r in self.rollouts:
            out.append(r.new_route)
            if r.old_route:
                out.append(r.old_route)
        if self.shadow is not None:
            out.append(self.shadow.candidate)
        return list(dict.fromkeys(out))

    def choose(self, ctx: CallContext, default: str) -> RouteChoice:
        if self.custom is not None:
            picked = self.custom(ctx)
            if picked:
                return RouteChoice(picked, None, "custom")
        for i, t in enumerate(self.tiers):
            if t.matches(ctx):
                fb = tuple(t.fallbacks) if t.fallbacks is not None else None
                return RouteChoice(t.model, fb, f"tier:{i}")
        for r in self.rollouts:
            if r.includes(ctx.user):
                return RouteChoice(r.new_route, None, f"rollout:{r.new_route}:{r.percent:g}%")
        for r in self.rollouts:
            if r.old_route:
                return RouteChoice(r.old_route, None, "rollout:old")
        return RouteChoice(default, None, "default")


_ROLLOUT_KEYS = {"candidate", "baseline", "stages", "auto", "name", "refresh", "check_every", "gates"}


def rollout_from_settings(
    settings: Any, ledger: Any, *, alerts: Callable[[AlertEvent], Any] | None = None
) -> Rollout | None:
    """The staged rollout a profile describes, or ``None`` when it has no ``rollout`` table::

        [profiles.prod.rollout]
        candidate = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
        baseline = "openai/gpt-4o-mini"      # optional: the chain's primary otherwise
        stages = [10, 50, 100]
        auto = true
        min_similarity = 0.95                 # any Gates field, here or under [....rollout.gates]
    """
    entries = getattr(settings, "rollout", None) or ()
    staged = [e for e in ([entries] if isinstance(entries, Mapping) else entries)
              if isinstance(e, Mapping) and "candidate" in e]  # the others are fixed shares {model, percent}
    if not staged:
        return None
    if len(staged) > 1:
        raise ConfigError("the rollout setting may hold one staged rollout (a table with candidate, stages, ...)")
    conf = dict(staged[0])
    gate_names = set(Gates.__dataclass_fields__)
    gate_values = dict(conf.pop("gates", None) or {})
    gate_values.update({k: conf.pop(k) for k in list(conf) if k in gate_names})
    unknown = sorted(set(conf) - _ROLLOUT_KEYS)
    if unknown or not isinstance(conf.get("candidate"), str):
        known = ", ".join(sorted(_ROLLOUT_KEYS | gate_names))
        raise ConfigError(f"rollout setting: a candidate model string is required; unknown key(s) "
                          f"{', '.join(unknown) or 'none'}; known: {known}")
    return Rollout(conf["candidate"], old_route=conf.get("baseline"), stages=conf.get("stages", (10, 50, 100)),
                   gates=Gates.from_dict(gate_values), ledger=ledger, name=conf.get("name"),
                   auto=bool(conf.get("auto", False)), refresh=float(conf.get("refresh", 5.0)),
                   check_every=float(conf.get("check_every", 30.0)), alerts=alerts)


def order_routes(choice: RouteChoice, chain: Sequence[str]) -> list[str]:
    """The routes of one call: the chosen one first, then its fallbacks (or the chain's other routes)."""
    rest = choice.fallbacks if choice.fallbacks is not None else chain
    return list(dict.fromkeys([choice.model, *rest]))


__all__ = [
    "BUCKETS",
    "Gates",
    "Rollout",
    "RouteChoice",
    "RoutingPolicy",
    "TierRule",
    "bucket",
    "order_routes",
    "rollout_from_settings",
]
