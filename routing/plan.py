"""Fallback plans: the ordered, flat list of routes a worker may try for one request.

Order: the requested route (or its successor after sunset) → the same model's later
channels in the chain rc → latest → deprecated, by priority (not for a pinned version) →
the client's explicit fallbacks, in their order → the model's cross-provider equivalents
(their `latest`), only when the policy allows. Every candidate says why it is there; every
candidate left out says why (`SKIP_REASONS`). Reasons are closed sets: safe metric labels.

A request's features are `Requirement`s (built by `jobs.features` from the request): a
parameter, the catalogue capability a version must list to serve it (`routing.capabilities`)
and, for what only some providers can do whatever the catalogue says, the providers that
can. A candidate that fails one is skipped as `unsupported`; a plan left with no candidate
only for that reason (no open circuit, no window too small) is the client's mistake:
`UnsupportedParameter` (400) naming the parameter and the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from routing.breaker import CircuitsSeen
from routing.errors import ContextTooLong, ModelSunset, NoRouteAvailable, UnsupportedParameter
from routing.model_id import parse_model_id
from routing.service import Route, build_route, resolve_in
from routing.snapshot import Catalogue, ModelEntry, load_catalogue
from storage.models import utcnow

CHAIN = ("rc", "latest", "deprecated")
CANDIDATE_REASONS = (
    "requested",
    "sunset_redirect",
    "version_fallback",
    "explicit",
    "cross_provider",
)
SKIP_REASONS = (
    "duplicate",
    "past_sunset",
    "cross_provider_forbidden",
    "context_too_small",
    "circuit_open",
    "unsupported",
)
# Skips that say the request itself cannot be served here (the others may pass with time).
LASTING_SKIPS = {"duplicate", "past_sunset", "cross_provider_forbidden", "unsupported"}


@dataclass(frozen=True)
class Requirement:
    """What serving one request parameter takes: a capability the version lists (None: no
    catalogue condition) and the providers able to serve it (None: any)."""

    param: str
    capability: str | None = None
    providers: tuple[str, ...] | None = None

    def unmet(self, route: Route) -> str | None:
        """Why `route` cannot serve it, or None."""
        if self.capability is not None and self.capability not in route.capabilities:
            return f"{route.model_id} lacks {self.capability} (for `{self.param}`)"
        if self.providers is not None and route.provider not in self.providers:
            return f"{route.provider} cannot serve `{self.param}` as requested"
        return None


class OpenCircuits(Protocol):
    """`routing.breaker.CircuitBreaker`: one read-only look at the candidates' circuits."""

    def look(self, keys: Iterable[str]) -> CircuitsSeen: ...


@dataclass(frozen=True)
class FallbackPolicy:
    """What a request (and its key) allows: other providers, and its own fallback ids."""

    cross_provider: bool = False
    explicit: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    route: Route
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "detail": self.detail, "route": self.route.as_dict()}


@dataclass(frozen=True)
class Skipped(Candidate):
    pass


