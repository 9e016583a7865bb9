"""The id grammar, by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.errors import MalformedModelId
from routing.model_id import CHANNELS, parse_model_id

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
models = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(ALNUM),
    st.text(alphabet=ALNUM + "._-", max_size=99),
)
versions = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("0123456789"),
    st.text(alphabet=ALNUM + "._-", max_size=63),
)
channels = st.sampled_from(CHANNELS).flatmap(
    lambda c: st.sampled_from([c, c.upper(), c.capitalize()])
)


@given(models, channels)
def test_channel_ids_round_trip(model, channel):
    ref = parse_model_id(f"{model}:{channel}")
    assert (ref.model, ref.channel, ref.version) == (model, channel.lower(), None)
    assert parse_model_id(str(ref)) == ref


@given(models, versions)
def test_version_ids_pin_exactly(model, version):
    ref = parse_model_id(f"{model}:{version}")
    assert ref.pinned and ref.version == version and ref.channel is None
    assert str(ref) == f"{model}:{version}"


@given(models)
def test_no_selector_means_latest(model):
    ref = parse_model_id(model)
    assert ref.channel == "latest" and not ref.pinned


@given(models, st.text(min_size=1, max_size=20))
def test_more_than_one_colon_is_malformed(model, rest):
    with pytest.raises(MalformedModelId):
        parse_model_id(f"{model}:{rest}:{rest}")


@given(st.text(alphabet=" /@#?&%+=,;\t\"'", min_size=1, max_size=5), models)
def test_foreign_characters_are_malformed(junk, model):
    with pytest.raises(MalformedModelId):
        parse_model_id(f"{model[:50]}{junk}x")


@given(st.text(max_size=120))
def test_anything_parses_or_raises_malformed(text):
    try:
        ref = parse_model_id(text)
    except MalformedModelId as exc:
        assert "malformed" in exc.message
    else:
        assert ref.model and ref.selector


@pytest.mark.parametrize("bad", ["yandexgpt:-rc", "yandexgpt:.5", "a" * 101, "x:" + "1" * 65])
def test_limits_and_leading_punctuation(bad):
    with pytest.raises(MalformedModelId):
        parse_model_id(bad)
