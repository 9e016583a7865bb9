"""The job's stored request becomes the provider request, parameter for parameter."""

from __future__ import annotations

from jobs.spec import JobSpec
from workers.service import request_from


def test_every_generation_parameter_reaches_the_provider_request():
    spec = JobSpec.load(
        {
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
        }
    )
    request = request_from("j1", "GigaChat-Pro-preview", spec)
    assert request.upstream_model == "GigaChat-Pro-preview"
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Кратко."),
        ("user", "Hi"),
    ]
    assert (request.temperature, request.max_tokens, request.top_p) == (0.2, 64, 0.9)
    assert request.repetition_penalty == 1.1
    assert request.stream is True
    assert request.request_id == "j1"
