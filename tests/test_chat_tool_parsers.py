"""glm_edge.chat.tool_parsers: the glm4 tool-call parser, streaming == one-shot."""

from __future__ import annotations

import json

import pytest

from glm_edge.chat import ChatOutputParser
from glm_edge.chat.output import tool_parser_class
from glm_edge.chat.tool_parsers import Glm4ToolParser

if __package__:  # tests/ is a package
    from .test_chat_agreement import assert_stream_matches_oneshot
else:  # tests/ on sys.path (pytest's rootdir-relative "prepend" import mode)
    from test_chat_agreement import assert_stream_matches_oneshot

NAMES = ["get_weather", "search"]


def glm4() -> ChatOutputParser:
    return ChatOutputParser.create(tool_parser="glm4", tool_names=NAMES)


def calls_of(parsed):
    return [(c.function.name, json.loads(c.function.arguments)) for c in parsed.tool_calls]


def test_single_call():
    parsed = assert_stream_matches_oneshot(glm4, 'get_weather\n{"city": "北京"}')
    assert calls_of(parsed) == [("get_weather", {"city": "北京"})]
    assert parsed.content is None
    assert parsed.tool_calls[0].function.arguments == '{"city": "北京"}'  # the model's own text
    assert parsed.tool_calls[0].type == "function" and parsed.tool_calls[0].id.startswith("call_")


def test_finish_reason_tool_calls():
    parser = glm4()
    parser.parse('get_weather\n{"city": "北京"}')
    assert parser.finish_reason("stop") == "tool_calls"
    assert parser.finish_reason("length") == "length"
    parser = glm4()
    parser.parse("\n北京今天晴。")
    assert parser.finish_reason("stop") == "stop"


@pytest.mark.parametrize("text", [
    'get_weather\n{"city": "北京"}<|assistant|>search\n{"q": "天气"}',   # control tokens rendered as text
    'get_weather\n{"city": "北京"}search\n{"q": "天气"}',                # control tokens rendered as nothing
    'get_weather\n{"city": "北京"}\n<|assistant|>\nsearch\n  {"q": "天气"}<|observation|>',
])
def test_several_calls(text):
    parsed = assert_stream_matches_oneshot(glm4, text)
    assert calls_of(parsed) == [("get_weather", {"city": "北京"}), ("search", {"q": "天气"})]
    assert parsed.content is None
    assert len({c.id for c in parsed.tool_calls}) == 2


@pytest.mark.parametrize("text, content", [
    ("\n北京今天晴，气温 20 度。", "北京今天晴，气温 20 度。"),                 # a plain answer starts with \n
    ('get_time\n{"tz": "UTC"}', 'get_time\n{"tz": "UTC"}'),                   # not an offered tool
    ('get_weather\n{"city": 北京}', 'get_weather\n{"city": 北京}'),           # malformed JSON
    ('get_weather\n{"city": "北', 'get_weather\n{"city": "北'),               # cut off inside the JSON
    ("get_weather\n[1, 2]", "get_weather\n[1, 2]"),                           # JSON, but not an object
    ("get_weather\nit is sunny", "get_weather\nit is sunny"),
    ("get_weather", "get_weather"),                                           # a name and nothing else
    ("get_weather is the tool I would use", "get_weather is the tool I would use"),
    ("search engines are useful\n{}", "search engines are useful\n{}"),
    ("<|assis", "<|assis"),
])
def test_not_a_call_is_content(text, content):
    parsed = assert_stream_matches_oneshot(glm4, text)
    assert parsed.tool_calls == []
    assert parsed.content == content


def test_call_then_text_keeps_both():
    parsed = assert_stream_matches_oneshot(glm4, 'search\n{"q": "x"}\n好的，我查一下。')
    assert calls_of(parsed) == [("search", {"q": "x"})]
    assert parsed.content == "好的，我查一下。"


def test_call_then_malformed_call_keeps_the_first():
    parsed = assert_stream_matches_oneshot(glm4, 'search\n{"q": "x"}get_weather\n{"city": }')
    assert calls_of(parsed) == [("search", {"q": "x"})]
    assert parsed.content == 'get_weather\n{"city": }'


def test_name_line_with_trailing_space_and_braces_in_strings():
    args = '{"q": "a}b{c", "n": {"x": [1, {"y": "}"}]}, "中文": "引号\\"内"}'
    parsed = assert_stream_matches_oneshot(glm4, "get_weather \n" + args)  # GLM-4-0414 writes "name \n"
    assert parsed.tool_calls[0].function.name == "get_weather" and parsed.tool_calls[0].function.arguments == args


def test_no_tools_offered_only_trims_the_leading_newline():
    parsed = assert_stream_matches_oneshot(lambda: ChatOutputParser.create(tool_parser="glm4"),
                                           'get_weather\n{"city": "北京"}')
    assert parsed.tool_calls == [] and parsed.content == 'get_weather\n{"city": "北京"}'
    parsed = assert_stream_matches_oneshot(lambda: ChatOutputParser.create(tool_parser="glm4"), "\n\n你好！")
    assert parsed.content == "你好！"


def test_reasoning_then_call_for_glm_z1():
    make = lambda: ChatOutputParser.create("deepseek_r1", "glm4", NAMES)  # noqa: E731
    parsed = assert_stream_matches_oneshot(make, '用户想知道北京的天气，我应该调用工具。</think>\n'
                                                 'get_weather\n{"city": "北京"}')
    assert parsed.reasoning_content == "用户想知道北京的天气，我应该调用工具。"
    assert calls_of(parsed) == [("get_weather", {"city": "北京"})] and parsed.content is None


def test_streaming_emits_content_with_minimal_holdback():
    parser = Glm4ToolParser(NAMES)
    assert [d.content for d in parser.feed("\nHel")] == ["Hel"]  # cannot be a tool name: out at once
    assert [d.content for d in parser.feed("lo")] == ["lo"]
    parser = Glm4ToolParser(NAMES)
    assert parser.feed("get_") == []            # could still be get_weather
    assert [d.content for d in parser.feed("time")] == ["get_time"]
    parser = Glm4ToolParser(NAMES)
    assert parser.feed("search") == [] and parser.feed("\n") == [] and parser.feed('{"q": "x"') == []
    first, second = parser.feed("}")           # the call comes out once its JSON object is complete
    assert first.tool_call.function.name == "search" and first.tool_call.id.startswith("call_")
    assert first.tool_call.function.arguments == "" and first.tool_call.index == 0
    assert second.tool_call.function.arguments == '{"q": "x"}' and second.tool_call.id is None
    assert second.model_dump(mode="json") == {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": "x"}'}}]}
    assert parser.finish() == [] and parser.n_calls == 1


def test_one_shot_ids_are_fresh():
    a = glm4().parse('search\n{"q": "x"}').tool_calls[0].id
    b = glm4().parse('search\n{"q": "x"}').tool_calls[0].id
    assert a != b and len(a) == len("call_") + 24


def test_a_fresh_parser_per_choice():
    parser = Glm4ToolParser(NAMES)
    parser.feed("x")
    parser.finish()
    with pytest.raises(RuntimeError, match="fresh parser"):
        parser.feed("y")


def test_registry_lists_valid_names():
    assert tool_parser_class("glm4") is Glm4ToolParser
    with pytest.raises(ValueError, match="unknown tool parser 'hermes'; valid: glm4"):
        tool_parser_class("hermes")
    with pytest.raises(ValueError, match="valid: glm4"):
        ChatOutputParser.create(tool_parser="hermes")
