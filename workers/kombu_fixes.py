"""A patch around a kombu 5.x bug that makes a Redis crash kill the worker.

When the broker connection is lost, the consumer closes its channel; the Redis channel drops
its connection pools, and whatever needs Redis on that channel afterwards — restoring its
unacknowledged messages while closing, or a task that finishes later acknowledging its
message — builds a new pool from a connection that is already gone:
`AttributeError: 'NoneType' object has no attribute 'hostname'` (or `... 'client'`) in
`Channel._connparams`. Celery treats an AttributeError as unrecoverable and the worker exits
(seen here with kombu 5.7.0 every time Redis was SIGKILLed under load; the same trace is in
celery/kombu#582 and #970).

The patch makes a closed channel raise a connection error instead, which kombu and Celery
already handle as one: the close goes on, a late acknowledgement is logged, and the worker
reconnects. The messages concerned stay in Redis's `unacked` hash (kept across a restart by
the AOF) and kombu restores them after the visibility timeout; a redelivered message whose
job has ended claims nothing, and llmgw's sweeper re-runs a job left `running` sooner (its
lease). Applied by `workers.celery_app.configure_celery`; idempotent.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


def patch_closed_channel() -> None:
    original = kombu_redis.Channel._connparams
    if getattr(original, "llmgw_patched", False):
        return

    def _connparams(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self.connection, "client", None) is None:
            raise redis.exceptions.ConnectionError("the broker channel is closed")
        return original(self, *args, **kwargs)

    _connparams.llmgw_patched = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]
