"""The Celery shim: `make_celery(settings)` for the worker, beat and Flower commands."""

from __future__ import annotations

from celery import Celery

from llmgw.container import Container
from llmgw.settings import Settings


def make_celery(settings: Settings) -> Celery:
    return Container(settings).celery
