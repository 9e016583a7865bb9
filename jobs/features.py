"""What a request needs of the version that serves it: the plan's `Requirement`s.

Tools (offered, or a tool call or result in the messages) need a version with `tools`;
`response_format` json_object / json_schema a version with that capability; a stream one
with `stream` (`routing.capabilities`, from the catalogue). Beyond the catalogue, what only
some providers can do (`providers.registry.PROVIDER_FEATURES`): `tool_choice: "required"`
among several tools (GigaChat has no such mode), and stop sequences (neither API has them,
so any non-empty `stop` leaves no candidate and the request is a 400 `unsupported_parameter`
rather than being answered as if the stops were honoured).
"""

from __future__ import annotations

from jobs.spec import CompletionParams
from providers.registry import providers_with
from routing import capabilities as cap
from routing.plan import Requirement


def requirements(params: CompletionParams, *, stream: bool = False) -> tuple[Requirement, ...]:
    needs: list[Requirement] = []
    if params.stop:
        needs.append(Requirement("stop", providers=()))
    uses_tools = params.tools or any(m.tool_calls or m.role == "tool" for m in params.messages)
    if uses_tools:
        needs.append(Requirement("tools", cap.TOOLS))
    if params.tool_choice == "required" and len(params.tools) > 1:
        needs.append(Requirement("tool_choice", providers=providers_with("tool_choice_required")))
    fmt = params.response_format
    if fmt is not None and fmt.type != "text":
        needs.append(Requirement("response_format", fmt.type))
    if stream:
        needs.append(Requirement("stream", cap.STREAM))
    return tuple(needs)
