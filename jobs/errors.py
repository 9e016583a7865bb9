"""What submitting, reading or cancelling a job can refuse; `api.errors` maps each to HTTP."""

from __future__ import annotations

from typing import Any


class JobError(Exception):
    code = "job_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class JobNotFound(JobError):
    code = "job_not_found"


class JobNotCancellable(JobError):
    code = "job_not_cancellable"


class IdempotencyKeyReused(JobError):
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(JobError):
    code = "idempotency_key_in_use"


class QueueUnavailable(JobError):
    code = "queue_unavailable"


class InvalidCursor(JobError):
    code = "invalid_cursor"


class BatchNotFound(JobError):
    code = "batch_not_found"


class BatchNotCancellable(JobError):
    code = "batch_not_cancellable"


class InvalidBatch(JobError):
    """The batch file has malformed lines (`details["lines"]`: each line's number and why)."""

    code = "invalid_batch"
