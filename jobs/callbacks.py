"""Completion callbacks: when a job or a batch that asked for one ends, POST its final JSON
(the body of `GET /v1/jobs/<id>` or `GET /v1/batches/<id>`), signed (`jobs.signing`), to
its `callback_url`, retrying with exponential backoff for up to 24 h.

Decisions:
- Durable, and no hook can be missed: the `callback_deliveries` row is written in the same
  transaction as its job or batch (`register`), `pending`. A delivery is *due* when its
  subject has ended (a terminal job status, an ended batch — read from the subject's row,
  not from a hook) and its `next_attempt_at` has come. A periodic task (beat,
  `LLMGW_CALLBACK_INTERVAL_SECONDS`) delivers the due ones; the end of a job that has a
  callback also kicks that task at once. So a worker that dies between a job's end and the
  kick only delays the callback to the next beat.
- One delivery attempt at a time per row: the claim is one conditional UPDATE (`attempts =
  <seen>` and due) that bumps `attempts` and pushes `next_attempt_at` past the call's
  timeout (a lease). Two workers never send the same attempt, and a delivered row is never
  sent again. A worker that dies mid-call leaves the lease to run out and the row is tried
  again: receivers deduplicate on `X-Llmgw-Delivery` (at-least-once across crashes).
- Success is any 2xx. Redirects are not followed (a 3xx is a failure), environment proxies
  are not used, and the URL is checked again for each attempt, on the addresses connected
  to (`jobs.callback_url`, `jobs.callback_http`).
- Backoff: `base * 2^(n-1)` seconds after the n-th failed attempt, capped at `max_delay`,
  while the next attempt falls within `window` of the first; then the row is `failed`.
  Defaults 10 s, 1 h, 24 h (`LLMGW_CALLBACK_*`); no jitter (rows spread by end time).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from pydantic import SecretStr
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs import signing
from jobs.callback_http import callback_session
from jobs.callback_url import InvalidCallbackUrl, Resolve, UrlPolicy, check_callback_url
from jobs.callback_url import resolve_host as resolve_host
from jobs.errors import JobError
from jobs.status import TERMINAL
from monitoring.metrics import CALLBACK_DELIVERIES
from storage.models import Batch, CallbackDelivery, CallbackSecret, Job, utcnow

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# `jobs.batches.BatchStatus` values that end a batch (kept here: jobs.batches imports this).
BATCH_ENDED = ("completed", "failed", "expired", "cancelled")
LEASE_MARGIN_SECONDS = 30.0


class CallbacksUnavailable(JobError):
    """The gateway has no signing secret (`LLMGW_CALLBACK_SIGNING_SECRET`)."""

    code = "callbacks_unavailable"


@dataclass(frozen=True)
class RetrySchedule:
    base_seconds: float = 10.0
    max_delay_seconds: float = 3600.0
    window_seconds: float = 86400.0

    def delay(self, failed: int) -> float:
        """Seconds to wait after the `failed`-th failed attempt."""
        return min(self.base_seconds * 2 ** min(max(failed - 1, 0), 60), self.max_delay_seconds)

    def next_attempt(self, first: datetime, now: datetime, failed: int) -> datetime | None:
        """When to try again; None once that would fall outside the window."""
        at = now + timedelta(seconds=self.delay(failed))
        return at if at - first <= timedelta(seconds=self.window_seconds) else None


@dataclass(frozen=True)
class CallbackConfig:
    signing_secret: SecretStr | None = None
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    timeout_seconds: float = 10.0
    per_run: int = 50  # deliveries one run of the task attempts at most

    def master(self) -> bytes:
        if self.signing_secret is None:
            raise CallbacksUnavailable(
                "Completion callbacks are not configured on this gateway (no signing secret)."
            )
        return self.signing_secret.get_secret_value().encode()


def accept_url(url: str, config: CallbackConfig, resolve: Resolve = resolve_host) -> None:
    """A submission's check: 503 when callbacks are off (before any DNS lookup), else 400
    `invalid_callback_url` for a URL llmgw will not call."""
    config.master()
    check_callback_url(url, config.url_policy, resolve)


def register(
    session: Session,
    owner: str,
    url: str,
    *,
    job_id: str | None = None,
    batch_id: str | None = None,
) -> None:
    """Write the pending delivery with its subject (the caller commits both together)."""
    assert (job_id is None) != (batch_id is None)
    now = utcnow()
    session.add(
        CallbackDelivery(
            id=f"cbd_{uuid.uuid4().hex[:28]}",
            owner=owner,
            job_id=job_id,
            batch_id=batch_id,
            url=url,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


# -- signing secrets -------------------------------------------------------------------------


def secret_version(session: Session, key_id: str) -> int:
    return (
        session.scalar(select(CallbackSecret.version).where(CallbackSecret.key_id == key_id)) or 0
    )


def rotate_secret(session: Session, key_id: str) -> int:
    """The key's next secret version (the caller commits)."""
    done: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(CallbackSecret)
        .where(CallbackSecret.key_id == key_id)
        .values(version=CallbackSecret.version + 1, rotated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if done.rowcount == 0:
        session.add(CallbackSecret(key_id=key_id, version=1, rotated_at=utcnow()))
        session.flush()
    return secret_version(session, key_id)


# -- delivery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """One attempt this process holds (the claim's lease keeps other runs off the row)."""

    id: str
    number: int
    kind: str  # job | batch
    first_attempt_at: datetime


@dataclass(frozen=True)
class Prepared:
    """A claimed attempt, ready to send (no session held while it is sent)."""

    claim: Claimed
    url: str
    event: str
    body: bytes
    secret: str
    version: int


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


Render = Callable[[Session, CallbackDelivery], dict[str, Any]]


@dataclass(frozen=True)
class Deliverer:
    sessions: sessionmaker[Session]
    config: CallbackConfig
    render: Render  # the job's or batch's API JSON (the composition root passes the API's)
    resolve: Resolve = resolve_host
    http: requests.Session = field(init=False)

    def __post_init__(self) -> None:
        # Connects only to addresses that pass the URL policy when it connects.
        object.__setattr__(self, "http", callback_session(self.config.url_policy, self.resolve))

    def deliver_due(self) -> int:
        """One run: attempt every due delivery (up to `per_run`); returns how many landed."""
        if self.config.signing_secret is None:
            log.warning("cannot deliver callbacks: LLMGW_CALLBACK_SIGNING_SECRET is not set")
            return 0
        return sum(self.deliver(row_id, seen) for row_id, seen in self.due())

    def due(self) -> list[tuple[str, int]]:
        now, limit = utcnow(), self.config.per_run
        ready = (CallbackDelivery.status == PENDING, CallbackDelivery.next_attempt_at <= now)
        pick = select(CallbackDelivery.id, CallbackDelivery.attempts).where(*ready)
        with self.sessions() as session:
            pick = pick.order_by(CallbackDelivery.next_attempt_at)  # the longest-waiting first
            jobs = pick.join(Job, Job.id == CallbackDelivery.job_id)
            batches = pick.join(Batch, Batch.id == CallbackDelivery.batch_id)
            rows = [
                *session.execute(jobs.where(Job.status.in_(TERMINAL)).limit(limit)),
                *session.execute(batches.where(Batch.status.in_(BATCH_ENDED)).limit(limit)),
            ]
        return [(row[0], row[1]) for row in rows]

    def deliver(self, row_id: str, seen: int) -> bool:
        claim = self.claim(row_id, seen)
        if claim is None:
            return False
        try:
            prepared = self.prepare(claim)
        except Exception:  # never leave a claimed row without a recorded attempt
            log.exception("callback %s: could not build its body", claim.id)
            self.record(claim, Sent(None, "could not build the body"))
            return False
        sent = self.send(prepared)
        self.record(claim, sent)
        return sent.ok

    def claim(self, row_id: str, seen: int) -> Claimed | None:
        """Take attempt `seen + 1` of the row: one conditional UPDATE, committed at once."""
        now = utcnow()
        lease = now + timedelta(seconds=self.config.timeout_seconds * 2 + LEASE_MARGIN_SECONDS)
        with self.sessions() as session:
            row = session.execute(
                update(CallbackDelivery)
                .where(CallbackDelivery.id == row_id, CallbackDelivery.status == PENDING)
                .where(CallbackDelivery.attempts == seen, CallbackDelivery.next_attempt_at <= now)
                .values(
                    attempts=seen + 1,
                    next_attempt_at=lease,
                    first_attempt_at=func.coalesce(CallbackDelivery.first_attempt_at, now),
                    last_attempt_at=now,
                )
                .returning(CallbackDelivery.job_id, CallbackDelivery.first_attempt_at)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            session.commit()
        if row is None:
            return None
        return Claimed(row_id, seen + 1, "job" if row[0] else "batch", row[1] or now)

    def prepare(self, claim: Claimed) -> Prepared:
        with self.sessions() as session:
            row = session.get_one(CallbackDelivery, claim.id)
            body = self.render(session, row)
            version = secret_version(session, row.owner)
            return Prepared(
                claim=claim,
                url=row.url,
                event=f"{claim.kind}.{body.get('status', 'ended')}",
                body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                secret=signing.key_secret(self.config.master(), row.owner, version),
                version=version,
            )

    def send(self, prepared: Prepared) -> Sent:
        try:
            check_callback_url(prepared.url, self.config.url_policy, self.resolve)
        except InvalidCallbackUrl as exc:
            return Sent(None, f"refused: {exc.message}"[:200])
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            signing.SIGNATURE_HEADER: signing.signature(prepared.secret, timestamp, prepared.body),
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.DELIVERY_HEADER: prepared.claim.id,
            signing.VERSION_HEADER: str(prepared.version),
            signing.EVENT_HEADER: prepared.event,
        }
        timeout = self.config.timeout_seconds
        try:
            response = self.http.post(
                prepared.url,
                data=prepared.body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
            )
            response.close()
        except InvalidCallbackUrl as exc:  # the name resolved elsewhere since the check
            return Sent(None, f"refused: {exc.message}"[:200])
        except requests.RequestException as exc:
            return Sent(None, type(exc).__name__)
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return Sent(response.status_code, error)

    def record(self, claim: Claimed, sent: Sent) -> None:
        """Delivered, or the next attempt's time, or failed for good; only if still ours."""
        now = utcnow()
        values: dict[str, Any] = {"last_status_code": sent.status_code, "last_error": sent.error}
        if sent.ok:
            values |= {"status": DELIVERED, "delivered_at": now}
        else:
            at = self.config.schedule.next_attempt(claim.first_attempt_at, now, claim.number)
            values |= {"status": FAILED} if at is None else {"next_attempt_at": at}
            log.info("callback %s attempt %d failed (%s)", claim.id, claim.number, sent.error)
        with self.sessions() as session:
            session.execute(
                update(CallbackDelivery)
                .where(CallbackDelivery.id == claim.id, CallbackDelivery.status == PENDING)
                .where(CallbackDelivery.attempts == claim.number)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            session.commit()
        CALLBACK_DELIVERIES.labels(claim.kind, values.get("status", "retrying")).inc()
