"""The one submission path: plan → admit → reserve the idempotency key → insert → publish.

Every way a job comes in (`POST /v1/jobs`, `/v1/chat/completions`, later batch lines and the
CLI) calls `Submitter.submit`; it raises domain errors (`routing.errors`, `jobs.errors`) that
the API maps to HTTP. The row is committed before the message is published (a crash between
the two leaves a `queued` row the sweeper re-publishes); a message that cannot be published
fails the job at once, so no client waits on a job nobody will run. A job its submitting
process runs at once (the sync endpoint's inline run) is not published; if its caller's
`Opener` says the first call may go now, it is inserted already `running` with that call's
`started` attempt row, in the same commit (`Submitted.started`).

Admission (limits and quotas) is a hook: `Admission.admit` sees the owner, the request, the
planned route and the new job's id before anything is written, raises to refuse, and returns
what it charged (kept in the job's spec, settled when the job ends); the default admits all.
A submission that writes no job after admission (an idempotent replay, a failed insert)
releases the charge; one whose message cannot be published fails the job and releases it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import WatchError
from sqlalchemy.orm import Session, sessionmaker

from jobs import attempts, callbacks, lifecycle
from jobs.dispatch import Dispatcher, mark_run_here
from jobs.errors import IdempotencyKeyInUse, IdempotencyKeyReused, QueueUnavailable
from jobs.features import requirements
from jobs.spec import JobRequest, JobSpec
from monitoring.metrics import JOBS_SUBMITTED
from providers.base import Message
from routing.plan import FallbackPlan, FallbackPolicy, OpenCircuits
from routing.service import Route
from storage import keys
from storage.limits import Reservation
from storage.models import Job

log = logging.getLogger(__name__)


class Planner(Protocol):
    def plan(
        self, model_id: str, policy: FallbackPolicy | None = None, **kw: Any
    ) -> FallbackPlan: ...


class PromptCounter(Protocol):
    """`jobs.tokens.TokenCounter`: the prompt's tokens by the model's tokenizer (None: the
    model id does not resolve)."""

    def prompt_tokens(self, model_id: str, messages: tuple[Message, ...]) -> int | None: ...


class Admission(Protocol):
    def admit(
        self,
        owner: str,
        request: JobRequest,
        plan: FallbackPlan,
        job_id: str,
        *,
        estimated_tokens: int | None = None,
    ) -> Reservation | None: ...

    def release(self, job_id: str, reservation: Reservation | None) -> None: ...


class AdmitAll:
    def admit(
        self,
        owner: str,
        request: JobRequest,
        plan: FallbackPlan,
        job_id: str,
        *,
        estimated_tokens: int | None = None,
    ) -> Reservation | None:
        return None

    def release(self, job_id: str, reservation: Reservation | None) -> None:
        return None


class Gate(Protocol):
    """What lets a call go now (the provider's pacing slot), held while it runs."""

    def release(self) -> None: ...


class Opener(Protocol):
    """Asked just before the insert of a job its submitting process will run at once: may
    its first call go now (`workers.inline.open_first`: the provider's pacing, the circuit)?
    A gate to hold while it runs, or None: the job is inserted `queued` and run the usual
    way. `circuit_closed`: the plan's read, a moment ago, saw the route's circuit closed, so
    the circuit needs no second look (a half-open or unknown one is looked at again)."""

    def __call__(
        self, route: Route, spec: JobSpec, *, circuit_closed: bool = False
    ) -> Gate | None: ...


@dataclass(frozen=True)
class Started:
    """A job inserted already `running` with its first call's `started` row (one commit):
    the submitting process makes that call now, holding `gate`."""

    claimed: lifecycle.Claimed
    gate: Gate


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool  # False: an Idempotency-Key replay of an earlier job
    deprecation_headers: dict[str, str]
    started: Started | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Submitter:
    sessions: sessionmaker[Session]
    redis: Any
    planner: Planner
    circuits: OpenCircuits
    dispatcher: Dispatcher
    admission: Admission = field(default_factory=AdmitAll)
    # A submission commits its row within milliseconds (SQLite's busy timeout bounds it at
    # 30 s): a key claimed this long ago whose job row does not exist belongs to a request
    # that died, and the next request with the key takes it over.
    idempotency_grace_seconds: float = 60.0
    # Counts the prompt with the provider's tokenizer (cached) for the context-window check
    # and admission; None, or a count that fails, leaves `estimate_tokens`.
    counter: PromptCounter | None = None
    # Refuses a planned route that cannot serve a completion (an embedding model: raises
    # `jobs.embeddings.UnsupportedModel`); None checks nothing.
    check_route: Callable[[Route], None] | None = None

    def submit(
        self,
        owner: str,
        request: JobRequest,
        *,
        stream: bool = False,
        idempotency_key: str | None = None,
        dispatch: bool = True,
        job_id: str | None = None,
        opener: Opener | None = None,
    ) -> Submitted:
        """Plan, admit, insert (`queued`) and publish the job. `dispatch=False` leaves the
        publishing to the caller, who runs the job itself (the sync endpoint's inline run,
        `LLMGW_SYNC_INLINE`) and publishes what that run cannot finish; with an `opener`
        that lets the first call go now, the job is inserted `running` with that call's
        `started` row in the same commit (`Submitted.started`), so the caller's run needs no
        claim of its own. `job_id`: the new job's id, chosen by a caller that registers for
        its end before it is published (`jobs.service.submit_and_wait`); by default a new
        one."""
        estimated = self.estimated_tokens(request)
        plan = self.plan(owner, request, estimated, stream=stream)
        if self.check_route is not None:
            self.check_route(plan.route)
        route = plan.primary  # NoRouteAvailable / ContextTooLong when every candidate is skipped
        job_id = job_id or new_job_id()
        reservation = self.admission.admit(owner, request, plan, job_id, estimated_tokens=estimated)
        spec = JobSpec.build(request, plan, stream=stream, reservation=reservation)
        gate = None
        try:
            gate = None
            if opener is not None and not dispatch:
                gate = opener(route, spec, circuit_closed=route.breaker_key in plan.closed_circuits)
            if not dispatch and gate is None:  # claimed later: a death before it is covered
                mark_run_here(self.redis, job_id)
            earlier, claimed = self.write(
                owner, job_id, route, spec, request, idempotency_key, running=gate is not None
            )
        except Exception:
            if gate is not None:
                gate.release()
            self.admission.release(job_id, reservation)
            raise
        if earlier is not None:
            if gate is not None:
                gate.release()
            self.admission.release(job_id, reservation)
            return earlier
        if dispatch:
            try:
                self.publish(job_id, route.queue, request.priority)
            except QueueUnavailable:
                self.admission.release(job_id, reservation)
                raise
        JOBS_SUBMITTED.labels(route.provider, route.model, route.channel, request.priority).inc()
        started = Started(claimed, gate) if claimed is not None and gate is not None else None
        return Submitted(job_id, True, spec.deprecation_headers, started)

    def write(
        self,
        owner: str,
        job_id: str,
        route: Route,
        spec: JobSpec,
        request: JobRequest,
        idempotency_key: str | None,
        *,
        running: bool = False,
    ) -> tuple[Submitted | None, lifecycle.Claimed | None]:
        """Insert the job, or find the earlier job of this Idempotency-Key (returned first).
        `running`: inserted as claimed by this process, with its first call's `started` row
        in the same commit (returned second)."""
        if idempotency_key:
            earlier = self.reserve(owner, idempotency_key, request, job_id)
            if earlier is not None:
                return earlier, None
        claimed = None
        try:
            with self.sessions() as session:
                if running:
                    claimed = lifecycle.create_running(
                        session, job_id, owner, route, spec, request.priority
                    )
                    attempts.start_call(session, job_id, claimed.number, route)
                else:
                    lifecycle.create(session, job_id, owner, route, spec, request.priority)
                if request.callback_url is not None:
                    callbacks.register(session, owner, request.callback_url, job_id=job_id)
                session.commit()
        except Exception:
            if idempotency_key:  # nothing was created: the key must not point at a ghost
                self.redis.delete(keys.idempotency_key(owner, idempotency_key))
            raise
        return None, claimed

    def estimated_tokens(self, request: JobRequest) -> int:
        """Prompt plus `max_tokens`: the prompt by the tokenizer when a counter is set (it
        falls back to characters / 4 itself), else `estimate_tokens`. A request with tools or
        tool messages keeps the estimate, which counts the tools' JSON too."""
        plain = not request.tools and all(
            m.role != "tool" and not m.tool_calls for m in request.messages
        )
        if self.counter is not None and plain:
            messages = tuple(Message(m.role, m.content) for m in request.messages)
            counted = self.counter.prompt_tokens(request.model, messages)
            if counted is not None:
                return counted + (request.max_tokens or 0)
        return estimate_tokens(request)

    def plan(
        self,
        owner: str,
        request: JobRequest,
        estimated: int | None = None,
        *,
        stream: bool = False,
    ) -> FallbackPlan:
        """The plan for this request under its key's routing policy (cross-provider or not),
        with only candidates that can serve its features (`jobs.features`)."""
        policy = FallbackPolicy(
            cross_provider=request.cross_provider, explicit=tuple(request.fallback)
        )
        return self.planner.plan(
            request.model,
            policy,
            estimated_tokens=estimate_tokens(request) if estimated is None else estimated,
            breaker=self.circuits,
            key_id=owner,
            requirements=requirements(request, stream=stream),
        )

    def reserve(self, owner: str, key: str, request: JobRequest, job_id: str) -> Submitted | None:
        """Claim the key for `job_id`; if it was claimed before, the earlier job (or 409).

        A claim whose job row never appeared (its API process died between the claim and
        the commit) is taken over once it is older than `idempotency_grace_seconds`, instead
        of answering 409 for a job that does not exist until the key expires."""
        body_hash = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        redis_key = keys.idempotency_key(owner, key)
        claim = json.dumps({"job_id": job_id, "body_sha256": body_hash, "at": time.time()})
        if self.redis.set(redis_key, claim, nx=True, ex=keys.IDEMPOTENCY_TTL_SECONDS):
            return None
        raw = self.redis.get(redis_key)
        earlier = json.loads(raw or "{}")
        if earlier.get("body_sha256") != body_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body."
            )
        with self.sessions() as session:
            job = session.get(Job, earlier["job_id"])
        if job is not None:
            return Submitted(job.id, False, JobSpec.load(job.request).deprecation_headers)
        stale = time.time() - float(earlier.get("at", 0)) > self.idempotency_grace_seconds
        if stale and self._take_over(redis_key, raw, claim):
            log.warning("Idempotency-Key of a job never written taken over by job %s", job_id)
            return None
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is in progress.")

    def _take_over(self, redis_key: str, seen: bytes | None, claim: str) -> bool:
        """Replace the claim only if it is still the one read (one taker among racers)."""
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(redis_key)
                if pipe.get(redis_key) != seen:
                    return False
                pipe.multi()
                pipe.set(redis_key, claim, ex=keys.IDEMPOTENCY_TTL_SECONDS)
                pipe.execute()
                return True
            except WatchError:
                return False

    def publish(self, job_id: str, queue: str, priority: str) -> None:
        try:
            self.dispatcher.publish(job_id, queue, priority)
        except Exception as exc:  # the broker is down: say so, never leave a silent orphan
            log.exception("could not publish job %s", job_id)
            with self.sessions() as session:
                lifecycle.fail_dispatch(session, job_id)
                session.commit()
            raise QueueUnavailable("The job queue is unavailable; try again shortly.") from exc


def new_job_id() -> str:
    return uuid.uuid4().hex


def estimate_tokens(request: JobRequest) -> int:
    """A cheap upper-ish estimate (about 3 characters a token, plus the answer's budget);
    tool definitions and calls count by their JSON."""
    text = sum(len(m.content) for m in request.messages)
    calls = [c.model_dump() for m in request.messages for c in m.tool_calls or ()]
    extra = [t.model_dump() for t in request.tools] + calls
    text += len(json.dumps(extra, ensure_ascii=False)) if extra else 0
    prompt = text // 3 + 4 * len(request.messages)
    return prompt + (request.max_tokens or 0)
