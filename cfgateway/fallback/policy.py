"""Which errors fall back, which routes may follow a failure, and the errors a chain raises (sans-IO)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from cfgateway import errors
from cfgateway.costs.catalog import Catalog
from cfgateway.error_codes import code_info
from cfgateway.errors import AllRoutesFailed, GatewayStepFailed, RouteSkipped
from cfgateway.routing.routes import Route
from cfgateway.types import AttemptInfo

#: Errors that send a call to the next route by default.
DEFAULT_FALLBACK_ON: tuple[type[BaseException], ...] = (
    errors.TransportError,  # connection refused/reset/dropped, timeouts
    errors.RateLimitError,  # 429, 2003, 2041; CapacityError 3040; QuotaExceededError 3036/2021
    errors.ServerError,  # 5xx, 2005, 3007/3008
    errors.MalformedResponseError,  # 2xx we cannot read (HTML, cut JSON)
    errors.ContextLengthExceededError,  # only to a route with a larger window (see FallbackPolicy.eligible)
    errors.AuthenticationError,  # only to a route with other credentials
    errors.PermissionDeniedError,  # guess: model terms/plan (5016/5035) are per model, another route may pass
)
#: Errors that say something about a route's health (they count towards opening its circuit).
HEALTH_ERRORS: tuple[type[BaseException], ...] = (
    errors.TransportError,
    errors.RateLimitError,
    errors.ServerError,
    errors.MalformedResponseError,
    errors.StreamInterrupted,
    errors.AuthenticationError,
    errors.PermissionDeniedError,
)

_CRED_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")

FallbackOn = tuple[type[BaseException], ...] | type[BaseException] | Callable[[BaseException], bool]


def credentials(route: Route, *, gateway: bool = False) -> str:
    """A fingerprint (never the secret) of the credentials ``route`` sends.

    ``gateway=True``: the gateway token (what a 2009 rejects); otherwise the provider credentials —
    the Workers AI token, a provider key, or ``byok:{provider}`` when the gateway holds the key.
    """
    if gateway:
        if not route.via_gateway:
            return "no-gateway"
        raw = {k.lower(): v for k, v in route.headers.items()}.get("cf-aig-authorization", "")
        return "gw:" + hashlib.sha256(raw.encode()).hexdigest()[:16]
    keys = sorted((k.lower(), v) for k, v in route.step_headers.items() if k.lower() in _CRED_HEADERS)
    if not keys:
        return f"byok:{route.provider}"
    return "key:" + hashlib.sha256(repr(keys).encode()).hexdigest()[:16]


class FallbackPolicy:
    """When to fall back and to which routes. ``fallback_on``: exception classes or a predicate.

    - :meth:`should_fall_back`: does this error send the call on to the next route?
    - :meth:`eligible`: may ``candidate`` follow ``failed`` after this error? Context-length errors
      skip routes whose catalog window is not larger; authentication errors skip routes that send
      the same credentials (the gateway token for code 2009, the provider credentials otherwise).
    - :meth:`counts_against`: does the error count towards opening the route's circuit?

    Subclass and override any of them for other rules.
    """

    def __init__(self, fallback_on: FallbackOn | None = None) -> None:
        self._test: Callable[[BaseException], bool] = default_fallback
        if fallback_on is None:
            return
        if isinstance(fallback_on, type):
            fallback_on = (fallback_on,)
        if isinstance(fallback_on, tuple):
            classes = fallback_on
            if not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
                raise errors.ConfigError("fallback_on must be exception classes or a callable(exc) -> bool")
            self._test = lambda exc: isinstance(exc, classes)
        elif callable(fallback_on):
            self._test = fallback_on
        else:
            raise errors.ConfigError("fallback_on must be exception classes or a callable(exc) -> bool")

    def should_fall_back(self, exc: BaseException) -> bool:
        return bool(self._test(exc))

    def counts_against(self, exc: BaseException) -> bool:
        return isinstance(exc, HEALTH_ERRORS)

    def eligible(
        self, exc: BaseException, failed: Route, candidate: Route, catalog: Catalog
    ) -> RouteSkipped | None:
        """``None`` when ``candidate`` may be tried after ``failed`` raised ``exc``, else why not."""
        if isinstance(exc, errors.ContextLengthExceededError):
            have = _window(catalog, failed.model)
            window = _window(catalog, candidate.model)
            # guess: an unknown window on either side is tried (the catalog cannot rule it out)
            if have is not None and window is not None and window <= have:
                return RouteSkipped(
                    f"{candidate.model}: context window {window} is not larger than {failed.model}'s {have}",
                    model=candidate.model, reason="context_window",
                )
        if isinstance(exc, errors.AuthenticationError):
            info = code_info(getattr(exc, "code", None))
            gw = info is not None and info.credential == "gateway_token"  # every route on that token fails
            if credentials(candidate, gateway=gw) == credentials(failed, gateway=gw):
                what = "gateway token" if gw else "credentials"
                return RouteSkipped(
                    f"{candidate.model}: sends the same {what} that {failed.model} was refused with",
                    model=candidate.model, reason="same_credentials",
                )
        return None


def default_fallback(exc: BaseException) -> bool:
    """The default: a Cloudflare code's ``fallback`` column (:data:`cfgateway.error_codes.CODES`) when the error
    has a known code, else :data:`DEFAULT_FALLBACK_ON`."""
    if isinstance(exc, errors.APIError):
        info = code_info(exc.code)
        if info is not None and type(exc) is info.cls:  # a context-length 5006 is classed by its message
            return info.fallback
    return isinstance(exc, DEFAULT_FALLBACK_ON)


def _window(catalog: Catalog, model: str) -> int | None:
    info = catalog.get(model)
    return info.context_window if info else None


def as_policy(fallback_on: FallbackOn | FallbackPolicy | None) -> FallbackPolicy:
    return fallback_on if isinstance(fallback_on, FallbackPolicy) else FallbackPolicy(fallback_on)


def model_of(exc: BaseException) -> str:
    return str(getattr(exc, "model", None) or "?")


def all_failed(
    excs: Sequence[Exception], attempts: list[AttemptInfo], records: list[Any], note: str = ""
) -> AllRoutesFailed:
    """The group for a chain whose routes all failed; the message lists ``route: error`` for each."""
    lines = "; ".join(f"{model_of(e)}: {_short(e)}" for e in excs)
    tail = f" ({note})" if note else ""
    n = sum(1 for e in excs if not isinstance(e, RouteSkipped))
    err = AllRoutesFailed(f"every route failed after {n} attempt(s){tail}: {lines}", list(excs))
    err.attempts, err.records = attempts, records
    return err


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}"


def annotate(exc: BaseException, attempts: list[AttemptInfo], records: list[Any]) -> BaseException:
    """Attach the call's attempts and records to an error that ends it."""
    exc.attempts = attempts  # type: ignore[attr-defined]
    exc.records = records  # type: ignore[attr-defined]
    return exc


__all__ = [
    "DEFAULT_FALLBACK_ON",
    "HEALTH_ERRORS",
    "AllRoutesFailed",
    "FallbackOn",
    "FallbackPolicy",
    "GatewayStepFailed",
    "all_failed",
    "annotate",
    "as_policy",
    "credentials",
]
