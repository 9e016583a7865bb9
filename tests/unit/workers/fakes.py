"""Providers the workers' unit tests call instead of a real one, and what they read back."""

from __future__ import annotations

from sqlalchemy import select

from providers.base import CompletionResult, Usage
from storage.models import Attempt, Job


class AnsweringProvider:
    """Answers every request at once: `hi`, with the given token counts."""

    def __init__(self, prompt: int = 1, completion: int = 1) -> None:
        self.usage = Usage(prompt, completion, prompt + completion)

    def complete(self, request):
        return CompletionResult("hi", "stop", self.usage, "v1", request.upstream_model)


def attempt_rows(runtime, job_id) -> list[tuple[int, str]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(Attempt.number, Attempt.outcome)
            .where(Attempt.job_id == job_id)
            .order_by(Attempt.number)
        )
        return [tuple(row) for row in rows]


class SeeingProvider:
    """Reads, from its own session, what the database holds when the call goes out (and how
    many commits a test's listener had counted in `commits` by then)."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime
        self.seen: list = []

    def complete(self, request):
        with self.runtime.sessions() as session:
            status = session.scalar(select(Job.status).where(Job.id == request.request_id))
        self.seen.append((status, attempt_rows(self.runtime, request.request_id)))
        self.commits_before_call = len(getattr(self, "commits", []))
        return CompletionResult("hi", "stop", Usage(1, 1, 2), "v1", request.upstream_model)
