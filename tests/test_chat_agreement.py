"""The one helper that feeds the same model output through the streaming path (whole, character by
character, in random chunkings, with empty chunks) and the one-shot path and asserts they agree;
plus randomized outputs built from the awkward pieces (split tags, separators, JSON, Chinese)."""

from __future__ import annotations

import random
from typing import Callable, Iterator

import pytest

from glm_edge.chat import ChatOutputParser, DeltaMessage, ParsedOutput

Streamed = tuple[str, str, list[tuple[str, str]], str | None]


def chunkings(text: str, seed: int = 0, n_random: int = 20) -> Iterator[list[str]]:
    """Ways an engine could hand ``text`` over: all at once, one character at a time, random cuts
    (some with empty chunks in between, as an engine sends for tokens that end mid-character)."""
    yield [text]
    yield list(text)
    rng = random.Random(seed)
    for i in range(n_random):
        k = rng.randint(0, min(len(text) - 1, 12)) if len(text) > 1 else 0
        cuts = sorted(rng.sample(range(1, len(text)), k)) if k else []
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        if i % 4 == 0:
            pieces = [p for piece in pieces for p in (piece, "")]
        yield pieces


def run_stream(parser: ChatOutputParser, pieces: list[str], engine_reason: str = "stop") -> Streamed:
    """Feed ``pieces``, check every delta's shape, and put the message back together."""
    deltas: list[DeltaMessage] = []
    for piece in pieces:
        deltas += parser.feed(piece)
    deltas += parser.finish()
    calls: dict[int, list[str]] = {}
    for delta in deltas:
        assert not delta.is_empty(), "an empty delta would be an empty SSE chunk"
        call = delta.tool_call
        if call is None:
            continue
        assert not delta.content and not delta.reasoning_content
        if call.index not in calls:  # first piece of a call: id and name, OpenAI's order
            assert call.index == len(calls)
            assert call.id and call.id.startswith("call_") and call.function.name
            assert call.function.arguments == "" and call.type == "function"
            calls[call.index] = [call.id, call.function.name, ""]
        else:
            assert call.id is None and call.type is None and call.function.name is None
            assert call.function.arguments
            calls[call.index][2] += call.function.arguments
    ids = [c[0] for c in calls.values()]
    assert len(set(ids)) == len(ids)
    return ("".join(d.reasoning_content or "" for d in deltas), "".join(d.content or "" for d in deltas),
            [(name, args) for _, name, args in calls.values()], parser.finish_reason(engine_reason))


def assert_stream_matches_oneshot(make_parser: Callable[[], ChatOutputParser], text: str,
                                  engine_reason: str = "stop", seed: int = 0) -> ParsedOutput:
    """Every chunking of ``text`` streams to exactly what the one-shot parse of ``text`` gives."""
    oneshot_parser = make_parser()
    whole = oneshot_parser.parse(text)
    assert all(c.id.startswith("call_") for c in whole.tool_calls)
    expected: Streamed = (whole.reasoning_content or "", whole.content or "",
                          [(c.function.name, c.function.arguments) for c in whole.tool_calls],
                          oneshot_parser.finish_reason(engine_reason))
    for pieces in chunkings(text, seed):
        assert "".join(pieces) == text
        assert run_stream(make_parser(), pieces, engine_reason) == expected, f"chunking {pieces!r}"
    return whole


# --- the helper's own checks -------------------------------------------------------------------------

def test_chunkings_cover_whole_char_and_random_cuts():
    ways = list(chunkings("abcdef", n_random=8))
    assert ways[0] == ["abcdef"] and ways[1] == list("abcdef")
    assert all("".join(w) == "abcdef" for w in ways) and any("" in w for w in ways)


def test_helper_catches_a_parser_that_loses_text():
    class Lossy(ChatOutputParser):
        def feed(self, text):
            return super().feed(text[1:])  # drops a character per chunk

    with pytest.raises(AssertionError):
        assert_stream_matches_oneshot(lambda: Lossy(), "hello world")


# --- randomized outputs ------------------------------------------------------------------------------

PIECES = ["<think>", "</think>", "<thi", "</th", "<", "/", ">", "\n", "\n\n", " ", "嗯", "北京", "答案是 2。", "ok",
          "get_weather", "search", "get_", "\n", '{"city": "北京"}', '{"q": "a}b"}', "{", "}", '"', ":",
          "<|assistant|>", "<|assis", "<|observation|>", "[1]"]

SETUPS = {
    "plain": lambda: ChatOutputParser.create(),
    "r1": lambda: ChatOutputParser.create("deepseek_r1"),
    "glm4": lambda: ChatOutputParser.create(tool_parser="glm4", tool_names=["get_weather", "search"]),
    "glm4-no-tools": lambda: ChatOutputParser.create(tool_parser="glm4"),
    "z1-tools": lambda: ChatOutputParser.create("deepseek_r1", "glm4", ["get_weather", "search"]),
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_random_outputs_stream_like_oneshot(setup):
    rng = random.Random(setup)
    for n in range(120):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14)))
        assert_stream_matches_oneshot(SETUPS[setup], text, seed=n)


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_random_call_sequences_stream_like_oneshot(setup):
    """Outputs shaped like real GLM answers: optional reasoning, calls with separators, trailing text."""
    rng = random.Random(f"calls-{setup}")
    for n in range(150):
        parts = []
        if rng.random() < 0.5:
            parts.append(rng.choice(["", "<think>"]) + "想一想 </think>\n\n")
        for _ in range(rng.randint(0, 3)):
            parts.append(rng.choice(["get_weather", "search", "get_weather ", "unknown"]) + "\n"
                         + rng.choice(['{"city": "北京"}', '{"q": "x}y", "n": {"k": [1, 2]}}', '{"bad": }', "[1]"])
                         + rng.choice(["", "<|assistant|>", "\n", "<|observation|>"]))
        if rng.random() < 0.4:
            parts.append(rng.choice(["\n北京今天晴。", "trailing text", "get_"]))
        assert_stream_matches_oneshot(SETUPS[setup], "".join(parts), seed=n)
