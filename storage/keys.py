"""The Redis key schema. Every key starts with `llmgw:`; shapes and TTLs are documented here.

- `llmgw:job:<job_id>:done` — pub/sub channel, no TTL: a job's terminal status, published
  after commit; long-polls wait on it.
- `llmgw:idem:<owner>:<sha256(key)>` — string, JSON `{job_id, body_sha256}`, TTL 24 h:
  Idempotency-Key → job.
- `llmgw:sweeper:lock` — string, TTL 60 s: one sweeper run at a time.
"""

from __future__ import annotations

import hashlib

PREFIX = "llmgw:"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


def job_done_channel(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:done"


def idempotency_key(owner: str, key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{PREFIX}idem:{owner}:{digest}"


SWEEPER_LOCK = f"{PREFIX}sweeper:lock"
