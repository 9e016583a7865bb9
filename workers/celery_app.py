"""The Celery app factory. Settings and their reasons: docs/architecture.md, section Workers."""

from __future__ import annotations

from celery import Celery

from llmgw.runtime import Runtime
from llmgw.settings import Settings
from workers.queues import MAINTENANCE_QUEUE, task_queues

# Longer than the longest time a message sits unacked: a provider call (read timeout)
# plus the largest retry countdown. Shorter would run jobs twice; longer slows recovery.
VISIBILITY_TIMEOUT = 1800


def make_celery(settings: Settings, *, runtime: Runtime | None = None) -> Celery:
    app = Celery("llmgw", broker=settings.redis_url, set_as_current=False)
    app.llmgw_runtime = runtime or Runtime(settings)  # type: ignore[attr-defined]
    transport = {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        visibility_timeout=VISIBILITY_TIMEOUT,
        task_ignore_result=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        task_queues=task_queues(),
        task_default_queue="llmgw.default",
        task_create_missing_queues=True,
        broker_pool_limit=settings.worker_concurrency,
        beat_schedule={
            "sweep-stranded-jobs": {
                "task": "llmgw.sweep",
                "schedule": settings.sweeper_interval_seconds,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "expires": settings.sweeper_interval_seconds,
                },
            }
        },
    )
    from workers.tasks import register_tasks

    register_tasks(app)
    return app
