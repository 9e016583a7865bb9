"""Beat schedules the callback delivery on the maintenance queue, and the task is registered."""

from __future__ import annotations

from jobs.dispatch import DELIVER_CALLBACKS_TASK
from workers.celery_app import CeleryConfig, celery_settings, configure_celery
from workers.queues import MAINTENANCE_QUEUE


def test_beat_runs_the_callback_delivery_at_its_interval():
    schedule = celery_settings(CeleryConfig(None, callback_interval_seconds=7.0))["beat_schedule"]
    entry = schedule["deliver-callbacks"]
    assert entry["task"] == DELIVER_CALLBACKS_TASK and entry["schedule"] == 7.0
    assert entry["options"]["queue"] == MAINTENANCE_QUEUE


def test_the_delivery_task_is_registered():
    app = configure_celery(CeleryConfig("memory://"), context=lambda: None)  # type: ignore[arg-type,return-value]
    assert DELIVER_CALLBACKS_TASK in app.tasks
