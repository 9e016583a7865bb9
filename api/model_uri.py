"""YandexGPT model URIs as llmgw ids: `gpt://<folder>/<model>[/<branch>]` → `<model>:<branch>`.

Yandex's own clients (`yandex-cloud-ml-sdk`, code written for `llm.api.cloud.yandex.net`) name
a model by its URI. llmgw serves its catalogue, not a folder: the folder is ignored (any
folder), the model segment is looked up in the catalogue like any model id, and the branch
(`latest`, `rc`, `deprecated`; `latest` when left out) is the channel. A fine-tuned model
(`…@<suffix>`) or any other shape is a 400 `invalid_model_id`; a model the catalogue lacks is
the usual 404 `model_not_found` with the list of what exists.
"""

from __future__ import annotations

import re

from routing.errors import MalformedModelId

URI_SCHEME = "gpt://"
_GPT_URI = re.compile(
    r"^gpt://[^/@\s]+/(?P<model>[^/@\s]+)(?:/(?P<branch>[^/@\s]+))?/?$", re.IGNORECASE
)


def is_model_uri(model: str) -> bool:
    return model.strip().lower().startswith(URI_SCHEME)


def catalogue_model_id(model: str) -> str:
    """The llmgw model id a request's `model` names: a `gpt://` URI mapped, anything else as is."""
    if not is_model_uri(model):
        return model
    match = _GPT_URI.match(model.strip())
    if match is None:
        raise MalformedModelId(
            f"Model URI {model!r} is malformed; expected 'gpt://<folder>/<model>/<branch>' "
            "with branch latest, rc or deprecated, e.g. 'gpt://b1gfolder/yandexgpt-lite/latest'."
        )
    return f"{match['model']}:{match['branch'] or 'latest'}"
