"""Admission: a key's allowed models and every limit that applies, before a job is written.

`LimitAdmission.admit` is the `jobs.submit.Admission` hook. It gathers the limits of the
request's scopes — the key's own limits (whole key, or one model or version) and the
gateway-wide limits of the requested model and version — and charges all of them in one
atomic step (`storage.limits`). A refusal raises `LimitExceeded` and writes nothing.

Decisions:
- A job is charged to its **requested** model's scopes only (`plan.route`: the requested
  model and channel after a sunset redirect). A fallback to another version or model is
  not charged again and not checked against that model's limits: the client asked for, and
  is billed against, what it requested; a provider's own quota is the workers' pacing.
- Tokens reserved = the prompt's count (by the provider's tokenizer, `jobs.tokens`, when the
  submitter has one; else the estimate `jobs.submit.estimate_tokens`) plus `max_tokens`,
  or `default_max_tokens` when the request sets none. They settle to the job's real
  `total_tokens` when it ends (`settle_job`), or are refunded (0) when it fails or is
  cancelled; requests stay counted.
- A concurrency slot is held from admission until the job ends. The sweeper settles jobs
  that ended without being settled (a worker that died after its commit) and the slot's
  lease (`slot_lease_seconds`) frees a slot whose job never ends.
- Allowed models apply to the requested route, the client's explicit fallbacks and
  cross-provider candidates; version fallbacks of an allowed model are allowed.
- Reads (docs/limits.md, "When a change applies"): the key's policy is the one its
  authentication read in the same request (`known`, given by the API), so a change of a
  key's limits or allowed models applies to its next request; without one (a worker, the
  batch feeder) it is read from the database. The gateway-wide limits are kept in process
  for at most `GATEWAY_TTL_SECONDS` (1 s); the process that changes them forgets its copy
  at once (`forget_gateway`), every other one within that second.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.errors import JobError
from jobs.spec import JobRequest, JobSpec
from jobs.status import TERMINAL
from jobs.submit import estimate_tokens
from monitoring.metrics import LIMIT_REJECTIONS
from routing.plan import FallbackPlan
from storage import keys
from storage.limits import Check, Figure, Limit, Limiter, Refused, Reservation, build_checks
from storage.models import ApiKey, GatewayLimit, Job, utcnow

log = logging.getLogger(__name__)
# A reservation this old and still pending is looked at by the sweeper.
SETTLE_GRACE_SECONDS = 60.0
# How long a process keeps the gateway-wide limits before reading them again.
GATEWAY_TTL_SECONDS = 1.0


class ModelNotAllowed(JobError):
    code = "model_not_allowed"


class LimitExceeded(JobError):
    """429: `code` is the reason (`rate_limited`, `quota_exceeded`, `concurrency_limited`)."""

    def __init__(self, refused: Refused) -> None:
        check = refused.check
        self.code = refused.reason
        self.retry_after = max(1, math.ceil(refused.retry_after_ms / 1000))
        super().__init__(
            f"The {check.kind} limit of {check.limit} of scope {check.scope!r} is reached; "
            f"retry after {self.retry_after} s.",
            scope=check.scope,
            limit=check.limit,
            kind=check.kind,
        )


@dataclass(frozen=True)
class KeyPolicy:
    allowed_models: tuple[str, ...] | None
    limits: tuple[Limit, ...]


GatewayRows = list[tuple[str, Limit]]


class GatewayLimits:
    """The `gateway_limits` table, read at most once per `ttl` seconds (thread-safe)."""

    def __init__(
        self, ttl: float = GATEWAY_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.clock = ttl, clock
        self._kept: tuple[float, GatewayRows] | None = None
        self._lock = threading.Lock()

    def get(self, sessions: sessionmaker[Session]) -> GatewayRows:
        kept = self._kept
        if kept is not None and self.clock() - kept[0] < self.ttl:
            return kept[1]
        with self._lock:
            started = self.clock()  # a change committed after this is read next time
            with sessions() as session:
                rows = session.execute(_GATEWAY_LIMITS).all()
            gateway = [(m, Limit(model=m, **lim)) for m, lim in rows]
            self._kept = (started, gateway)
            return gateway

    def forget(self) -> None:
        self._kept = None


@dataclass(frozen=True)
class LimitAdmission:
    sessions: sessionmaker[Session]
    limiter: Limiter
    default_max_tokens: int
    # The key's policy as the request's authentication read it (None: read it here).
    known: Callable[[str], KeyPolicy | None] | None = None
    gateway_limits: GatewayLimits = field(default_factory=GatewayLimits, compare=False)

    def admit(
        self,
        owner: str,
        request: JobRequest,
        plan: FallbackPlan,
        job_id: str,
        *,
        estimated_tokens: int | None = None,
    ) -> Reservation | None:
        """`estimated_tokens`: the prompt plus `max_tokens` as counted by the submitter."""
        key, gateway = self.load(owner)
        check_allowed(key.allowed_models, plan)
        checks = checks_for(owner, key.limits, gateway, plan.route.model, plan.route.channel)
        if not checks:
            return None
        tokens = reserved_tokens(request, self.default_max_tokens, estimated_tokens)
        out = self.limiter.reserve(job_id, tokens, checks)
        if isinstance(out, Refused):
            LIMIT_REJECTIONS.labels(out.check.scope_kind, out.check.kind, out.reason).inc()
            raise LimitExceeded(out)
        return Reservation(tokens=tokens, checks=tuple(checks))

    def release(self, job_id: str, reservation: Reservation | None) -> None:
        if reservation is not None:
            self.limiter.release(job_id, reservation)

    def require_allowed(self, owner: str, model: str, channel: str) -> None:
        """`ModelNotAllowed` unless the key may use model:channel (for calls that are not
        admitted as jobs, e.g. token counts)."""
        allowed = self.key_policy(owner).allowed_models
        if allowed is not None and not any(
            Limit(model=a).applies_to(model, channel) for a in allowed
        ):
            raise ModelNotAllowed(f"This key may not use {model}:{channel}.", allowed=list(allowed))

    def load(self, owner: str) -> tuple[KeyPolicy, GatewayRows]:
        return self.key_policy(owner), self.gateway_limits.get(self.sessions)

    def key_policy(self, owner: str) -> KeyPolicy:
        policy = self.known(owner) if self.known is not None else None
        if policy is not None:
            return policy
        with self.sessions() as session:  # a Core read: no ORM identity map for one row
            return key_policy(session.execute(_KEY_POLICY, {"owner": owner}).one_or_none())

    def forget_gateway(self) -> None:
        """Read the gateway-wide limits again at the next admission (after a change)."""
        self.gateway_limits.forget()

    def headers(self, owner: str, limits: tuple[Limit, ...]) -> dict[str, str]:
        """The `x-ratelimit-*` headers of the key-wide per-minute limits (none: no headers)."""
        wide = [lim for lim in limits if lim.model is None]
        checks = [c for c in checks_for(owner, tuple(wide), [], "", "") if c.kind in PER_MINUTE]
        return rate_limit_headers(self.limiter.peek(checks)) if checks else {}


PER_MINUTE = ("rpm", "tpm")
_KEY_POLICY = select(ApiKey.allowed_models, ApiKey.limits).where(ApiKey.id == bindparam("owner"))
_GATEWAY_LIMITS = select(GatewayLimit.model, GatewayLimit.limit)


def key_policy(row: Any) -> KeyPolicy:
    """The key's policy from its `api_keys` row (or its allowed_models and limits); None: the
    master key."""
    if row is None:  # the master key: no limits of its own
        return KeyPolicy(None, ())
    allowed = tuple(row.allowed_models) if row.allowed_models is not None else None
    return KeyPolicy(allowed, tuple(Limit.model_validate(x) for x in row.limits or ()))


def reserved_tokens(
    request: JobRequest, default_max_tokens: int, estimated: int | None = None
) -> int:
    prompt = estimate_tokens(request) if estimated is None else estimated
    return prompt + (0 if request.max_tokens else default_max_tokens)


def checks_for(
    owner: str,
    limits: tuple[Limit, ...],
    gateway: list[tuple[str, Limit]],
    model: str,
    channel: str,
) -> list[Check]:
    now = utcnow()
    found: list[Check] = []
    for lim in limits:
        if lim.applies_to(model, channel):
            suffix = f":{lim.model.lower()}" if lim.model else ""
            found += build_checks(f"key:{owner}{suffix}", f"key{suffix}", lim, now)
    for name, lim in gateway:
        if lim.applies_to(model, channel):
            found += build_checks(f"gw:{name.lower()}", f"gateway:{name.lower()}", lim, now)
    return found


def check_allowed(allowed: tuple[str, ...] | None, plan: FallbackPlan) -> None:
    if allowed is None:
        return
    scopes = [Limit(model=a) for a in allowed]
    names = {a.split(":", 1)[0].lower() for a in allowed}
    for candidate in (plan.route, *(c.route for c in plan.candidates)):
        version_fallback = candidate.model.lower() in names
        if candidate is not plan.route and version_fallback:
            continue
        if not any(s.applies_to(candidate.model, candidate.channel) for s in scopes):
            raise ModelNotAllowed(
                f"This key may not use {candidate.model}:{candidate.channel}.",
                allowed=list(allowed),
            )


def rate_limit_headers(figures: list[Figure]) -> dict[str, str]:
    """OpenAI's trio for requests and for tokens, from the tightest check of each."""
    out: dict[str, str] = {}
    for what, kinds in (("requests", ("rpm",)), ("tokens", ("tpm", "tpd", "tpmo"))):
        mine = [f for f in figures if f.check.kind in kinds]
        if not mine:
            continue
        tight = min(mine, key=lambda f: f.remaining)
        out[f"x-ratelimit-limit-{what}"] = str(tight.check.limit)
        out[f"x-ratelimit-remaining-{what}"] = str(tight.remaining)
        out[f"x-ratelimit-reset-{what}"] = f"{max(tight.reset_ms, 0) / 1000:g}s"
    return out


