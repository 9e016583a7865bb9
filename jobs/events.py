"""The job's signals across processes, writer and reader side by side in one module.

- Done: after a job's terminal status is committed its status is published on
  `storage.keys.job_done_channel`. In each process one `DoneListener` (a thread on one pub/sub
  connection, pattern-subscribed to every job's channel) hands each end to the waiters of
  that job; a waiter registers, reads the row, and sleeps until a message or at most
  `RECHECK_SECONDS` (a lost message costs a re-read, never the result).
- Stream: a `stream: true` job's answer goes to `storage.keys.job_stream` as it is
  generated: `delta` `{content}` per piece, then exactly one of `done` (the result without
  `content`, plus `status`; written after the result is committed) or `error`
  `{code, message}`. `JobStream` writes, `StreamReader` and `job_events` read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from jobs.status import ANSWERED, TERMINAL
from storage import keys

log = logging.getLogger(__name__)
RECHECK_SECONDS = 5.0
# How long a new waiter waits for the process's subscription to job ends (made once at start,
# and again after a reconnect) before it answers as if Redis were down.
READY_SECONDS = 2.0
# XREAD blocks in slices this long (below the Redis client's socket timeout); between slices a
# quiet stream is checked against the job's row, so that a job that ended without a stream
# event (every candidate skipped, cancelled while queued, a replay whose stream expired) ends
# the reader too.
STREAM_BLOCK_SECONDS = 2.0
Event = tuple[str, dict[str, Any]]


# -- done ------------------------------------------------------------------------------------


def notify_done(redis: Any, job_id: str, status: str) -> None:
    """Wake long-polls; best effort, since waiters re-read the row anyway."""
    try:
        redis.publish(keys.job_done_channel(job_id), status)
    except Exception:  # a missed wake-up costs a waiter a re-read, never the result
        log.warning("could not publish the end of job %s", job_id, exc_info=True)


class DoneListener:
    """One process's ears for job ends: a daemon thread on one pub/sub connection,
    pattern-subscribed to every job's done channel, wakes the threads waiting on that job.

    Replaces a pub/sub connection (connect, subscribe, confirm, close) per waiter: a waiter
    sends nothing to Redis. The guarantee stays that of a subscription made before the read: a
    waiter registers, then reads the row; while the subscription is confirmed, an end
    published after the registration reaches it, and one published before was committed
    before the read. Whenever the subscription is (re)confirmed — after a reconnect made by
    the client or by the thread — every waiter reads its row again, since ends published
    while it was down were not heard; while it is down, waiters read their rows every
    `RECHECK_SECONDS`, and a new waiter gets the 503 of a Redis that is down. Every API
    process hears every job's end (a short message each; cheap next to a subscription per
    waiter at the rates one Redis serves).

    Started on first use in the process that uses it (a forked child starts its own).
    """

    PATTERN = keys.job_done_channel("*")

    def __init__(self, redis: Any, *, retry_seconds: float = 0.5) -> None:
        self._redis, self._retry_seconds = redis, retry_seconds
        self._lock = threading.Lock()
        self._waiters: dict[str, set[_Waiter]] = {}
        self._pid: int | None = None
        self._stop = threading.Event()
        self.ready = threading.Event()  # the subscription is confirmed

    def wait(self, job_id: str, read_status: Callable[[], str], timeout: float) -> str:
        """The job's status once it is terminal, or as last read when `timeout` has passed.

        A published terminal status is taken as it comes (it is published after the commit);
        the row is read first, then only after every `RECHECK_SECONDS` of silence or when the
        subscription was re-made. Raises `redis.ConnectionError` (the API's 503) if there is
        no subscription within `READY_SECONDS` (or `timeout`): Redis is down.
        """
        with self.watching(job_id, min(timeout, READY_SECONDS)) as watch:
            return watch.wait(read_status, timeout)

    @contextmanager
    def watching(self, job_id: str, ready_within: float = READY_SECONDS) -> Iterator[Watch]:
        """Registered for `job_id`'s end while inside: a caller that registers before it
        publishes the job may wait without reading the row first (`Watch.wait(status=...)`)."""
        self._start()
        if not self.ready.wait(ready_within):
            raise RedisConnectionError("not subscribed to job ends: Redis is unreachable")
        waiter = _Waiter()
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(waiter)
        try:
            yield Watch(self._lock, waiter)
        finally:
            with self._lock:
                mine = self._waiters.get(job_id)
                if mine is not None:
                    mine.discard(waiter)
                    if not mine:
                        del self._waiters[job_id]

    def close(self) -> None:
        """Stop the thread (within about a second); for tests and orderly shutdown."""
        self._stop.set()

    def _start(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._waiters, self._pid = {}, pid  # a forked child inherits no thread
            self.ready = threading.Event()
            thread = threading.Thread(target=self._run, name="llmgw-done-listener", daemon=True)
            thread.start()

    def _run(self) -> None:
        failures = 0  # in a row: the first is a warning, the retries back off to 5 s
        while not self._stop.is_set():
            pubsub = self._redis.pubsub()
            try:
                pubsub.psubscribe(self.PATTERN)
                while not self._stop.is_set():
                    self._handle(pubsub.get_message(timeout=1.0))
                    failures = 0 if self.ready.is_set() else failures
            except Exception:
                level = logging.WARNING if failures == 0 else logging.DEBUG
                log.log(level, "job-end listener lost Redis; waiters read rows", exc_info=True)
                failures += 1
            finally:
                self._lost()
                try:
                    pubsub.close()
                except Exception:
                    log.debug("closing a broken pub/sub connection failed", exc_info=True)
            self._stop.wait(min(self._retry_seconds * 2 ** max(min(failures, 8) - 1, 0), 5.0))

    def _handle(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        if message["type"] == "pmessage":
            job_id = _job_id(_text(message["channel"]))
            with self._lock:
                for waiter in self._waiters.get(job_id, ()):
                    waiter.published = _text(message["data"])
                    waiter.event.set()
        elif message["type"] == "psubscribe":  # (re)confirmed: what came before is unheard
            self._wake_all()  # (those who register from now on read after this)
            self.ready.set()

    def _lost(self) -> None:
        self.ready.clear()
        self._wake_all()

    def _wake_all(self) -> None:
        with self._lock:
            for waiters in self._waiters.values():
                for waiter in waiters:
                    waiter.stale = True
                    waiter.event.set()


class _Waiter:
    __slots__ = ("event", "published", "stale")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.published: str | None = None  # the status the last message carried
        self.stale = False  # the subscription was re-made: read the row again


@dataclass(frozen=True)
class Watch:
    """One waiter's registration with its process's `DoneListener`."""

    _lock: threading.Lock
    _waiter: _Waiter

    def wait(
        self, read_status: Callable[[], str], timeout: float, *, status: str | None = None
    ) -> str:
        """The job's status once terminal, or as last read when `timeout` has passed.

        `status`: what the caller knows the job's status was after it registered (a job it
        created after registering is `queued`); then the row is not read first.
        """
        deadline = time.monotonic() + timeout
        status = read_status() if status is None else status
        recheck = time.monotonic() + RECHECK_SECONDS
        waiter = self._waiter
        while status not in TERMINAL:
            now = time.monotonic()
            if now >= deadline:
                return status
            waiter.event.wait(min(deadline, recheck) - now)
            with self._lock:
                published, stale = waiter.published, waiter.stale
                waiter.published, waiter.stale = None, False
                waiter.event.clear()
            if published in TERMINAL:
                return published
            if stale or time.monotonic() >= recheck:
                status, recheck = read_status(), time.monotonic() + RECHECK_SECONDS
        return status


_CHANNEL_HEAD, _CHANNEL_TAIL = keys.job_done_channel("\0").split("\0")


def _job_id(channel: str) -> str:
    """`llmgw:job:<id>:done` → `<id>`."""
    return channel.removeprefix(_CHANNEL_HEAD).removesuffix(_CHANNEL_TAIL)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- stream: the writer ----------------------------------------------------------------------


class JobStream:
    """The writing end of one job's Redis stream."""

    def __init__(self, redis: Any, job_id: str) -> None:
        self._redis = redis
        self.key = keys.job_stream(job_id)
        self.deltas = 0

    def started(self) -> bool:
        """Events were published for this job before (by a worker that was then lost)."""
        return bool(self._redis.xlen(self.key))

    def delta(self, content: str) -> None:
        self.publish("delta", content=content)
        self.deltas += 1

    def publish(self, event: str, **data: Any) -> None:
        fields = {"event": event, "data": json.dumps(data, ensure_ascii=False)}
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self.key, fields, maxlen=keys.JOB_STREAM_MAXLEN, approximate=True)
        pipe.expire(self.key, keys.JOB_STREAM_TTL_SECONDS)
        pipe.execute()

    def publish_safely(self, event: str, **data: Any) -> None:
        """The job's row is the record; a reader that misses this event falls back to it."""
        try:
            self.publish(event, **data)
        except Exception:
            log.warning("could not publish %s to %s", event, self.key, exc_info=True)


