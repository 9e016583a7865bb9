"""Rate limits and quotas: one Lua script checks and charges every scope in one step.

Why one script: a check that reads a counter and a charge that writes it later let N
concurrent requests all pass (LiteLLM #34732, Envoy AI Gateway #680); a local fast path
multiplies the limit by the number of processes (LiteLLM #27736). Redis runs a script
atomically, so the figures hold with any number of API processes, and a request refused by
one scope charges none (all or nothing).

Kinds of check (each on one scope: a key, a key × model, or the gateway × model):

- `rpm` — requests in the last 60 s: a sliding log (sorted set, member = job id, score =
  ms). Exact over any 60 s, at most `limit` members.
- `tpm` — tokens in the last 60 s: a sliding log (sorted set of job ids by time) plus a
  hash of each job's tokens and their `_total`; entries older than 60 s are subtracted.
- `tpd`, `tpmo` — tokens per UTC day / calendar month: a fixed-window counter whose key
  names the window (`…:tpd:20261129`); it resets at the window's end.
- `conc` — jobs in flight: a sorted set of job ids scored by the lease's end (ms); a member
  past its lease is dropped, so a slot is never leaked for longer than the lease.

Tokens are reserved (an estimate) by `reserve` and settled to the real usage by `settle`,
which is exactly-once: the job's entry in `llmgw:lim:pending` is removed by the first
settle, and a second one does nothing. `release` undoes a reservation entirely (nothing was
written, an idempotent replay). Time is Redis's own clock (`TIME`), the same for every
process; only the day/month window a reservation falls in is chosen by the caller's clock.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from storage import keys

Kind = Literal["rpm", "tpm", "tpd", "tpmo", "conc"]
TOKEN_KINDS = ("tpm", "tpd", "tpmo")
FIELDS: dict[str, Kind] = {
    "requests_per_minute": "rpm",
    "tokens_per_minute": "tpm",
    "tokens_per_day": "tpd",
    "tokens_per_month": "tpmo",
    "concurrent_jobs": "conc",
}
REASONS: dict[Kind, str] = {
    "rpm": "rate_limited",
    "tpm": "rate_limited",
    "tpd": "quota_exceeded",
    "tpmo": "quota_exceeded",
    "conc": "concurrency_limited",
}
# The model-id grammar (`routing.model_id`; storage sits below routing).
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$"
LIMIT_FIELD = Field(default=None, ge=1, le=10**12)


class Limit(BaseModel):
    """One limit object: without `model` it applies to every request of its owner."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(
        default=None, max_length=200, pattern=MODEL_ID_PATTERN, examples=["yandexgpt:rc"]
    )
    requests_per_minute: int | None = LIMIT_FIELD
    tokens_per_minute: int | None = LIMIT_FIELD
    tokens_per_day: int | None = LIMIT_FIELD
    tokens_per_month: int | None = LIMIT_FIELD
    concurrent_jobs: int | None = LIMIT_FIELD

    def amounts(self) -> list[tuple[Kind, int]]:
        return [(kind, v) for name, kind in FIELDS.items() if (v := getattr(self, name))]

    def applies_to(self, model: str, channel: str) -> bool:
        if self.model is None:
            return True
        name, _, wanted = self.model.lower().partition(":")
        return name == model.lower() and wanted in ("", channel.lower())


class Check(BaseModel):
    """One counter to check and charge: kept with the job so settling knows what to undo."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    scope: str  # `key`, `key:<model>[:<channel>]` or `gateway:<model>[:<channel>]`
    limit: int
    keys: tuple[str, str]
    reset_ms: int = 0  # the end of a fixed window (tpd, tpmo), epoch ms

    @property
    def scope_kind(self) -> str:
        """Bounded, for metrics: `key`, `key_model` or `gateway_model`."""
        head = self.scope.split(":", 1)[0]
        return "key" if self.scope == "key" else f"{head}_model"


class Reservation(BaseModel):
    """What admission charged for one job (the `reservation` of its `jobs.spec.JobSpec`)."""

    model_config = ConfigDict(frozen=True)

    tokens: int
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Figure:
    """A check's state after the script ran, for the `x-ratelimit-*` headers."""

    check: Check
    remaining: int
    reset_ms: int  # from now