def settle_job(redis: Any, job_id: str, spec: JobSpec, used_tokens: int) -> None:
    """Settle a finished job's reservation to what it used (0: a refund); never raises, so a
    Redis hiccup cannot undo a committed end (the sweeper settles it later)."""
    if spec.reservation is None:
        return
    try:
        Limiter(redis, slot_lease_seconds=0).settle(job_id, spec.reservation, used_tokens)
    except Exception:
        log.warning("could not settle the limits of job %s", job_id, exc_info=True)


def settle_ended(
    sessions: sessionmaker[Session], redis: Any, batch: int, grace: float = SETTLE_GRACE_SECONDS
) -> int:
    """The sweeper's part: settle reservations of jobs that ended without being settled (the
    worker died between its commit and the settle); drop those whose job was never written."""
    limiter = Limiter(redis, slot_lease_seconds=0)
    pending = limiter.pending(grace, batch)
    if not pending:
        return 0
    with sessions() as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.request, Job.total_tokens).where(Job.id.in_(pending))
        ).all()
    settled = 0
    for job_id, status, request, total in rows:
        spec = JobSpec.load(request)
        if status in TERMINAL and spec.reservation is not None:
            settled += limiter.settle(job_id, spec.reservation, total or 0)
    written = {row[0] for row in rows}
    orphans = [job_id for job_id in pending if job_id not in written]
    if orphans:
        redis.zrem(keys.LIMIT_PENDING, *orphans)
    return settled