@dataclass(frozen=True)
class FallbackPlan:
    requested: str
    route: Route
    candidates: tuple[Candidate, ...]
    skipped: tuple[Skipped, ...] = ()
    policy: FallbackPolicy = field(default_factory=FallbackPolicy)
    policy_source: str = "request"  # "key" when the key's policy overrode the request
    requirements: tuple[Requirement, ...] = ()
    # The circuits this plan's read saw closed: a call there right after it needs no second
    # look (`jobs.submit.Opener`); half-open or unknown ones are not in it.
    closed_circuits: frozenset[str] = frozenset()

    @property
    def primary(self) -> Route:
        """The first route to try; NoRouteAvailable when every candidate was skipped."""
        if not self.candidates:
            reasons = sorted({s.reason for s in self.skipped} - {"duplicate"})
            skipped = [s.as_dict() for s in self.skipped]
            if "unsupported" in reasons and set(reasons) <= LASTING_SKIPS:
                raise self.unsupported(skipped)
            if reasons == ["context_too_small"]:
                raise ContextTooLong(
                    f"The request is too large for every version that could serve "
                    f"{self.requested!r}: shorten the messages or lower max_tokens.",
                    skipped=skipped,
                )
            raise NoRouteAvailable(
                f"No route can serve {self.requested!r} now ({', '.join(reasons)}).",
                skipped=skipped,
            )
        return self.candidates[0].route

    def unsupported(self, skipped: list[dict[str, Any]]) -> UnsupportedParameter:
        unmet = [r for r in self.requirements if r.unmet(self.route)] or list(self.requirements)
        param = unmet[0].param if unmet else "model"
        return UnsupportedParameter(
            f"`{param}` is not supported by {self.requested!r} "
            f"({self.route.model_id}, {self.route.provider}) nor by any of its fallbacks.",
            param=param,
            model=self.requested,
            skipped=skipped,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "route": self.route.as_dict(),
            "policy": {
                "cross_provider": self.policy.cross_provider,
                "explicit": list(self.policy.explicit),
                "source": self.policy_source,
            },
            "candidates": [c.as_dict() for c in self.candidates],
            "skipped": [s.as_dict() for s in self.skipped],
        }


def plan(
    session: Session, model_id: str, policy: FallbackPolicy | None = None, **kwargs: Any
) -> FallbackPlan:
    """`plan_in` against the database (uncached); see `routing.cache.Resolver.plan`."""
    return plan_in(load_catalogue(session), model_id, policy, **kwargs)


def plan_in(
    catalogue: Catalogue,
    model_id: str,
    policy: FallbackPolicy | None = None,
    *,
    estimated_tokens: int | None = None,
    breaker: OpenCircuits | None = None,
    key_id: str | None = None,
    now: datetime | None = None,
    requirements: tuple[Requirement, ...] = (),
) -> FallbackPlan:
    """The plan for `model_id`; a key policy (see `effective_policy`) overrides the request's."""
    policy, source = effective_policy(catalogue, key_id, policy or FallbackPolicy())
    now = now or utcnow()
    route = resolve_in(catalogue, model_id, now)
    proposed = _proposals(catalogue, model_id, route, policy, now)
    seen = breaker.look({c.route.breaker_key for c in proposed}) if breaker else CircuitsSeen()
    limits = _Limits(estimated_tokens, set(seen.open), requirements)
    kept, skipped = _filter(proposed, route, policy, limits, now)
    return FallbackPlan(
        model_id, route, tuple(kept), tuple(skipped), policy, source, requirements, seen.closed
    )


@dataclass(frozen=True)
class _Limits:
    """What a candidate is checked against besides the policy."""

    estimated_tokens: int | None
    open_keys: set[str]
    requirements: tuple[Requirement, ...]

    def unmet(self, route: Route) -> str | None:
        return next(filter(None, (r.unmet(route) for r in self.requirements)), None)


def effective_policy(
    catalogue: Catalogue, key_id: str | None, requested: FallbackPolicy
) -> tuple[FallbackPolicy, str]:
    """A key with a routing policy decides cross-provider fallback; otherwise the request."""
    allowed = catalogue.key_policies.get(key_id) if key_id else None
    if allowed is None:
        return requested, "request"
    return replace(requested, cross_provider=allowed), "key"


def _proposals(
    catalogue: Catalogue, model_id: str, route: Route, policy: FallbackPolicy, now: datetime
) -> list[Candidate]:
    first = _first(model_id, route)
    proposed = [first]
    model = catalogue.find(route.model)
    if first.reason == "requested" and not parse_model_id(model_id).pinned:
        proposed += _version_fallbacks(model, route)
    proposed += _explicit(catalogue, policy.explicit, now)
    if policy.cross_provider:
        proposed += _equivalents(catalogue, model, now)
    return proposed


