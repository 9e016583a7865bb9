"""Errors raised while parsing and resolving model ids."""

from __future__ import annotations


class RoutingError(Exception):
    def __init__(self, message: str, *, choices: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.choices = choices or []


class MalformedModelId(RoutingError):
    pass


class UnknownModel(RoutingError):
    pass


class UnknownChannel(RoutingError):
    pass
