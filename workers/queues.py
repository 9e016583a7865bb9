"""Queue topology: one Celery queue per provider and version channel."""

from __future__ import annotations

from typing import Any

from kombu import Queue
from kombu.transport.redis import Channel as RedisChannel

from providers.registry import PROVIDERS
from routing.model_id import CHANNELS, queue_name

MAINTENANCE_QUEUE = "llmgw.maintenance"


def all_queue_names() -> list[str]:
    """Every provider queue, plus the maintenance queue of periodic jobs (the sweeper)."""
    names = [queue_name(provider, channel) for provider in PROVIDERS for channel in CHANNELS]
    return [*names, MAINTENANCE_QUEUE]


def task_queues() -> tuple[Queue, ...]:
    return tuple(Queue(name, routing_key=name) for name in all_queue_names())


def priority_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps for one queue: the bare name (priority step 0) and
    `<queue>\\x06\\x16<step>` per further step (`Channel._q_for_pri`)."""
    sep, steps = RedisChannel.sep, RedisChannel.priority_steps
    return [f"{queue}{sep}{step}" if step else queue for step in steps]


def waiting_messages(redis: Any, queue: str) -> int:
    """Messages waiting in a queue (all priority lists); prefetched ones are not waiting."""
    pipe = redis.pipeline(transaction=False)
    for name in priority_lists(queue):
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())
