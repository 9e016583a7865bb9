"""Labels stay bounded: a new label must be added here on purpose, never a job id or key."""

from __future__ import annotations

from tests.unit.monitoring.promql import exported_samples

BOUNDED = {
    "method",
    "endpoint",  # the Flask rule, not the URL
    "status",
    "provider",
    "model",
    "channel",
    "priority",
    "outcome",
    "error_class",
    "kind",
    "reason",
    "queue",
    "le",
    "scope_kind",  # key, key_model, gateway_model — never the key or the model itself
    "limit_kind",  # rpm, tpm, tpd, tpmo, conc
    "source",  # of a token count: cache, tokenizer, estimate
    "currency",  # of a catalogue price (models.pricing): RUB, USD
    *(f"{side}_{part}" for side in ("from", "to") for part in ("provider", "model", "channel")),
}


def test_every_label_is_a_known_bounded_one():
    used = set().union(*exported_samples().values())
    assert used <= BOUNDED, used - BOUNDED
