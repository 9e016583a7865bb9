"""The run_job messages each worker process holds, so that a dead worker's are published again.

A message a worker has taken from Redis and not acknowledged — prefetched, waiting out a retry
countdown (Celery keeps an ETA message inside the worker until it is due), or running — is in
no queue list. If the worker is killed, kombu restores it only after the visibility timeout
(30 min), and the sweeper cannot tell it from a live worker's by counting the waiting messages:
a job whose message died that way stayed `queued` until `requeue_after_seconds` (15 min). A
`running` job comes back by its lease; a `queued` one needs this.

So every worker process keeps, in Redis, a hash of what it holds (one field per message:
`<task id>:<retries>`, since a retry keeps the task id; value the job id), written when the
message is received and removed when its task returns, and beats in a sorted set of workers
every `lease_seconds / 4`. The sweeper takes each worker whose beat is older than
`lease_seconds`, publishes again its jobs that are still `queued` (a duplicate message is
harmless: claims are atomic), and forgets it. A worker shutting down warmly forgets itself
(kombu gives its unacknowledged messages back to the queues then).

One message escapes both records: one Redis handed to the worker's blocked pop as it died
(popped, never received). So for three leases after a dead worker is found
(`llmgw:sweeper:postmortem`), the sweeper's count-based rule takes a queued job as stale
after a lease instead of `requeue_after_seconds`, leaving out the jobs live workers hold.

Redis unreachable: nothing is recorded, and the job falls back on the sweeper's slower rule;
the task itself never fails for this.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from storage import keys

log = logging.getLogger(__name__)


def message_field(task_id: str, retries: int) -> str:
    return f"{task_id}:{retries}"


class HeldMessages:
    """One worker process's record of the messages it holds, and its beat."""

    def __init__(self, redis: Any, lease_seconds: float, worker_id: str | None = None) -> None:
        self.redis = redis
        self.interval = lease_seconds / 4
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.key = keys.worker_held(self.worker_id)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def received(self, task_id: str, retries: int, job_id: str) -> None:
        self._start()
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(keys.WORKERS, {self.worker_id: time.time()})
            pipe.hset(self.key, message_field(task_id, retries), job_id)
            pipe.execute()
        except Exception:
            log.warning("could not record held job %s", job_id, exc_info=True)

    def released(self, task_id: str, retries: int) -> None:
        try:
            self.redis.hdel(self.key, message_field(task_id, retries))
        except Exception:
            log.warning("could not forget held message %s", task_id, exc_info=True)

    def beat(self) -> None:
        self.redis.zadd(keys.WORKERS, {self.worker_id: time.time()})

    def forget(self) -> None:
        """This process holds nothing any more (a warm shutdown)."""
        self._stop.set()
        try:
            forget_worker(self.redis, self.worker_id)
        except Exception:
            log.warning("could not forget worker %s", self.worker_id, exc_info=True)

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llmgw-held", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # the next beat tries again; one missed beat is not death
                log.warning("could not beat as worker %s", self.worker_id, exc_info=True)


def dead_workers(redis: Any, lease_seconds: float) -> list[str]:
    """Workers whose last beat is older than the lease."""
    cutoff = time.time() - lease_seconds
    return [_text(w) for w in redis.zrangebyscore(keys.WORKERS, "-inf", cutoff)]


def live_held_jobs(redis: Any, lease_seconds: float) -> set[str]:
    """The jobs whose messages the workers that beat within the lease hold."""
    cutoff = time.time() - lease_seconds
    jobs: set[str] = set()
    for worker in redis.zrangebyscore(keys.WORKERS, cutoff, "+inf"):
        jobs |= held_jobs(redis, _text(worker))
    return jobs


def held_jobs(redis: Any, worker_id: str) -> set[str]:
    return {_text(job) for job in redis.hvals(keys.worker_held(worker_id))}


def forget_worker(redis: Any, worker_id: str) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.delete(keys.worker_held(worker_id))
    pipe.zrem(keys.WORKERS, worker_id)
    pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
