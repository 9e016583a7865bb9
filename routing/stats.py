"""Evidence for promotion: per-version figures from the jobs, attempts and feedback tables.

For one model channel over a window (default 7 days): jobs routed to it, attempts made on
it, their error rate and latency (p50, p95), jobs that fell back away from it, the provider
versions actually served, and the clients' feedback (count, mean score). `compare` puts
two channels side by side (`llmgw models compare yandexgpt rc latest`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from routing.errors import UnknownChannel
from routing.ops import find_model
from storage.models import Attempt, Job, JobFeedback, utcnow

DEFAULT_DAYS = 7
MAX_LATENCIES = 50_000


def compare(
    session: Session, model: str, channels: list[str], *, days: float = DEFAULT_DAYS
) -> dict[str, Any]:
    entry = find_model(session, model)
    known = [v.channel for v in entry.versions]
    for channel in channels:
        if channel not in known:
            raise UnknownChannel(f"Model {entry.name!r} has no channel {channel!r}.", choices=known)
    since = utcnow() - timedelta(days=days)
    return {
        "model": entry.name,
        "since": since.isoformat(),
        "days": days,
        "versions": [version_stats(session, entry.name, ch, since) for ch in channels],
    }


def version_stats(session: Session, model: str, channel: str, since: datetime) -> dict[str, Any]:
    here = and_(Attempt.model == model, Attempt.channel == channel, Attempt.started_at >= since)
    attempts = session.execute(
        select(Attempt.outcome, func.count()).where(here).group_by(Attempt.outcome)
    ).all()
    counts = {outcome: n for outcome, n in attempts if outcome != "started"}  # in flight
    total = sum(counts.values())
    failed = total - counts.get("succeeded", 0)
    latencies = sorted(session.scalars(select(Attempt.latency_ms).where(here).limit(MAX_LATENCIES)))
    return {
        "model_id": f"{model}:{channel}",
        "jobs": _jobs(session, model, channel, since),
        "fallbacks": _fallbacks(session, model, channel, since),
        "attempts": total,
        "failed_attempts": failed,
        "error_rate": round(failed / total, 4) if total else None,
        "latency_ms": {"p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95)},
        "served_versions": _served_versions(session, here),
        "feedback": _feedback(session, model, channel, since),
    }


def _jobs(session: Session, model: str, channel: str, since: datetime) -> int:
    routed = and_(Job.model == model, Job.channel == channel, Job.created_at >= since)
    return session.scalar(select(func.count()).select_from(Job).where(routed)) or 0


def _fallbacks(session: Session, model: str, channel: str, since: datetime) -> int:
    """Jobs routed here that made at least one attempt on another version."""
    other = aliased(Attempt)
    elsewhere = exists().where(
        other.job_id == Job.id, (other.model != model) | (other.channel != channel)
    )
    routed = and_(Job.model == model, Job.channel == channel, Job.created_at >= since)
    return session.scalar(select(func.count()).select_from(Job).where(routed, elsewhere)) or 0


def _served_versions(session: Session, here) -> dict[str, int]:  # noqa: ANN001 - SQL clause
    rows = session.execute(
        select(Attempt.model_version, func.count())
        .where(here, Attempt.model_version.is_not(None))
        .group_by(Attempt.model_version)
        .order_by(func.count().desc())
        .limit(5)
    ).all()
    return {str(version): n for version, n in rows}


def _feedback(session: Session, model: str, channel: str, since: datetime) -> dict[str, Any]:
    """Feedback on jobs whose answer this version gave (its succeeded attempt)."""
    served = and_(
        Attempt.job_id == JobFeedback.job_id,
        Attempt.outcome == "succeeded",
        Attempt.model == model,
        Attempt.channel == channel,
    )
    count, mean = session.execute(
        select(func.count(), func.avg(JobFeedback.score))
        .select_from(JobFeedback)
        .join(Attempt, served)
        .where(JobFeedback.created_at >= since)
    ).one()
    return {"count": count, "mean_score": round(float(mean), 3) if mean is not None else None}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)
