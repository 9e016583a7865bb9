"""The shared toy tokenizer, answers and store pruning (plain functions, no server)."""

from __future__ import annotations

from providers.emulators import common


def test_token_pieces_rebuild_the_text_and_are_about_four_characters():
    text = "Привет, мир!  Hello   world\nnew line "
    pieces = common.token_pieces(text)
    assert "".join(pieces) == text
    assert all(len(piece.strip()) <= 4 for piece in pieces)
    assert common.count_tokens("abcdefgh") == 2
    assert common.count_tokens("") == 0


def test_truncate_keeps_the_first_tokens():
    text = "one two three four five"
    assert common.truncate_tokens(text, 2) == "one two"
    assert common.count_tokens(common.truncate_tokens(text, 3)) == 3


def test_answer_is_deterministic_and_echoes_the_prompt():
    answer = common.compose_answer("m", "the quick brown fox jumps over the lazy dog")
    assert answer == common.compose_answer("m", "the quick brown fox jumps over the lazy dog")
    assert "the quick brown fox jumps over" in answer
    assert answer != common.compose_answer("other-model", "the quick brown fox")


def test_prune_drops_only_expired_entries_of_a_big_store():
    store = {i: i % 2 == 0 for i in range(common.PRUNE_ABOVE + 2)}
    common.prune_expired(store, lambda expired: expired)
    assert store and not any(store.values())
    small = {1: True}
    common.prune_expired(small, lambda expired: expired)
    assert small == {1: True}
