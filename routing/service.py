"""Version resolution: a model id becomes a route (provider, upstream id, queue).

`resolve(session, model_id)` reads the database; `resolve_in(catalogue, model_id)` does the
same against a snapshot (what the cached `routing.cache.Resolver` uses). Past its sunset a
version follows its model's policy: `redirect` to the successor (the route says so in
`redirected_from`) or `reject` with `ModelSunset` (410).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy.orm import Session

from routing.capabilities import DEFAULT_CAPABILITIES
from routing.errors import ModelSunset, UnknownChannel, UnknownVersion
from routing.model_id import ModelRef, parse_model_id, queue_name
from routing.snapshot import Catalogue, ModelEntry, VersionEntry, load_catalogue
from storage import keys
from storage.models import utcnow

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Route:
    """Everything a worker needs to call the provider, and what the API tells the client."""

    provider: str
    model: str
    channel: str
    upstream_id: str
    queue: str
    status: str
    sunset_at: datetime | None = None
    version: str | None = None
    deprecated_at: datetime | None = None
    context_window: int | None = None
    redirected_from: str | None = None
    successor: str | None = None
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES  # routing.capabilities

    @property
    def model_id(self) -> str:
        return f"{self.model}:{self.channel}"

    @property
    def breaker_key(self) -> str:
        """Circuit-breaker key: one circuit per provider + model + channel."""
        return keys.circuit_id(self.provider, self.model, self.channel)

    @property
    def deprecated(self) -> bool:
        return self.status == "deprecated" or self.sunset_at is not None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("sunset_at", "deprecated_at"):
            data[name] = data[name].isoformat() if data[name] else None
        return data

    def deprecation_headers(self) -> dict[str, str]:
        """`Deprecation` (RFC 9745) and `Sunset` (RFC 8594) for a response served by this route."""
        if not self.deprecated:
            return {}
        headers = {
            "Deprecation": f"@{_epoch(self.deprecated_at)}" if self.deprecated_at else "true"
        }
        if self.sunset_at:
            headers["Sunset"] = format_datetime(self.sunset_at.replace(tzinfo=UTC), usegmt=True)
        return headers

    def warnings(self) -> list[dict[str, str]]:
        """Body warnings: a deprecated version, a redirect after sunset."""
        found = []
        if self.redirected_from:
            found.append(
                {
                    "code": "model_redirected",
                    "message": f"{self.redirected_from} is past its sunset; "
                    f"served by its successor {self.model_id}.",
                }
            )
        if self.deprecated:
            when = f" on {self.sunset_at:%Y-%m-%d}" if self.sunset_at else ""
            found.append(
                {
                    "code": "model_deprecated",
                    "message": f"{self.model_id} is deprecated and will be switched off{when}; "
                    f"move to {self.successor or self.model + ':latest'}.",
                }
            )
        return found


def _epoch(value: datetime) -> int:
    return int(value.replace(tzinfo=UTC).timestamp())


def resolve(session: Session, model_id: str) -> Route:
    return resolve_in(load_catalogue(session), model_id)


def resolve_in(catalogue: Catalogue, model_id: str, now: datetime | None = None) -> Route:
    now = now or utcnow()
    requested = parse_model_id(model_id)
    ref, redirected_from = requested, None
    for _ in range(MAX_REDIRECTS + 1):
        model = catalogue.find(ref.model)
        version = select_version(model, ref)
        if not version.past_sunset(now):
            return build_route(model, version, ref, redirected_from)
        successor = successor_of(model, version)
        if model.sunset_policy != "redirect" or successor == str(ref):
            raise _sunset_error(model, version, ref, successor)
        redirected_from = redirected_from or f"{model.name}:{ref.selector}"
        ref = parse_model_id(successor)
    raise _sunset_error(model, version, ref, None)


def select_version(model: ModelEntry, ref: ModelRef) -> VersionEntry:
    """The channel row a ref names; a pinned version maps to the channel serving it now."""
    if ref.pinned:
        release = model.release(ref.version or "")
        if release is None:
            versions = [r.version for r in model.releases]
            raise UnknownVersion(
                f"Model {model.name!r} has no version {ref.version!r}.", choices=versions
            )
        if release.channel is None or model.channel(release.channel) is None:
            return VersionEntry("retired", release.upstream_id, "retired", 0, release.version)
        return model.channel(release.channel)  # type: ignore[return-value]
    version = model.channel(ref.channel or "")
    if version is None:
        raise UnknownChannel(
            f"Model {model.name!r} has no channel {ref.channel!r}.", choices=model.live_channels()
        )
    return version


def successor_of(model: ModelEntry, version: VersionEntry) -> str:
    if model.successor:
        return model.successor
    return f"{model.name}:latest"


def build_route(
    model: ModelEntry, version: VersionEntry, ref: ModelRef, redirected_from: str | None = None
) -> Route:
    return Route(
        provider=model.provider,
        model=model.name,
        channel=version.channel,
        upstream_id=version.upstream_id,
        queue=queue_name(model.provider, version.channel),
        status=version.status,
        sunset_at=version.sunset_at,
        version=ref.version or version.version,
        deprecated_at=version.deprecated_at,
        context_window=model.context_window,
        redirected_from=redirected_from,
        successor=successor_of(model, version) if version.status == "deprecated" else None,
        capabilities=version.capabilities,
    )


def _sunset_error(
    model: ModelEntry, version: VersionEntry, ref: ModelRef, successor: str | None
) -> ModelSunset:
    return ModelSunset(
        f"{model.name}:{ref.selector} is past its sunset and no longer served"
        + (f"; use {successor}." if successor else "."),
        choices=[f"{model.name}:{c}" for c in model.live_channels()],
        successor=successor,
        sunset_at=version.sunset_at.isoformat() if version.sunset_at else None,
    )