@dataclass(frozen=True)
class Refused:
    check: Check
    retry_after_ms: int

    @property
    def reason(self) -> str:
        return REASONS[self.check.kind]


def build_checks(owner_scope: str, scope: str, limit: Limit, now: datetime) -> list[Check]:
    """The checks of one limit object; `owner_scope` names the counters (`key:<id>[:<model>]`
    or `gw:<model>`), `scope` is what the client is told."""
    return [
        Check(
            kind=kind,
            scope=scope,
            limit=amount,
            keys=keys.limit_counters(owner_scope, kind, window_name(kind, now)),
            reset_ms=window_end_ms(kind, now),
        )
        for kind, amount in limit.amounts()
    ]


def window_name(kind: Kind, now: datetime) -> str:
    return {"tpd": now.strftime("%Y%m%d"), "tpmo": now.strftime("%Y%m")}.get(kind, "")


def window_end_ms(kind: Kind, now: datetime) -> int:
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if kind == "tpd":
        return int(day.timestamp() * 1000) + 86_400_000
    if kind == "tpmo":
        days = calendar.monthrange(now.year, now.month)[1]
        first = day.replace(day=1)
        return int(first.timestamp() * 1000) + days * 86_400_000
    return 0


RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode, job, tokens, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = (#ARGV - 4) / 3
local function each_chunk(list, f)
  for i = 1, #list, 500 do f({unpack(list, i, math.min(i + 499, #list))}) end
end
local function oldest(key, span)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then return 0 end
  return math.max(tonumber(first[2]) + span - now, 0)
end
local function state(kind, a, b, reset)
  if kind == 'rpm' then
    redis.call('ZREMRANGEBYSCORE', a, '-inf', now - 60000)
    return redis.call('ZCARD', a), oldest(a, 60000)
  elseif kind == 'tpm' then
    local old = redis.call('ZRANGEBYSCORE', a, '-inf', now - 60000)
    each_chunk(old, function(part)
      local sum = 0
      for _, v in ipairs(redis.call('HMGET', b, unpack(part))) do sum = sum + (tonumber(v) or 0) end
      redis.call('HINCRBY', b, '_total', -sum)
      redis.call('HDEL', b, unpack(part))
      redis.call('ZREM', a, unpack(part))
    end)
    return tonumber(redis.call('HGET', b, '_total') or '0'), oldest(a, 60000)
  elseif kind == 'conc' then
    redis.call('ZREMRANGEBYSCORE', a, '-inf', now)
    return redis.call('ZCARD', a), 1000
  end
  return tonumber(redis.call('GET', a) or '0'), math.max(reset - now, 0)
end
local function cost(kind)
  if kind == 'rpm' or kind == 'conc' then return 1 end
  return tokens
end
local figures = {1}
for i = 1, n do
  local kind, limit, reset = ARGV[3 * i + 2], tonumber(ARGV[3 * i + 3]), tonumber(ARGV[3 * i + 4])
  local current, wait = state(kind, KEYS[2 * i], KEYS[2 * i + 1], reset)
  if mode == 'reserve' and current + cost(kind) > limit then
    return {0, i, math.max(wait, 1)}
  end
  local after = current
  if mode == 'reserve' then after = current + cost(kind) end
  table.insert(figures, math.max(limit - after, 0))
  if kind == 'rpm' or kind == 'tpm' then
    if mode == 'reserve' and current == 0 then wait = 60000 end
  end
  table.insert(figures, wait)
end
if mode ~= 'reserve' then return figures end
redis.call('ZADD', KEYS[1], now, job)
for i = 1, n do
  local kind, reset = ARGV[3 * i + 2], tonumber(ARGV[3 * i + 4])
  local a, b = KEYS[2 * i], KEYS[2 * i + 1]
  if kind == 'rpm' then
    redis.call('ZADD', a, now, job)
    redis.call('PEXPIRE', a, 61000)
  elseif kind == 'tpm' then
    redis.call('ZADD', a, now, job)
    redis.call('HSET', b, job, tokens)
    redis.call('HINCRBY', b, '_total', tokens)
    redis.call('PEXPIRE', a, 61000)
    redis.call('PEXPIRE', b, 61000)
  elseif kind == 'conc' then
    redis.call('ZADD', a, now + lease, job)
    redis.call('PEXPIRE', a, lease + 60000)
  else
    redis.call('INCRBY', a, tokens)
    redis.call('PEXPIREAT', a, reset + 86400000)
  end
end
return figures
"""

SETTLE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local job, reserved, used, mode = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = 1, #ARGV - 4 do
  local kind, a, b = ARGV[4 + i], KEYS[2 * i], KEYS[2 * i + 1]
  if kind == 'rpm' then
    if mode == 'release' then redis.call('ZREM', a, job) end
  elseif kind == 'tpm' then
    local held = redis.call('HGET', b, job)
    if held then
      redis.call('HSET', b, job, used)
      redis.call('HINCRBY', b, '_total', used - tonumber(held))
      if mode == 'release' then
        redis.call('HDEL', b, job)
        redis.call('ZREM', a, job)
      end
    end
  elseif kind == 'conc' then
    redis.call('ZREM', a, job)
  elseif redis.call('EXISTS', a) == 1 then
    redis.call('INCRBY', a, used - reserved)
  end
end
return 1
"""


class Limiter:
    """The scripts, bound to one Redis client."""

    def __init__(self, redis: Any, *, slot_lease_seconds: float) -> None:
        self.redis = redis
        self.lease_ms = int(slot_lease_seconds * 1000)
        self._reserve = redis.register_script(RESERVE)
        self._settle = redis.register_script(SETTLE)

    def reserve(self, job_id: str, tokens: int, checks: list[Check]) -> list[Figure] | Refused:
        """Charge every check or none: the figures after charging, or the check that refused."""
        out = self._run("reserve", job_id, tokens, checks)
        if out[0] == 0:
            return Refused(checks[int(out[1]) - 1], int(out[2]))
        return figures(checks, out)

    def peek(self, checks: list[Check]) -> list[Figure]:
        """The figures now, charging nothing."""
        return figures(checks, self._run("peek", "", 0, checks)) if checks else []

    def settle(self, job_id: str, reservation: Reservation, used_tokens: int) -> bool:
        """Give back the reserved tokens beyond `used_tokens` (or charge the extra) and free
        the job's slot; True the first time, False if it was already settled."""
        return self._finish("settle", job_id, reservation, used_tokens)

    def release(self, job_id: str, reservation: Reservation) -> bool:
        """Undo the reservation entirely (its request too): no job was written."""
        return self._finish("release", job_id, reservation, 0)

    def pending(self, older_than_seconds: float, limit: int) -> list[str]:
        """Job ids reserved more than `older_than_seconds` ago and not yet settled."""
        now_s, now_us = self.redis.time()
        cutoff = now_s * 1000 + now_us // 1000 - int(older_than_seconds * 1000)
        raw = self.redis.zrangebyscore(keys.LIMIT_PENDING, "-inf", cutoff, start=0, num=limit)
        return [r.decode() if isinstance(r, bytes) else r for r in raw]

    def _run(self, mode: str, job_id: str, tokens: int, checks: list[Check]) -> list[int]:
        argv: list[Any] = [mode, job_id, tokens, self.lease_ms]
        redis_keys = [keys.LIMIT_PENDING]
        for check in checks:
            argv += [check.kind, check.limit, check.reset_ms]
            redis_keys += list(check.keys)
        return [int(x) for x in self._reserve(keys=redis_keys, args=argv)]

    def _finish(self, mode: str, job_id: str, reservation: Reservation, used: int) -> bool:
        redis_keys = [keys.LIMIT_PENDING]
        for check in reservation.checks:
            redis_keys += list(check.keys)
        argv = [job_id, reservation.tokens, used, mode, *(c.kind for c in reservation.checks)]
        return bool(self._settle(keys=redis_keys, args=argv))


def figures(checks: list[Check], out: list[int]) -> list[Figure]:
    return [Figure(c, out[1 + 2 * i], out[2 + 2 * i]) for i, c in enumerate(checks)]
