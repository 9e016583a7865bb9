"""The resolution cache: the catalogue snapshot in Redis and in-process, keyed by a version.

Redis keys (built in `storage.keys`):
- `llmgw:catalogue:version` — integer, no TTL: bumped (INCR) after every committed catalogue
  change (`bump_catalogue_version`); read once per request.
- `llmgw:catalogue:snapshot:<version>` — string, JSON of `Catalogue.to_json()`, TTL 60 s:
  the snapshot loaded from the database under that version.

Per request a process reads the version (one GET). If it matches its in-process snapshot
(and that is younger than `local_ttl`, 5 s) resolution runs in memory; else it takes the
Redis snapshot of that version, or loads the database and stores it there. A change is
therefore seen by the next request of every process; a change made without a bump (Redis
unreachable from the CLI, a hand edit) within `local_ttl` + the snapshot TTL. If Redis is
down, resolution reads the database. The bump comes after the commit, so a snapshot stored
under the new version can never hold the old catalogue (one stored under the old version
may hold the new one, which is harmless).

Within one request (`snapshot_scope`, entered by the API for every request) the first read
is kept: a sync request resolved its model up to five times (the tokenizer, the plan, the
route check, the claim and the price of an inline run), each a version GET, 15 % of the
request's API time. A bump in the same thread (an admin change) clears the kept snapshot.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker

from routing.plan import FallbackPlan, FallbackPolicy, plan_in
from routing.service import Route, resolve_in
from routing.snapshot import Catalogue, load_catalogue
from storage import keys

log = logging.getLogger(__name__)
VERSION_KEY = keys.CATALOGUE_VERSION
SNAPSHOT_TTL_SECONDS = 60
LOCAL_TTL_SECONDS = 5.0
# Per resolver (by id), the snapshot read first in the current scope; None: no scope.
_kept: ContextVar[dict[int, Catalogue] | None] = ContextVar("llmgw_catalogue_kept", default=None)


def bump_catalogue_version(client: redis.Redis) -> int:
    """Tell every process the catalogue changed; call after the change is committed."""
    kept = _kept.get()
    if kept is not None:
        kept.clear()
    return int(client.incr(VERSION_KEY))


@contextmanager
def snapshot_scope() -> Iterator[None]:
    """Every `Resolver.catalogue()` of this context inside the block returns the first one's
    snapshot (one version GET per request instead of one per resolution)."""
    token = _kept.set({})
    try:
        yield
    finally:
        _kept.reset(token)


def begin_snapshot_scope() -> None:
    """`snapshot_scope` for hooks that cannot wrap a block (the API's per-request hooks)."""
    _kept.set({})


def end_snapshot_scope() -> None:
    _kept.set(None)


class Resolver:
    """Cached `resolve` and `plan` for one process (thread-safe)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: redis.Redis,
        *,
        local_ttl: float = LOCAL_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions, self.redis = sessions, client
        self.local_ttl, self.clock = local_ttl, clock
        self._local: tuple[str, float, Catalogue] | None = None

    def resolve(self, model_id: str) -> Route:
        return resolve_in(self.catalogue(), model_id)

    def plan(
        self, model_id: str, policy: FallbackPolicy | None = None, **kwargs: Any
    ) -> FallbackPlan:
        """`routing.plan.plan_in` on the cached snapshot (kwargs: estimated_tokens, breaker)."""
        return plan_in(self.catalogue(), model_id, policy, **kwargs)

    def catalogue(self) -> Catalogue:
        kept = _kept.get()
        if kept is None:
            return self._catalogue()
        catalogue = kept.get(id(self))
        if catalogue is None:
            catalogue = kept[id(self)] = self._catalogue()
        return catalogue

    def _catalogue(self) -> Catalogue:
        try:
            raw = self.redis.get(VERSION_KEY) or b"0"
        except redis.RedisError:
            log.warning("catalogue version unreadable; resolving from the database")
            return self._load("db")
        stamp = raw.decode() if isinstance(raw, bytes) else str(raw)
        local = self._local
        if local and local[0] == stamp and self.clock() - local[1] < self.local_ttl:
            return local[2]
        catalogue = self._from_redis(stamp) or self._load_and_store(stamp)
        self._local = (stamp, self.clock(), catalogue)
        return catalogue

    def _from_redis(self, stamp: str) -> Catalogue | None:
        raw = self.redis.get(keys.catalogue_snapshot(stamp))
        return Catalogue.from_json(json.loads(raw)) if raw else None

    def _load_and_store(self, stamp: str) -> Catalogue:
        catalogue = self._load(stamp)
        payload = json.dumps(catalogue.to_json(), ensure_ascii=False)
        self.redis.set(keys.catalogue_snapshot(stamp), payload, ex=SNAPSHOT_TTL_SECONDS)
        return catalogue

    def _load(self, stamp: str) -> Catalogue:
        with self.sessions() as session:
            return load_catalogue(session, stamp=stamp)
