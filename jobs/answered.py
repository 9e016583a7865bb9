"""A sync request's answer, as the commit that ended its job wrote it.

`POST /v1/chat/completions` answers from a job that has ended with an answer (succeeded, or
incomplete: `finish_reason` length). Run in the API thread (`workers.inline`), the run that
ends the job holds everything the answer shows — the route, the spec (warnings, deprecation
headers), the result it has just committed — so `Answered.of_first_call` builds it from
that, and the view needs no read-back of the job and its attempts. Only for a job inserted
already claimed by this process (`jobs.lifecycle.create_running`) and ended by its first
call: it has then exactly one attempt and no fallback hop, which is what the headers count.
Any other end (a retry, a move, a queued run, an `Idempotency-Key` replay) is read back,
through `Answered.of_job`, so both paths build the body and headers from the same value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.lifecycle import Claimed
from jobs.spec import JobSpec
from storage.models import Job


@dataclass(frozen=True)
class Answered:
    """What the answer of an ended job shows: its route, the count of calls and hops, what
    its spec warns of, and the `result` as committed (the dict stored in `jobs.result`)."""

    job_id: str
    status: str
    model_requested: str
    provider: str
    model: str
    channel: str
    created_at: datetime
    calls: int
    fallbacks: int
    result: dict[str, Any]
    warnings: list[dict[str, str]]
    deprecation_headers: dict[str, str]

    @classmethod
    def of_job(cls, job: Job) -> Answered:
        """Read back: a job row with its attempts loaded and a result."""
        assert job.result is not None
        spec = JobSpec.load(job.request)
        return cls(
            job_id=job.id,
            status=job.status,
            model_requested=job.model_requested,
            provider=job.provider,
            model=job.model,
            channel=job.channel,
            created_at=job.created_at,
            calls=sum(1 for attempt in job.attempts if attempt.outcome != "skipped"),
            fallbacks=len(job.fallbacks or []),
            result=job.result,
            warnings=spec.warnings,
            deprecation_headers=spec.deprecation_headers,
        )

    @classmethod
    def of_first_call(
        cls, claimed: Claimed, status: str, result: dict[str, Any]
    ) -> Answered | None:
        """From the run that has just committed `result` as the end of `claimed`, when that
        is the first call of a job inserted already claimed (one attempt, no hop); None
        otherwise (the caller reads the job back)."""
        if claimed.created_at is None or claimed.number != 1:
            return None
        return cls(
            job_id=claimed.job_id,
            status=status,
            model_requested=claimed.spec.model,
            provider=claimed.provider,
            model=claimed.model,
            channel=claimed.channel,
            created_at=claimed.created_at,
            calls=1,
            fallbacks=0,
            result=result,
            warnings=claimed.spec.warnings,
            deprecation_headers=claimed.spec.deprecation_headers,
        )


@dataclass(frozen=True)
class Ran:
    """What a run in the submitting process left: `ended` (committed: nothing to wait for)
    and, when it ended the job with an answer it holds, that answer."""

    ended: bool
    answered: Answered | None = None
