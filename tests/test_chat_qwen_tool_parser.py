"""glm_edge.chat.qwen_tool_parser: Qwen2.5's <tool_call> output and the bare JSON call, streaming == one-shot.

The texts are what Qwen2.5-Coder-0.5B-Instruct (the embedded default) writes for a get_weather tool through its
own template (greedy: a ```json fence; sampled: a bare object), what the template asks for, and its failures."""

from __future__ import annotations

import json
import random

import pytest

from glm_edge.chat import ChatOutputParser, detect_family
from glm_edge.chat.output import tool_parser_class
from glm_edge.chat.qwen_tool_parser import QwenToolParser

if __package__:  # tests/ is a package
    from .test_chat_agreement import assert_stream_matches_oneshot, run_stream
else:  # tests/ on sys.path (pytest's rootdir-relative "prepend" import mode)
    from test_chat_agreement import assert_stream_matches_oneshot, run_stream

NAMES = ["get_weather", "search"]
PARIS = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def qwen(names: list[str] = NAMES) -> ChatOutputParser:
    return ChatOutputParser.create(tool_parser="qwen", tool_names=names)


def calls_of(parsed):
    return [(c.function.name, json.loads(c.function.arguments)) for c in parsed.tool_calls]


def test_registered_beside_glm4():
    assert tool_parser_class("qwen") is QwenToolParser
    with pytest.raises(ValueError, match="glm4, qwen"):
        tool_parser_class("hermes")


@pytest.mark.parametrize("text", [
    f"<tool_call>\n{PARIS}\n</tool_call>",                       # the template's own format
    f"<tool_call>{PARIS}</tool_call>\n",
    f"<tool_call>\n{PARIS}",                                      # closing tag never came
    PARIS,                                                        # the bare object (sampled output)
    '{\n"name": "get_weather",\n"arguments": {\n  "city": "Paris"\n}\n}',
    '```json\n{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Paris"\n  }\n}\n```',  # greedy output
    f"  \n```\n{PARIS}\n```",
    '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',  # arguments as JSON text
    '{"name": "get_weather", "parameters": {"city": "Paris"}}',
])
def test_one_call(text):
    parsed = assert_stream_matches_oneshot(qwen, text)
    assert calls_of(parsed) == [("get_weather", {"city": "Paris"})]
    assert parsed.content is None
    assert parsed.tool_calls[0].id.startswith("call_") and parsed.tool_calls[0].type == "function"
    parser = qwen()
    parser.parse(text)
    assert parser.finish_reason("stop") == "tool_calls" and parser.finish_reason("length") == "length"


def test_arguments_keep_chinese_and_nesting():
    text = '<tool_call>\n{"name": "search", "arguments": {"q": "北京 天气", "filters": {"days": [1, 2]}}}\n</tool_call>'
    parsed = assert_stream_matches_oneshot(qwen, text)
    assert parsed.tool_calls[0].function.arguments == '{"q": "北京 天气", "filters": {"days": [1, 2]}}'


@pytest.mark.parametrize("text", [
    f"<tool_call>\n{PARIS}\n</tool_call>\n<tool_call>\n"
    '{"name": "search", "arguments": {"q": "Paris"}}\n</tool_call>',
    f'{PARIS}\n{{"name": "search", "arguments": {{"q": "Paris"}}}}',
    f'<tool_call>\n{PARIS}\n</tool_call>\n{{"name": "search", "arguments": {{"q": "Paris"}}}}',
])
def test_several_calls(text):
    parsed = assert_stream_matches_oneshot(qwen, text)
    assert calls_of(parsed) == [("get_weather", {"city": "Paris"}), ("search", {"q": "Paris"})]
    assert parsed.content is None and len({c.id for c in parsed.tool_calls}) == 2


def test_text_before_a_call_is_content():
    parsed = assert_stream_matches_oneshot(qwen, f"Let me check the weather.\n<tool_call>\n{PARIS}\n</tool_call>")
    assert parsed.content == "Let me check the weather."
    assert calls_of(parsed) == [("get_weather", {"city": "Paris"})]


def test_text_after_a_call_is_content():
    # what the model writes after a tool result when no user turn follows: the call again, then the result
    parsed = assert_stream_matches_oneshot(qwen, f'{PARIS}\n{{"temperature_c": 18, "condition": "sunny"}}')
    assert calls_of(parsed) == [("get_weather", {"city": "Paris"})]
    assert parsed.content == '{"temperature_c": 18, "condition": "sunny"}'


