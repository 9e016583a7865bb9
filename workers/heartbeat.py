"""Leases renewed while calls run: a job's `updated_at` is its worker's heartbeat.

A claim makes the job `running` with a fresh `updated_at`; a `running` job untouched for
`lease_seconds` may be claimed again (its worker is presumed dead: `jobs.lifecycle.claim`,
and the sweeper's `requeue_stale`). So leases can be short — a dead worker's jobs run again
within about a minute — while a call that takes longer than the lease is not stolen from a
live worker: one thread per worker process touches every job it is calling, every
`lease_seconds / 4`, in one UPDATE.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session, sessionmaker

from jobs.status import JobStatus
from storage.models import Job, utcnow

log = logging.getLogger(__name__)
# Held jobs per UPDATE when renewing leases (SQLite caps an expression tree at 1,000 deep).
RENEW_CHUNK = 200


class LeaseKeeper:
    def __init__(self, sessions: sessionmaker[Session], lease_seconds: float) -> None:
        self.sessions = sessions
        self.interval = lease_seconds / 4
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, job_id: str, number: int) -> Iterator[None]:
        """Keep the lease of attempt `number` of the job while the block runs."""
        with self._lock:
            self._held[job_id] = number
            self._start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(job_id, None)

    def renew(self) -> int:
        """Touch every held job still running its held attempt; returns how many.

        In chunks of `RENEW_CHUNK`: SQLite refuses an expression tree deeper than 1,000, so one
        OR over every held job failed once a worker held about a thousand calls, and the
        leases of all of them lapsed (the sweeper would then call their providers again)."""
        with self._lock:
            held = list(self._held.items())
        renewed = 0
        with self.sessions() as session:
            for start in range(0, len(held), RENEW_CHUNK):
                chunk = held[start : start + RENEW_CHUNK]
                ours = or_(*(and_(Job.id == job, Job.attempt_count == n) for job, n in chunk))
                result = session.execute(
                    update(Job)
                    .where(Job.status == JobStatus.RUNNING, ours)
                    .values(updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
                renewed += int(result.rowcount)  # type: ignore[attr-defined]
            session.commit()
        return renewed

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="llmgw-leases", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.interval):
            try:
                self.renew()
            except Exception:  # the next beat tries again; a missed one costs nothing yet
                log.warning("could not renew job leases", exc_info=True)