def _first(model_id: str, route: Route) -> Candidate:
    if route.redirected_from:
        detail = f"{route.redirected_from} is past its sunset; its successor serves it"
        return Candidate(route, "sunset_redirect", detail)
    return Candidate(route, "requested", f"{model_id} resolves to {route.model_id}")


def _version_fallbacks(model: ModelEntry, route: Route) -> list[Candidate]:
    rank = _rank(route.channel)
    later = [v for v in model.versions if _rank(v.channel) > rank and v.status != "retired"]
    later.sort(key=lambda v: (v.priority, _rank(v.channel)))
    return [
        Candidate(
            build_route(model, v, parse_model_id(f"{model.name}:{v.channel}")),
            "version_fallback",
            f"{route.channel} → {v.channel} (priority {v.priority})",
        )
        for v in later
    ]


def _rank(channel: str) -> int:
    return CHAIN.index(channel) if channel in CHAIN else len(CHAIN)


def _explicit(catalogue: Catalogue, ids: tuple[str, ...], now: datetime) -> list[Candidate]:
    found = []
    for model_id in ids:
        try:
            route = resolve_in(catalogue, model_id, now)
        except ModelSunset as exc:
            found.append(_sunset_placeholder(catalogue, model_id, exc))
            continue
        found.append(Candidate(route, "explicit", f"client fallback {model_id}"))
    return found


def _equivalents(catalogue: Catalogue, model: ModelEntry, now: datetime) -> list[Candidate]:
    found = []
    for name in model.equivalents:
        if name.lower() not in catalogue.models:
            continue
        try:
            route = resolve_in(catalogue, f"{name}:latest", now)
        except ModelSunset:
            continue
        detail = f"{model.name} ({model.provider}) ≈ {route.model} ({route.provider})"
        found.append(Candidate(route, "cross_provider", detail))
    return found


def _sunset_placeholder(catalogue: Catalogue, model_id: str, exc: ModelSunset) -> Candidate:
    ref = parse_model_id(model_id)
    model = catalogue.find(ref.model)
    version = model.channel(ref.channel or "") or model.versions[0]
    return Candidate(build_route(model, version, ref), "past_sunset", exc.message)


def _filter(
    proposed: list[Candidate],
    requested: Route,
    policy: FallbackPolicy,
    limits: _Limits,
    now: datetime,
) -> tuple[list[Candidate], list[Skipped]]:
    kept: list[Candidate] = []
    skipped: list[Skipped] = []
    seen: set[tuple[str, str]] = set()
    for candidate in proposed:
        why = _skip_reason(candidate, requested, policy, limits, seen, now)
        seen.add((candidate.route.provider, candidate.route.upstream_id))
        if why is None:
            kept.append(candidate)
        else:
            skipped.append(Skipped(candidate.route, why[0], why[1]))
    return kept, skipped


def _skip_reason(
    candidate: Candidate,
    requested: Route,
    policy: FallbackPolicy,
    limits: _Limits,
    seen: set[tuple[str, str]],
    now: datetime,
) -> tuple[str, str] | None:
    route = candidate.route
    if (route.provider, route.upstream_id) in seen:
        return "duplicate", f"{route.model_id} calls {route.upstream_id}, already planned"
    if candidate.reason == "past_sunset" or (route.sunset_at and route.sunset_at <= now):
        return "past_sunset", f"{route.model_id} is past its sunset"
    if route.provider != requested.provider and not policy.cross_provider:
        return "cross_provider_forbidden", f"{route.provider} is another provider"
    unmet = limits.unmet(route)
    if unmet is not None:
        return "unsupported", unmet
    window, estimated_tokens = route.context_window, limits.estimated_tokens
    if estimated_tokens is not None and window is not None and estimated_tokens > window:
        return "context_too_small", f"~{estimated_tokens} tokens > {window} context window"
    if route.breaker_key in limits.open_keys:
        return "circuit_open", f"circuit {route.breaker_key} is open"
    return None
