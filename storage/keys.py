"""The Redis key schema. Every key starts with `llmgw:`; shapes and TTLs are documented here.

- `llmgw:job:<job_id>:done` — pub/sub channel, no TTL: a job's terminal status, published
  after commit; long-polls wait on it.
- `llmgw:job:<job_id>:stream` — stream, capped near `JOB_STREAM_MAXLEN` entries, TTL 1 h
  (renewed by each write): a `stream: true` job's answer as it is generated. Each entry has
  `event` and `data` (JSON): `delta` `{content}` per piece of text, then exactly one of
  `done` (the result payload without `content`, plus `status`; written after the result is
  committed) or `error` `{code, message}`. Written by `workers.streaming`, read with XREAD
  by `api.chat`.
- `llmgw:idem:<owner>:<sha256(key)>` — string, JSON `{job_id, body_sha256}`, TTL 24 h:
  Idempotency-Key → job.
- `llmgw:sweeper:lock` — string, TTL 60 s: one sweeper run at a time.
"""

from __future__ import annotations

import hashlib

PREFIX = "llmgw:"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
JOB_STREAM_TTL_SECONDS = 3600
# Far above the deltas of any one answer (at most one per token); only a runaway is trimmed.
JOB_STREAM_MAXLEN = 200_000


def job_done_channel(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:done"


def job_stream(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:stream"


def idempotency_key(owner: str, key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{PREFIX}idem:{owner}:{digest}"


SWEEPER_LOCK = f"{PREFIX}sweeper:lock"
