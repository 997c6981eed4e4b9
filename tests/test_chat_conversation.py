"""glm_edge.chat.conversation: the per-family conversions of typed messages (built through the API edge, as the
server builds them: tests/chat_requests.py)."""

from __future__ import annotations

import pytest

from glm_edge.chat import load_template
from glm_edge.chat.conversation import (
    FAMILIES,
    FAMILY_PARSERS,
    detect_family,
    strip_reasoning,
    supports_tools,
    to_template_input,
)
from glm_edge.errors import InvalidRequestError
from tests.chat_requests import edge_input

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
CALL = {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "北京"}'}}


def messages_of(messages):
    return edge_input(messages).messages


def tools_of(tools):
    return edge_input([{"role": "user", "content": "q"}], tools=tools).tools


def test_chatglm_tools_ride_on_a_system_message():
    messages = messages_of([
        {"role": "system", "content": "S"}, {"role": "user", "content": "北京天气"},
        {"role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "function": {
            "name": "search", "arguments": '{"q": "x"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "20度"}])
    out, top_tools = to_template_input("chatglm", messages, tools_of(TOOLS))
    assert top_tools is None
    assert out == [
        {"role": "system", "content": "", "tools": TOOLS},
        {"role": "system", "content": "S"},
        {"role": "user", "content": "北京天气"},
        {"role": "assistant", "metadata": "get_weather", "content": '{"city": "北京"}'},
        {"role": "assistant", "metadata": "search", "content": '{"q": "x"}'},
        {"role": "observation", "content": "20度"}]


def test_glm4_tools_are_a_top_level_variable():
    out, top_tools = to_template_input("glm4", messages_of([{"role": "user", "content": "q"}]),
                                       tools_of(TOOLS))
    assert out == [{"role": "user", "content": "q"}] and top_tools == TOOLS
    assert to_template_input("glm4", messages_of([{"role": "user", "content": "q"}]), [])[1] is None


def test_assistant_text_before_its_calls_is_kept():
    messages = messages_of([{"role": "assistant", "content": "Let me check.", "tool_calls": [CALL]}])
    out, _ = to_template_input("glm4", messages, [])
    assert out == [{"role": "assistant", "metadata": "", "content": "Let me check."},
                   {"role": "assistant", "metadata": "get_weather", "content": '{"city": "北京"}'}]


def test_z1_and_r1_drop_earlier_reasoning_glm4_keeps_text():
    messages = messages_of([{"role": "user", "content": "q"},
                                   {"role": "assistant", "content": "thinking...</think>\n\nanswer",
                                    "reasoning_content": "r"}])
    assert to_template_input("glm-z1", messages)[0][1] == {"role": "assistant", "metadata": "", "content": "answer"}
    assert to_template_input("deepseek-r1", messages)[0][1] == {"role": "assistant", "content": "\n\nanswer"}
    assert to_template_input("glm4", messages)[0][1]["content"] == "thinking...</think>\n\nanswer"
    assert strip_reasoning("no tags") == "no tags"


@pytest.mark.parametrize("family", ["deepseek-r1", "gemma", "chatml"])
def test_families_without_tools_refuse_them(family):
    assert not supports_tools(family)
    with pytest.raises(InvalidRequestError, match="tool calling is not supported by M"):
        to_template_input(family, messages_of([{"role": "user", "content": "q"}]), tools_of(TOOLS),
                          model="M")
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]: tool calls and tool results"):
        to_template_input(family, messages_of([{"role": "user", "content": "q"},
                                                      {"role": "tool", "content": "r"}]), [], model="M")


def test_generic_keeps_openai_shapes():
    messages = messages_of([{"role": "assistant", "content": None, "tool_calls": [CALL],
                                    "reasoning_content": "r"}])
    out, top_tools = to_template_input("generic", messages, tools_of(TOOLS))
    assert out == [{"role": "assistant", "content": "", "tool_calls": [CALL]}]
    assert top_tools == TOOLS


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(ValueError, match="chatglm, glm4, glm-z1, deepseek-r1, gemma, qwen, chatml, generic"):
        to_template_input("llama", [], [])
    assert set(FAMILIES) == {"chatglm", "glm4", "glm-z1", "deepseek-r1", "gemma", "qwen", "chatml", "generic"}


@pytest.mark.parametrize("template, family", [
    ("glm-4-9b-chat", "chatglm"), ("glm-4-0414", "glm4"), ("glm-z1", "glm-z1"),
    ("deepseek-r1-distill", "deepseek-r1"), ("gemma-3", "gemma")])
def test_detect_family_of_the_shipped_templates(template, family):
    assert detect_family(load_template(template).source) == family
    assert set(FAMILY_PARSERS) == set(FAMILIES)


def test_detect_family_falls_back_to_generic():
    assert detect_family("{% for m in messages %}[{{ m.role }}]{% endfor %}") == "generic"
    # ChatML turns: with Qwen's <tool_call> it is the qwen family, without any tools chatml (tools refused),
    # with tools some other way generic
    assert detect_family("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}") == "chatml"
    assert detect_family("{% if tools %}<tool_call>{% endif %}<|im_start|>") == "qwen"
    assert detect_family("{% if tools %}{{ tools }}{% endif %}<|im_start|>") == "generic"


def test_qwen_gets_openai_shapes_with_call_arguments_as_objects():
    """Qwen2.5's template writes `arguments | tojson`: given the OpenAI JSON text it would write a JSON string."""
    messages = messages_of([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "id": "call_b", "function": {
            "name": "search", "arguments": "not json"}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "晴"}])
    out, top_tools = to_template_input("qwen", messages, tools_of(TOOLS))
    assert out[1]["content"] == "" and out[1]["tool_calls"][0]["function"]["arguments"] == {"city": "北京"}
    assert out[1]["tool_calls"][1]["function"]["arguments"] == "not json"  # the client's text, as sent
    assert out[2] == {"role": "tool", "content": "晴", "tool_call_id": "call_a"}
    assert top_tools == TOOLS and supports_tools("qwen")
    assert messages[1].tool_calls[0].function.arguments == '{"city": "北京"}'  # the input is not changed
