"""The model-id grammar: `<model>[:<channel>]`; no channel means `latest`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from routing.errors import MalformedModelId

CHANNELS = ("latest", "rc", "deprecated")
DEFAULT_CHANNEL = "latest"
_MODEL_ID = re.compile(
    r"^(?P<model>[A-Za-z0-9][A-Za-z0-9._-]{0,99})(?::(?P<channel>[A-Za-z0-9._-]{1,64}))?$"
)


@dataclass(frozen=True)
class ModelRef:
    model: str
    channel: str

    def __str__(self) -> str:
        return f"{self.model}:{self.channel}"


def parse_model_id(model_id: str) -> ModelRef:
    match = _MODEL_ID.match(model_id.strip()) if isinstance(model_id, str) else None
    if match is None:
        raise MalformedModelId(
            f"Model id {model_id!r} is malformed; expected '<model>[:<channel>]', "
            f"e.g. 'yandexgpt-lite:latest'."
        )
    channel = (match.group("channel") or DEFAULT_CHANNEL).lower()
    return ModelRef(model=match.group("model"), channel=channel)


def queue_name(provider: str, channel: str) -> str:
    return f"{provider}.{channel}"
