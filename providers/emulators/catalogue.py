"""The models each emulator serves, kept as data: context windows and served versions.

Version strings are the initial state; ``POST /_emulator/versions`` changes them at run time.
Yandex ``modelVersion`` values are release dates (dd.mm.yyyy); the ``rc`` dates past
09.02.2025 are invented. GigaChat versions are rendered as ``<name>:<version>``.
"""

from __future__ import annotations

YANDEX_MODELS: dict[str, dict] = {
    "yandexgpt-lite": {
        "context": 32_000,
        "owned_by": "Yandex",
        "versions": {"deprecated": "23.10.2024", "latest": "09.02.2025", "rc": "15.07.2025"},
    },
    "yandexgpt": {
        "context": 32_000,
        "owned_by": "Yandex",
        "versions": {"deprecated": "23.10.2024", "latest": "09.02.2025", "rc": "21.08.2025"},
    },
    "yandexgpt-32k": {
        "context": 32_000,
        "owned_by": "Yandex",
        "versions": {"deprecated": "07.03.2024", "latest": "07.03.2024", "rc": "07.03.2024"},
    },
    "llama-lite": {
        "context": 8_192,
        "owned_by": "Meta",
        "versions": {"deprecated": "29.08.2024", "latest": "29.08.2024", "rc": "29.08.2024"},
    },
    "llama": {
        "context": 8_192,
        "owned_by": "Meta",
        "versions": {"deprecated": "29.08.2024", "latest": "29.08.2024", "rc": "29.08.2024"},
    },
}

# Text embeddings (``emb://<folder>/<model>/latest``): one branch; the vector has a fixed size
# (256, as Yandex documents for text-search-doc/query). The version string is invented.
YANDEX_EMBEDDERS: dict[str, dict] = {
    "text-search-doc": {"dimension": 256, "context": 2_048, "version": "06.12.2023"},
    "text-search-query": {"dimension": 256, "context": 2_048, "version": "06.12.2023"},
}

GIGACHAT_CHAT_MODELS: dict[str, dict] = {
    "GigaChat": {"context": 32_768, "latest": "1.0.26.20", "rc": "2.0.28.2"},
    "GigaChat-Pro": {"context": 32_768, "latest": "2.2.25.3", "rc": "2.2.26.1"},
    "GigaChat-Max": {"context": 32_768, "latest": "2.0.28.1", "rc": "2.0.29.4"},
    "GigaChat-2": {"context": 131_072, "latest": "2.0.28.2", "rc": "2.0.30.1"},
    "GigaChat-2-Pro": {"context": 131_072, "latest": "2.0.28.2", "rc": "2.0.30.1"},
    "GigaChat-2-Max": {"context": 131_072, "latest": "2.0.30.01", "rc": "2.0.31.2"},
}

GIGACHAT_EMBEDDERS: tuple[str, ...] = ("Embeddings", "Embeddings-2", "EmbeddingsGigaR")

PREVIEW_SUFFIX = "-preview"


def yandex_versions() -> dict[str, dict[str, str]]:
    return {name: dict(model["versions"]) for name, model in YANDEX_MODELS.items()}


def gigachat_versions() -> dict[str, dict[str, str]]:
    """GigaChat has no branches; the emulator calls the bare name ``latest`` and the
    ``-preview`` twin ``rc``, the same mapping llmgw's catalogue uses."""
    return {
        name: {"latest": m["latest"], "rc": m["rc"]} for name, m in GIGACHAT_CHAT_MODELS.items()
    }
