"""The model-id grammar: `<model>[:<channel-or-version>]`; no selector means `latest`.

- `<model>`: a catalogue name or alias, 1-100 of `[A-Za-z0-9._-]`, starting alphanumeric;
  matched case-insensitively.
- `<channel>`: starts with a letter (`latest`, `rc`, `deprecated`), lower-cased.
- `<version>`: starts with a digit (`5.1`, `23.10.2024`, `2.0.28`), matched exactly; it pins
  the request to that concrete version wherever the catalogue serves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from routing.errors import MalformedModelId

CHANNELS = ("latest", "rc", "deprecated")
DEFAULT_CHANNEL = "latest"
MODEL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
SELECTOR_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_MODEL_ID = re.compile(rf"^(?P<model>{MODEL_PATTERN})(?::(?P<selector>{SELECTOR_PATTERN}))?$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed id: exactly one of `channel` and `version` is set."""

    model: str
    channel: str | None
    version: str | None = None

    @property
    def selector(self) -> str:
        return self.version or self.channel or DEFAULT_CHANNEL

    @property
    def pinned(self) -> bool:
        return self.version is not None

    def __str__(self) -> str:
        return f"{self.model}:{self.selector}"


def parse_model_id(model_id: str) -> ModelRef:
    match = _MODEL_ID.match(model_id.strip()) if isinstance(model_id, str) else None
    if match is None:
        raise MalformedModelId(
            f"Model id {model_id!r} is malformed; expected '<model>[:<channel-or-version>]', "
            f"e.g. 'yandexgpt-lite:latest', 'yandexgpt:rc' or 'yandexgpt:23.10.2024'."
        )
    selector = match.group("selector") or DEFAULT_CHANNEL
    if selector[0].isdigit():
        return ModelRef(model=match.group("model"), channel=None, version=selector)
    return ModelRef(model=match.group("model"), channel=selector.lower())


def queue_name(provider: str, channel: str) -> str:
    return f"{provider}.{channel}"
