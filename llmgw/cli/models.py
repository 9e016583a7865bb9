"""`llmgw models …`: the version catalogue from the command line (audited as `cli:<user>`)."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from typing import Any

import click

from llmgw.cli.context import DataGroup, container, redis_or_none

STALE_CACHES = "running gateways see the change within ~65 s"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _fail_on_routing_errors(fn):  # noqa: ANN001, ANN202 - a click callback
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from routing.errors import RoutingError

        try:
            return fn(*args, **kwargs)
        except RoutingError as exc:
            choices = f" Choices: {', '.join(exc.choices)}." if exc.choices else ""
            raise click.ClickException(exc.message + choices) from exc

    return wrapper


def _apply(ctx: click.Context, op_name: str, *args: Any, **kwargs: Any) -> None:
    from routing import ops

    resources = container(ctx)
    op = getattr(ops, op_name)
    event = ops.apply_op(
        resources.sessions, redis_or_none(resources), op, *args, actor=_actor(), **kwargs
    )
    if not event["cache_invalidated"]:
        click.echo(f"warning: Redis not reachable; {STALE_CACHES}", err=True)
    _echo_event(event)


def _echo_event(event: dict[str, Any]) -> None:
    reason = f" ({event['reason']})" if event["reason"] else ""
    click.echo(
        f"event {event['id']}: {event['action']} {event['model']} by {event['actor']}{reason}"
    )
    if "channels" not in event["after"]:
        click.echo(f"  {event['before']} → {event['after']}")
        return
    before = {c["channel"]: c for c in event["before"]["channels"]}
    for row in event["after"]["channels"]:
        old = before.get(row["channel"])
        if old != row:
            was = f"{old['upstream_id']} {old['status']}" if old else "(none)"
            sunset = f" sunset {row['sunset_at'][:10]}" if row["sunset_at"] else ""
            click.echo(f"  {row['channel']}: {was} → {row['upstream_id']} {row['status']}{sunset}")


@click.group(cls=DataGroup)
def models() -> None:
    """The model version catalogue: list, inspect, promote, deprecate, retire, pin, compare."""


@models.command("seed")
@click.pass_context
def models_seed(ctx: click.Context) -> None:
    """Add the built-in catalogue's models and channels that the database lacks."""
    from routing.catalogue import seed_catalogue

    resources = container(ctx)
    with resources.sessions() as session:
        added = seed_catalogue(session)
        session.commit()
    click.echo(f"catalogue seeded: {added} new rows")
    _bump_catalogue_version(resources)


def _bump_catalogue_version(resources: Any) -> None:  # llmgw.cli.context.container's value
    """Make every running process reload the catalogue now, not after its cache expires."""
    import redis

    from routing.cache import bump_catalogue_version

    client = redis_or_none(resources)
    if client is None:
        click.echo(f"warning: no Redis configured; {STALE_CACHES}", err=True)
        return
    try:
        bump_catalogue_version(client)
    except redis.RedisError:
        click.echo(f"warning: Redis not reachable; {STALE_CACHES}", err=True)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the admin API's JSON")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """List models and their channels: id, provider, upstream id, version, status, sunset."""
    from routing.snapshot import load_catalogue

    with container(ctx).sessions() as session:
        catalogue = load_catalogue(session)
    entries = sorted(catalogue.models.values(), key=lambda m: m.name.lower())
    if as_json:
        from routing.views import model_detail

        click.echo(json.dumps([model_detail(m) for m in entries], ensure_ascii=False, indent=2))
        return
    for model in entries:
        for v in model.versions:
            sunset = f"\tsunset {v.sunset_at:%Y-%m-%d}" if v.sunset_at else ""
            click.echo(
                f"{model.name}:{v.channel}\t{model.provider}\t{v.upstream_id}"
                f"\t{v.version or '-'}\t{v.status}{sunset}"
            )


@models.command("show")
@click.argument("model")
@click.pass_context
@_fail_on_routing_errors
def models_show(ctx: click.Context, model: str) -> None:
    """A model's channels, known versions, policy and recent catalogue events."""
    from routing.snapshot import load_catalogue
    from routing.views import model_detail, recent_events

    with container(ctx).sessions() as session:
        entry = load_catalogue(session).find(model)
        detail = {**model_detail(entry), "events": recent_events(session, entry.name, limit=10)}
    click.echo(json.dumps(detail, ensure_ascii=False, indent=2))


