"""Queue topology: one Celery queue per provider and version channel."""

from __future__ import annotations

from kombu import Queue

from providers.registry import PROVIDERS
from routing.model_id import CHANNELS, queue_name

MAINTENANCE_QUEUE = "llmgw.maintenance"


def all_queue_names() -> list[str]:
    """Every provider queue, plus the maintenance queue of periodic jobs (the sweeper)."""
    names = [queue_name(provider, channel) for provider in PROVIDERS for channel in CHANNELS]
    return [*names, MAINTENANCE_QUEUE]


def task_queues() -> tuple[Queue, ...]:
    return tuple(Queue(name, routing_key=name) for name in all_queue_names())
