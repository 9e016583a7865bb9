"""The job's statuses and the attempt outcomes: closed sets, safe as metric labels."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    # The answer was cut by max_tokens: kept, since the caller asked for the cut.
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A job ends in exactly one of these; ACTIVE are the only other states.
TERMINAL = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.INCOMPLETE, JobStatus.FAILED, JobStatus.CANCELLED}
)
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
# The terminal states that carry an answer.
ANSWERED = frozenset({JobStatus.SUCCEEDED, JobStatus.INCOMPLETE})


class AttemptOutcome(StrEnum):
    # Written before the call goes out, so the log shows every call the provider may have
    # received; completed as one of the others, or `lost` if its worker died.
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"
    # A candidate passed over without a call (circuit open, window too small).
    SKIPPED = "skipped"
