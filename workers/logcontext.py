"""The job id in every log line written while a task runs on its behalf.

A context variable (each worker thread has its own) and a logging filter that copies it onto
records as `job_id`; the worker's log format shows it. Outside a task it is `-`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_JOB_ID: ContextVar[str] = ContextVar("llmgw_job_id", default="-")


@contextmanager
def bound_job(job_id: str) -> Iterator[None]:
    token = _JOB_ID.set(job_id)
    try:
        yield
    finally:
        _JOB_ID.reset(token)


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = _JOB_ID.get()
        return True