# -- stream: the reader ----------------------------------------------------------------------


class StreamReader:
    """Reads one job's stream from its start; keeps the text so far and whether it ended."""

    def __init__(self, redis: Any, job_id: str) -> None:
        self._redis, self._job_id = redis, job_id
        self._key, self._last = keys.job_stream(job_id), "0-0"
        self.text, self.ended = "", False

    def read(self, block_seconds: float) -> list[Event]:
        """The next events, up to and including an end (`done`/`error`); [] when quiet."""
        reply: Any = self._redis.xread({self._key: self._last}, block=int(block_seconds * 1000))
        events: list[Event] = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                self._last = entry_id
                events.append(self._event(fields[b"event"].decode(), json.loads(fields[b"data"])))
                if self.ended:
                    return events
        return events

    def _event(self, event: str, data: dict[str, Any]) -> Event:
        if event == "delta":
            self.text += data["content"]
        else:
            self.ended = True
        return event, (data | {"job_id": self._job_id} if event == "error" else data)


def job_events(
    redis: Any, job_id: str, read_end: Callable[[], dict[str, Any] | None], idle: float
) -> Iterator[Event]:
    """The job's stream events in order, ending with `done` or `error` (with `job_id`).

    `read_end()` gives the job's end as its row tells it (`ended_row`) or None while it runs.
    `idle` bounds the wait for each event (the first included), not the whole answer. A quiet
    stream whose job's row has ended gets one more read, then its end is taken from the row.
    """
    reader = StreamReader(redis, job_id)
    quiet_since, row = time.monotonic(), None
    while time.monotonic() - quiet_since < idle:
        batch = reader.read(STREAM_BLOCK_SECONDS)
        if batch:
            quiet_since = time.monotonic()
            yield from batch
            if reader.ended:
                return
        elif row is not None:
            yield from events_from_row(job_id, row, reader.text)
            return
        else:
            row = read_end()
    message = f"Nothing more of the answer came for {idle:g} s; poll the job for its result."
    yield "error", stream_error(job_id, "job_timeout", message)


def ended_row(status: str, result: dict | None, code: str | None, message: str | None):
    """A finished job's end as `events_from_row` reads it; None while the job runs."""
    if status not in TERMINAL:
        return None
    return {
        "status": status,
        "result": result,
        "code": code or status,
        "message": message or f"The job ended as {status}.",
    }


def events_from_row(job_id: str, row: dict[str, Any], sent: str) -> Iterator[Event]:
    """The rest of the answer from a finished job's row, when its stream has no end."""
    result = row["result"]
    if row["status"] not in ANSWERED:
        yield "error", stream_error(job_id, row["code"], row["message"])
    elif result is None or not result["content"].startswith(sent):
        message = "The job's stream is no longer available; read the job for its result."
        yield "error", stream_error(job_id, "stream_unavailable", message)
    else:
        if result["content"] != sent:
            yield "delta", {"content": result["content"][len(sent) :]}
        yield "done", {k: v for k, v in result.items() if k != "content"}


def stream_error(job_id: str, code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message, "job_id": job_id}
