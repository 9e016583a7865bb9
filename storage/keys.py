"""The Redis key schema: every key llmgw writes is built here. Each starts with `llmgw:`.

- `llmgw:job:<job_id>:done` — pub/sub channel: a job's terminal status, published after
  commit; long-polls wait on it. Writer and reader: `jobs.events`.
- `llmgw:job:<job_id>:stream` — stream, TTL 1 h (renewed by each write), capped near
  `JOB_STREAM_MAXLEN`: a `stream: true` job's answer, `delta` `{content}` events then exactly
  one of `done` (the result without `content`, plus `status`; after commit) or `error`
  `{code, message}`. Writer and reader: `jobs.events`.
- `llmgw:idem:<owner>:<sha256(key)>` — string JSON `{job_id, body_sha256}`, TTL 24 h:
  Idempotency-Key → job. `jobs.submit`.
- `llmgw:sweeper:lock` — string, TTL 60 s: one sweeper run at a time. `workers.sweeper`.
- `llmgw:inline` — sorted set, no TTL: job ids inserted `queued` for the API to claim and run
  itself (a sync request's, `LLMGW_SYNC_INLINE`, whose first call had to wait; one inserted
  already `running` has none), scored by the time (Unix seconds), written before the
  insert; the sweeper publishes those still `queued` a lease later (their API process died
  before its claim) and drops every entry that old. Writer and reader: `jobs.dispatch`.
- `llmgw:sweeper:postmortem` — string (the dead worker's id), TTL three leases: a dead
  worker was found; until it expires the sweeper takes queued jobs as stale after a lease.
  `workers.sweeper`.
- `llmgw:workers` — sorted set, no TTL: worker process id → its last beat (Unix seconds);
  `llmgw:worker:<worker_id>:held` — hash, no TTL: the run_job messages that process holds
  unacknowledged (`<task id>:<retries>` → job id). Written by `workers.held`; the sweeper
  reads a worker whose beat stopped and deletes both.
- `llmgw:batch:<batch_id>:feeder:lock` — string, TTL 20 s: one feeder run per batch at a
  time (the beat's run and the refills kicked as lines end; a run holds it for one round, a
  window's worth of submissions). `jobs.feeder`.
- `llmgw:batch:<batch_id>:kick` — string, TTL 2 s: a refill of the batch has been asked for
  (set NX when a line ends; the one who sets it sends the feeder task, so at most one kick
  per batch is in flight; the feeder deletes it as it starts a round). `jobs.feeder`.
- `llmgw:cb:<provider>:<model>:<channel>` — hash, TTL 1 h (renewed by writes): a circuit
  breaker. `routing.breaker` writes and decodes it (the metrics collector reads through it).
- `llmgw:catalogue:version` — integer, no TTL: bumped after every committed catalogue
  change; `llmgw:catalogue:snapshot:<version>` — string JSON, TTL 60 s. `routing.cache`.
- `llmgw:yandexgpt:iam:<sha256[:16]>`, `llmgw:gigachat:token:<sha256[:16]>` — string, TTL
  the token's life: cached provider access tokens. `providers.yandexgpt`, `providers.gigachat`.
- `llmgw:pace:<provider>:<sha256(credential)[:16]>:holders` — sorted set, member a slot
  token, score its lease's expiry (ms, Redis clock); TTL the lease (renewed by every acquire
  and renewal; an empty set vanishes). `…:calls` — sorted set of the last second's call
  starts (score ms), TTL 1 s. Provider pacing's semaphore and rate window: `workers.pacing`.

- `llmgw:lim:<scope>:<kind>[:<window>]` and `…:amounts` — the limit counters of one scope
  (`key:<key_id>`, `key:<key_id>:<model>[:<channel>]`, `gw:<model>[:<channel>]`): `rpm`
  sorted set (TTL 61 s), `tpm` sorted set + hash of amounts (TTL 61 s), `tpd:<YYYYMMDD>` and
  `tpmo:<YYYYMM>` integer (TTL the window's end + 1 day), `conc` sorted set scored by lease
  end (TTL the lease + 60 s). `llmgw:lim:pending` — sorted set, no TTL: job ids reserved and
  not yet settled, scored by the reservation's time (ms). Writer and reader: `storage.limits`.
- `llmgw:tok:<provider>:<sha256>` — string (an integer), TTL `TOKEN_COUNT_TTL_SECONDS`
  (24 h): a token count by the provider's tokenizer; the hash covers the model's upstream
  id, its release (`Route.version`), the kind (`text` or `messages`) and the content, which
  is never stored. Writer and reader: `jobs.tokens` (which keeps the last 4,096 in process,
  under the same key and expiry).

Celery's own keys (kombu's queue lists `<queue>` and `<queue>\\x06\\x16<step>`, `unacked*`)
are kombu's schema, not ours; `monitoring.collectors` reads the queue lists.
"""

