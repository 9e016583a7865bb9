"""The job's stored request becomes the provider request, parameter for parameter."""

from __future__ import annotations

from storage.models import Job
from workers.service import build_request


def test_every_generation_parameter_reaches_the_provider_request():
    job = Job(
        id="j1",
        upstream_id="GigaChat-Pro-preview",
        request={
            "model": "GigaChat-Pro:rc",
            "messages": [
                {"role": "system", "content": "Кратко."},
                {"role": "user", "content": "Hi"},
            ],
            "temperature": 0.2,
            "max_tokens": 64,
            "top_p": 0.9,
            "repetition_penalty": 1.1,
            "stream": True,
        },
    )
    request = build_request(job)
    assert request.upstream_model == "GigaChat-Pro-preview"
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Кратко."),
        ("user", "Hi"),
    ]
    assert (request.temperature, request.max_tokens, request.top_p) == (0.2, 64, 0.9)
    assert request.repetition_penalty == 1.1
    assert request.stream is True
    assert request.request_id == "j1"