@models.command("resolve")
@click.argument("model_id")
@click.option("--cross-provider", is_flag=True, help="allow other providers' equivalents")
@click.option("--fallback", multiple=True, help="a client fallback model id (repeatable)")
@click.option("--estimated-tokens", type=int, default=None)
@click.option(
    "--feature",
    "features",
    multiple=True,
    type=click.Choice(["stream", "tools", "json_object", "json_schema"]),
    help="a feature the request would use (repeatable): skip versions without it",
)
@click.pass_context
@_fail_on_routing_errors
def models_resolve(ctx, model_id, cross_provider, fallback, estimated_tokens, features) -> None:  # noqa: ANN001
    """Dry-run: the route and fallback plan for MODEL_ID (circuits are not consulted)."""
    from routing.plan import FallbackPolicy, Requirement, plan

    policy = FallbackPolicy(cross_provider=cross_provider, explicit=tuple(fallback))
    needs = tuple(Requirement(name, name) for name in features)
    with container(ctx).sessions() as session:
        result = plan(
            session, model_id, policy, estimated_tokens=estimated_tokens, requirements=needs
        )
    for c in result.candidates:
        click.echo(f"try  {c.route.model_id}\t{c.route.upstream_id}\t{c.route.queue}\t{c.reason}")
    for s in result.skipped:
        click.echo(f"skip {s.route.model_id}\t{s.reason}: {s.detail}")


@models.command("promote")
@click.argument("model")
@click.option("--deprecation-days", type=int, default=None, help="old latest's sunset delay")
@click.option("--reason", default=None)
@click.pass_context
@_fail_on_routing_errors
def models_promote(ctx, model, deprecation_days, reason) -> None:  # noqa: ANN001
    """Promote MODEL's rc to latest; the old latest becomes deprecated with a sunset date."""
    _apply(ctx, "promote", model, deprecation_days=deprecation_days, reason=reason)


@models.command("rollback")
@click.argument("model")
@click.option("--reason", default=None)
@click.pass_context
@_fail_on_routing_errors
def models_rollback(ctx: click.Context, model: str, reason: str | None) -> None:
    """Undo MODEL's last promote (only while nothing else changed since)."""
    _apply(ctx, "rollback", model, reason=reason)


@models.command("deprecate")
@click.argument("target")
@click.option("--sunset", type=click.DateTime(), default=None, help="default: policy days ahead")
@click.option("--successor", default=None, help="model id served after the sunset")
@click.option("--reason", default=None)
@click.pass_context
@_fail_on_routing_errors
def models_deprecate(ctx, target, sunset: datetime | None, successor, reason) -> None:  # noqa: ANN001
    """Deprecate TARGET: `<model>:<channel>`, or `<model>` for all its channels."""
    _apply(ctx, "deprecate", target, sunset_at=sunset, successor=successor, reason=reason)


@models.command("retire")
@click.argument("target")
@click.option("--reason", default=None)
@click.pass_context
@_fail_on_routing_errors
def models_retire(ctx: click.Context, target: str, reason: str | None) -> None:
    """Retire TARGET now: requests follow the model's sunset policy (redirect or 410)."""
    _apply(ctx, "retire", target, reason=reason)


@models.command("pin")
@click.argument("model")
@click.argument("channel")
@click.argument("version")
@click.option("--upstream", default=None, help="provider id of VERSION (registers a new one)")
@click.option("--reason", default=None)
@click.pass_context
@_fail_on_routing_errors
def models_pin(ctx, model, channel, version, upstream, reason) -> None:  # noqa: ANN001
    """Point MODEL's CHANNEL at VERSION (e.g. register a new rc, or roll latest back)."""
    _apply(ctx, "pin", model, channel, version, upstream_id=upstream, reason=reason)


