"""The Celery app: broker settings, queue topology, the beat schedule and the tasks.

Settings and their reasons: docs/architecture.md, section Workers. The composition root
(`llmgw.celery`) calls `configure_celery` with plain values and a factory of the process's
`WorkerContext`, which the tasks reach through the app (`app.llmgw_context()`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    task_postrun,
    task_received,
    task_revoked,
    worker_init,
    worker_shutdown,
)

from workers.context import WorkerContext
from workers.kombu_fixes import patch_closed_channel
from workers.logcontext import JobIdFilter
from workers.queues import MAINTENANCE_QUEUE, task_queues
from workers.tasks import (
    DELIVER_CALLBACKS_TASK,
    FEED_BATCHES_TASK,
    RUN_JOB_TASK,
    SWEEP_TASK,
    register_tasks,
)

# Longer than the longest time a message sits unacked: a provider call (read timeout)
# plus the largest retry countdown. Shorter would run jobs twice; longer slows recovery.
VISIBILITY_TIMEOUT = 1800
# How long a running thread keeps the GIL before handing it on (Python's default: 5 ms). A
# worker is hundreds of threads waiting on sockets; the one consumer thread that takes every
# message waits for the GIL after each of its Redis round trips, so at 5 ms it capped how fast
# messages were taken. 1 ms: +20 % drain rate measured (docs/performance.md, round 2).
GIL_SWITCH_INTERVAL = 0.001
LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] job=%(job_id)s %(name)s: %(message)s"


@dataclass(frozen=True)
class CeleryConfig:
    broker_url: str | None
    concurrency: int = 100
    sweeper_interval_seconds: float = 60.0
    batch_feeder_interval_seconds: float = 5.0
    callback_interval_seconds: float = 5.0


def configure_celery(config: CeleryConfig, context: Callable[[], WorkerContext]) -> Celery:
    patch_closed_channel()
    app = Celery("llmgw", broker=config.broker_url, set_as_current=False)
    app.llmgw_context = context  # type: ignore[attr-defined]
    app.conf.update(celery_settings(config))
    register_tasks(app)
    after_setup_logger.connect(_add_job_id, weak=False, dispatch_uid="llmgw-job-id")
    connect_held_messages()
    worker_init.connect(_worker_starting, weak=False, dispatch_uid="llmgw-worker-starting")
    return app


def _worker_starting(sender: Any = None, **_: Any) -> None:
    """Build the worker's context before the consumer starts: built lazily, it took the
    first message's turn on the consumer thread (~0.5 s of imports and connections during
    which no message was taken). And hand the GIL on sooner (`GIL_SWITCH_INTERVAL`)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    app = getattr(sender, "app", None)
    context = getattr(app, "llmgw_context", None)
    if context is not None:
        context()


def connect_held_messages() -> None:
    """Record each run_job message a worker takes and drops (`workers.held`)."""
    task_received.connect(_received, weak=False, dispatch_uid="llmgw-held-received")
    task_revoked.connect(_dropped, weak=False, dispatch_uid="llmgw-held-revoked")
    task_postrun.connect(_ran, weak=False, dispatch_uid="llmgw-held-ran")
    worker_shutdown.connect(_shutdown, weak=False, dispatch_uid="llmgw-held-shutdown")


def _held(app: Any) -> Any:
    context = getattr(app, "llmgw_context", None)
    return context().held if context is not None else None


def _received(request: Any = None, **_: Any) -> None:
    if request is None or request.name != RUN_JOB_TASK or not request.args:
        return
    held = _held(request.task.app)
    if held is not None:
        retries = int(request.request_dict.get("retries") or 0)
        held.received(request.id, retries, str(request.args[0]))


def _dropped(request: Any = None, **_: Any) -> None:  # revoked or expired before it ran
    if request is None or request.name != RUN_JOB_TASK:
        return
    held = _held(request.task.app)
    if held is not None:
        held.released(request.id, int(request.request_dict.get("retries") or 0))


def _ran(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    if sender is None or task_id is None or sender.name != RUN_JOB_TASK:
        return
    held = _held(sender.app)
    if held is not None:
        held.released(task_id, int(sender.request.retries or 0))


def _shutdown(sender: Any = None, **_: Any) -> None:
    held = _held(getattr(sender, "app", None))
    if held is not None:
        held.forget()


def celery_settings(config: CeleryConfig) -> dict[str, Any]:
    transport = {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }
    return {
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # The threads pool cannot cancel a running task (`TaskPool does not implement
        # kill_job` when this is on); a redelivered message is harmless (atomic claims).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport,
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "task_ignore_result": True,
        # Task events cost a Redis publish per state change of every task, so they are off
        # unless someone watches: Flower asks every worker to turn them on (enable_events)
        # when it starts and every few seconds after. No `task-sent` events at publication.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "worker_log_format": LOG_FORMAT,
        "task_queues": task_queues(),
        "task_default_queue": "llmgw.default",
        "task_create_missing_queues": True,
        "broker_pool_limit": config.concurrency,
        "beat_schedule": {
            "sweep-stranded-jobs": {
                "task": SWEEP_TASK,
                "schedule": config.sweeper_interval_seconds,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "expires": config.sweeper_interval_seconds,
                },
            },
            "feed-batches": {
                "task": FEED_BATCHES_TASK,
                "schedule": config.batch_feeder_interval_seconds,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "expires": config.batch_feeder_interval_seconds,
                },
            },
            "deliver-callbacks": {
                "task": DELIVER_CALLBACKS_TASK,
                "schedule": config.callback_interval_seconds,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "expires": config.callback_interval_seconds,
                },
            },
        },
    }


def _add_job_id(logger: logging.Logger, **_: Any) -> None:
    for handler in logger.handlers:
        handler.addFilter(JobIdFilter())
