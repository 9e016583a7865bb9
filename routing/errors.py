"""Errors raised while parsing and resolving model ids and changing the catalogue.

`api/errors.py` maps each class to a status and a code (`ROUTING_ERRORS`); `details` go into
the error body beside `choices`.
"""

from __future__ import annotations

from typing import Any


class RoutingError(Exception):
    def __init__(self, message: str, *, choices: list[str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.choices = choices or []
        self.details = details


class MalformedModelId(RoutingError):
    """400 invalid_model_id."""


class UnknownModel(RoutingError):
    """404 model_not_found."""


class UnknownChannel(RoutingError):
    """404 channel_not_found."""


class UnknownVersion(RoutingError):
    """404 version_not_found: a pinned version the catalogue does not know."""


class ModelSunset(RoutingError):
    """410 model_sunset: past its sunset (or retired) and the model's policy rejects."""


class NoRouteAvailable(RoutingError):
    """503 no_route_available: every candidate of the plan was skipped."""


class ContextTooLong(NoRouteAvailable):
    """400 context_length_exceeded: the request is too large for every candidate's window
    (the client's mistake, not an outage)."""


class UnsupportedParameter(NoRouteAvailable):
    """400 unsupported_parameter: the request uses a parameter (`details["param"]`) that no
    candidate of its plan can serve — the client's mistake, not an outage."""


class CatalogueConflict(RoutingError):
    """409 catalogue_conflict: an operation that the catalogue's state does not allow."""
