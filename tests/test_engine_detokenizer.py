"""Incremental UTF-8 detokenization and stop-string holding, with the real Gemma vocabulary."""

from __future__ import annotations

import pytest

from glm_edge.engine.detokenizer import IncrementalDetokenizer, StopStringFilter
from glm_edge.engine.model import LlamaModel


@pytest.fixture(scope="module")
def model(default_gguf):
    m = LlamaModel(default_gguf)
    yield m
    m.close()


@pytest.fixture(scope="module")
def byte_tokens(model) -> dict[int, int]:
    """byte value -> id of the vocabulary's byte-fallback token <0xNN> (its piece is that single raw byte)."""
    import llama_cpp

    out: dict[int, int] = {}
    for tid in range(model.n_vocab):
        text = llama_cpp.llama_vocab_get_text(model.vocab, tid)
        if text and len(text) == 6 and text.startswith(b"<0x") and text.endswith(b">"):
            try:
                out[int(text[3:5], 16)] = tid
            except ValueError:
                continue
    assert len(out) == 256, "Gemma's vocabulary has 256 byte-fallback tokens"
    return out


def test_byte_tokens_emit_only_whole_characters(model, byte_tokens):
    text = "你好🙂é!"
    detok = IncrementalDetokenizer(model.token_to_piece)
    emitted = []
    for b in text.encode("utf-8"):
        tid = byte_tokens[b]
        assert model.token_to_piece(tid) == bytes([b])
        emitted.append(detok.add(tid))
    emitted.append(detok.flush())
    # one character appears exactly when its last byte arrives; nothing partial in between
    assert [e for e in emitted if e] == ["你", "好", "🙂", "é", "!"]
    assert "".join(emitted) == text
    assert all("\ufffd" not in e for e in emitted)


def test_real_tokenization_round_trips_per_token(model):
    text = "长城是中国古代的军事防御工程。Emoji: 🐉🎉 café — naïve"
    ids = model.tokenize(text)
    detok = IncrementalDetokenizer(model.token_to_piece)
    pieces = [detok.add(t) for t in ids] + [detok.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert model.detokenize(ids) == text


def test_unfinished_character_at_the_end_becomes_replacement(model, byte_tokens):
    detok = IncrementalDetokenizer(model.token_to_piece)
    first_two = "你".encode("utf-8")[:2]
    assert detok.add(byte_tokens[first_two[0]]) == ""
    assert detok.add(byte_tokens[first_two[1]]) == ""
    assert detok.flush() == "\ufffd"


def feed(stops: list[str], parts: list[str]) -> tuple[str, str | None, list[str]]:
    f = StopStringFilter(stops)
    out = []
    for part in parts:
        r = f.add(part)
        out.append(r.text)
        if r.stop is not None:
            return "".join(out), r.stop, out
    out.append(f.flush())
    return "".join(out), None, out


def test_stop_string_split_across_pieces_is_never_emitted():
    text, stop, chunks = feed(["</answer>"], ["The result", " is 4.</", "ans", "wer> trailing"])
    assert text == "The result is 4."
    assert stop == "</answer>"
    assert all("<" not in c for c in chunks)  # the start of the stop string was held back, then dropped


def test_held_text_released_when_it_stops_matching():
    text, stop, chunks = feed(["STOP"], ["abc S", "T", "x more"])
    assert stop is None
    assert text == "abc STx more"
    assert chunks[0] == "abc "  # "S" held back
    assert chunks[1] == ""  # "ST" still held


def test_earliest_and_overlapping_stops():
    text, stop, _ = feed(["world", "lo w"], ["hel", "lo world"])
    assert (text, stop) == ("hel", "lo w")
    text, stop, _ = feed(["aab"], ["a", "a", "a", "b", "c"])  # "aaab": the match starts at the 2nd "a"
    assert (text, stop) == ("a", "aab")


def test_no_stops_passes_everything_through():
    f = StopStringFilter([])
    assert f.add("anything").text == "anything"
    assert f.flush() == ""


def test_held_text_is_bounded_by_the_longest_stop():
    f = StopStringFilter(["abcdef"])
    for _ in range(1000):
        f.add("abcde")  # always a possible prefix, never a match
        assert len(f.held) <= 5