@models.command("policy")
@click.argument("model")
@click.option("--on-sunset", type=click.Choice(["redirect", "reject"]), default=None)
@click.option("--successor", default=None)
@click.option("--deprecation-days", type=int, default=None)
@click.option("--equivalent", multiple=True, help="cross-provider equivalent (repeatable)")
@click.option("--reason", default=None)
@click.pass_context
@_fail_on_routing_errors
def models_policy(ctx, model, on_sunset, successor, deprecation_days, equivalent, reason) -> None:  # noqa: ANN001
    """Set MODEL's lifecycle policy."""
    _apply(
        ctx,
        "set_policy",
        model,
        sunset_policy=on_sunset,
        successor=successor,
        deprecation_days=deprecation_days,
        equivalents=list(equivalent) if equivalent else None,
        reason=reason,
    )


@models.command("key-policy")
@click.argument("key_id")
@click.option(
    "--cross-provider",
    type=click.Choice(["allow", "deny", "request"]),
    required=True,
    help="allow/deny fallback to other providers for every request of the key; "
    "request: each request decides",
)
@click.option("--reason", default=None)
@click.pass_context
def models_key_policy(ctx: click.Context, key_id: str, cross_provider: str, reason) -> None:  # noqa: ANN001
    """Set KEY_ID's routing policy (an api_keys id, or `master`)."""
    value = {"allow": True, "deny": False, "request": None}[cross_provider]
    _apply(ctx, "set_key_policy", key_id, cross_provider=value, reason=reason)


@models.command("circuits")
@click.option("--reset", "reset_key", default=None, help="close this circuit by hand")
@click.pass_context
def models_circuits(ctx: click.Context, reset_key: str | None) -> None:
    """Every channel's circuit breaker: state, calls and failures in the current window."""
    from routing.snapshot import load_catalogue
    from storage import keys

    resources = container(ctx)
    breaker = resources.breaker
    if reset_key:
        click.echo(f"{reset_key}: {'reset' if breaker.reset(reset_key) else 'already closed'}")
        return
    with resources.sessions() as session:
        catalogue = load_catalogue(session)
    for model in sorted(catalogue.models.values(), key=lambda m: m.name.lower()):
        for v in model.versions:
            key = keys.circuit_id(model.provider, model.name, v.channel)
            state = breaker.state(key)
            click.echo(f"{key}\t{state.state}\t{state.fails}/{state.calls} failed")


@models.command("compare")
@click.argument("model")
@click.argument("channels", nargs=-1)
@click.option("--days", type=float, default=7.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_fail_on_routing_errors
def models_compare(ctx, model, channels, days, as_json) -> None:  # noqa: ANN001
    """Side by side evidence for CHANNELS (default: rc latest) of MODEL."""
    from routing.stats import compare

    with container(ctx).sessions() as session:
        report = compare(session, model, list(channels) or ["rc", "latest"], days=days)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    _echo_table(report["versions"])


ROWS = (
    ("jobs", lambda v: v["jobs"]),
    ("attempts", lambda v: v["attempts"]),
    ("error rate", lambda v: v["error_rate"]),
    ("latency p50 ms", lambda v: v["latency_ms"]["p50"]),
    ("latency p95 ms", lambda v: v["latency_ms"]["p95"]),
    ("fell back", lambda v: v["fallbacks"]),
    ("feedback n", lambda v: v["feedback"]["count"]),
    ("feedback mean", lambda v: v["feedback"]["mean_score"]),
    ("served versions", lambda v: ",".join(v["served_versions"]) or "-"),
)


def _echo_table(versions: list[dict[str, Any]]) -> None:
    click.echo(f"{'':16}" + "".join(f"{v['model_id']:>22}" for v in versions))
    for label, get in ROWS:
        cells = "".join(f"{'-' if get(v) is None else get(v)!s:>22}" for v in versions)
        click.echo(f"{label:16}{cells}")


@models.command("events")
@click.argument("model")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
@_fail_on_routing_errors
def models_events(ctx: click.Context, model: str, limit: int) -> None:
    """MODEL's catalogue audit log, newest first."""
    from routing.ops import find_model
    from routing.views import recent_events

    with container(ctx).sessions() as session:
        events = recent_events(session, find_model(session, model).name, limit=limit)
    for event in events:
        reason = f"\t{event['reason']}" if event["reason"] else ""
        click.echo(f"{event['at'][:19]}\t{event['action']}\t{event['actor']}{reason}")