@pytest.mark.parametrize("text", [
    "The capital of France is Paris.",
    "北京是中国的首都。",
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}\n</tool_call>',   # invalid JSON
    '<tool_call>\n{"name": get_weather}\n</tool_call> and more',
    "<tool_call>\nget_weather(city='Paris')\n</tool_call>",                               # not an object
    '{"name": "delete_files", "arguments": {"path": "/"}}',                               # an un-offered tool
    '<tool_call>\n{"name": "delete_files", "arguments": {}}\n</tool_call>',
    '{"name": "get_weather", "arguments": ["Paris"]}',                                     # arguments not an object
    '{"name": "get_weather", "arguments": "Paris"}',
    '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}',                    # a fence that never closes
    f'Here is the JSON you asked for: {PARIS}',                                           # JSON inside an answer
    '{"city": "Paris"}',
    "Use <tool_call> tags for calls.",
    "  leading and trailing whitespace stay  \n",
    "a partial tag at the end <tool_c",
    "```python\nprint('hi')\n```",
])
def test_everything_else_stays_text(text):
    parsed = assert_stream_matches_oneshot(qwen, text)
    assert parsed.tool_calls == [] and parsed.content == text
    parser = qwen()
    parser.parse(text)
    assert parser.finish_reason("stop") == "stop"


def test_invalid_call_then_valid_call():
    bad = '<tool_call>\n{"name": "get_weather", "arguments": {"city": }}\n</tool_call>'
    parsed = assert_stream_matches_oneshot(qwen, f"{bad}\n<tool_call>\n{PARIS}\n</tool_call>")
    assert calls_of(parsed) == [("get_weather", {"city": "Paris"})] and parsed.content == bad


def test_no_tools_offered_means_no_calls():
    for text in (PARIS, f"<tool_call>\n{PARIS}\n</tool_call>"):
        parsed = assert_stream_matches_oneshot(lambda: qwen([]), text)
        assert parsed.tool_calls == [] and parsed.content == text


def test_streaming_sends_content_before_the_answer_ends_and_the_call_once_complete():
    parser = qwen()
    assert [d.content for d in parser.feed("Checking")] == ["Checking"]   # not a call: sent at once
    assert parser.feed(" now.\n<tool") == [DeltaLike(content=" now.")]    # the partial tag is held
    assert parser.feed('_call>\n{"name": "get_weather", "arguments": {"city": "Pa') == []
    deltas = parser.feed('ris"}}\n</tool_call>')
    assert [(d.tool_call.function.name, d.tool_call.function.arguments) for d in deltas] == [("get_weather", ""),
                                                                          (None, '{"city": "Paris"}')]
    assert parser.finish() == [] and parser.finish_reason("stop") == "tool_calls"


class DeltaLike:
    """Compares equal to a content-only delta."""

    def __init__(self, content: str) -> None:
        self.content = content

    def __eq__(self, other: object) -> bool:
        return getattr(other, "content", None) == self.content and getattr(other, "tool_call", 0) is None


def test_a_fresh_parser_per_choice():
    parser = qwen()
    parser.feed(PARIS)
    parser.finish()
    with pytest.raises(RuntimeError, match="fresh parser"):
        parser.feed("more")


def test_random_compositions_agree():
    """Answers built from the awkward pieces in random order: streaming equals one-shot on every chunking."""
    pieces = [PARIS, f"<tool_call>\n{PARIS}\n</tool_call>", "<tool_call>", "</tool_call>", "\n", "  ", "Paris",
              "北京", '{"name": "nope", "arguments": {}}', "```json\n", "```", "{", "}", "<tool_c"]
    rng = random.Random(7)
    for _ in range(60):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        assert_stream_matches_oneshot(qwen, text, seed=rng.randint(0, 1000))


def test_qwen_templates_are_detected():
    assert detect_family("<|im_start|>system ... <tool_call> ...") == "qwen"
    assert detect_family("{{ '<|im_start|>' + message['role'] }}") == "chatml"


def test_run_stream_reassembles_arguments():
    _, content, calls, reason = run_stream(qwen(), list(f"<tool_call>\n{PARIS}\n</tool_call>"))
    assert content == "" and calls == [("get_weather", '{"city": "Paris"}')] and reason == "tool_calls"
