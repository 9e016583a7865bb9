"""Beat schedules the callback delivery on the maintenance queue. (That a worker has the
task is shown by tests/integration/test_callbacks.py: finalizing a Celery app here would
evaluate every shared task other tests registered in this process.)"""

from __future__ import annotations

from jobs.dispatch import DELIVER_CALLBACKS_TASK
from workers.celery_app import CeleryConfig, celery_settings
from workers.queues import MAINTENANCE_QUEUE


def test_beat_runs_the_callback_delivery_at_its_interval():
    schedule = celery_settings(CeleryConfig(None, callback_interval_seconds=7.0))["beat_schedule"]
    entry = schedule["deliver-callbacks"]
    assert entry["task"] == DELIVER_CALLBACKS_TASK and entry["schedule"] == 7.0
    assert entry["options"]["queue"] == MAINTENANCE_QUEUE