from __future__ import annotations

import hashlib

PREFIX = "llmgw:"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
TOKEN_COUNT_TTL_SECONDS = 24 * 3600
JOB_STREAM_TTL_SECONDS = 3600
# Far above the deltas of any one answer (at most one per token); only a runaway is trimmed.
JOB_STREAM_MAXLEN = 200_000

SWEEPER_LOCK = f"{PREFIX}sweeper:lock"
BATCH_FEEDER_LOCK_TTL = 20  # a feeder killed mid-run stalls its batch this long at most
BATCH_KICK_TTL = 2
CIRCUIT_PREFIX = f"{PREFIX}cb:"
CATALOGUE_VERSION = f"{PREFIX}catalogue:version"
CATALOGUE_SNAPSHOT_PREFIX = f"{PREFIX}catalogue:snapshot:"
LIMIT_PENDING = f"{PREFIX}lim:pending"
WORKERS = f"{PREFIX}workers"
INLINE_JOBS = f"{PREFIX}inline"
POSTMORTEM = f"{PREFIX}sweeper:postmortem"


def job_done_channel(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:done"


def job_stream(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:stream"


def idempotency_key(owner: str, key: str) -> str:
    return f"{PREFIX}idem:{owner}:{_digest(key)}"


def worker_held(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}:held"


def batch_feeder_lock(batch_id: str) -> str:
    return f"{PREFIX}batch:{batch_id}:feeder:lock"


def batch_kick(batch_id: str) -> str:
    return f"{PREFIX}batch:{batch_id}:kick"


def circuit_id(provider: str, model: str, channel: str) -> str:
    """The name of one circuit (also its metric labels): `<provider>:<model>:<channel>`."""
    return f"{provider}:{model}:{channel}"


def circuit(circuit_name: str) -> str:
    """The Redis hash of the circuit named by `circuit_id`."""
    return CIRCUIT_PREFIX + circuit_name


def limit_counters(scope: str, kind: str, window: str = "") -> tuple[str, str]:
    """The two keys of one limit counter (the second holds `tpm`'s amounts; unused else)."""
    base = f"{PREFIX}lim:{scope}:{kind}" + (f":{window}" if window else "")
    return base, f"{base}:amounts"


def catalogue_snapshot(version: str) -> str:
    return CATALOGUE_SNAPSHOT_PREFIX + version


def provider_token(provider: str, kind: str, secret: str) -> str:
    """A cached provider token, keyed by a digest of the credential it was issued for."""
    return f"{PREFIX}{provider}:{kind}:{_digest(secret)[:16]}"


def pacing_holders(provider: str, credential: str) -> str:
    """The in-flight slots of one provider credential (digested: never the secret)."""
    return f"{PREFIX}pace:{provider}:{_digest(credential)[:16]}:holders"


def pacing_calls(provider: str, credential: str) -> str:
    """Call starts in the last second for one provider credential."""
    return f"{PREFIX}pace:{provider}:{_digest(credential)[:16]}:calls"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def token_count(
    provider: str, upstream_id: str, kind: str, content: str, version: str | None = None
) -> str:
    """The cached token count of `content` (text, or messages as canonical JSON) by the
    tokenizer of `upstream_id` at release `version` (a channel that moves to a new release
    may count differently): only a hash of the four is in the key."""
    parts = (upstream_id, version or "", kind, content)
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return f"{PREFIX}tok:{provider}:{digest}"
