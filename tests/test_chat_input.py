"""glm_edge.api.chat_input: a chat request body is validated once, at the API edge, into the chat layer's typed
messages and offered tools (shapes by the request model, the rest by the edge conversion)."""

from __future__ import annotations

import base64
from typing import get_args

import pytest
from pydantic import ValidationError

from glm_edge.api.chat_input import CHAT_ROLE, chat_input, has_file_parts, stored_message
from glm_edge.api.protocol import ChatCompletionRequest, Role
from glm_edge.chat.messages import Message, MessageRole
from glm_edge.documents import DocumentLimits, DocumentReader
from glm_edge.errors import InvalidRequestError
from tests.chat_requests import edge_input

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
CALL = {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "北京"}'}}


def test_history_is_prepended():
    chat = edge_input([{"role": "user", "content": "now"}],
                      history=[{"role": "user", "content": "before"}, {"role": "assistant", "content": "ok"}])
    assert [m.content for m in chat.messages] == ["before", "ok", "now"]
    assert all(isinstance(m, Message) for m in chat.messages)


def test_text_parts_are_joined_and_roles_folded_into_four():
    chat = edge_input([
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "第一段"}, {"type": "input_text", "text": "第二段"}]},
        {"role": "function", "name": "f", "content": "result"},
        {"role": "observation", "content": "glm result"},
        {"role": "user", "name": "alice", "content": "hi"}])
    assert [m.stored() for m in chat.messages] == [
        {"role": "system", "content": "rules"}, {"role": "user", "content": "第一段\n第二段"},
        {"role": "tool", "content": "result", "name": "f"}, {"role": "tool", "content": "glm result"},
        {"role": "user", "content": "hi"}]


def test_every_wire_role_folds_into_a_chat_role():
    """The request model's role list and the edge's folding read two lists: a role added to one must be in both."""
    assert set(CHAT_ROLE) == set(get_args(Role))
    assert set(CHAT_ROLE.values()) == set(get_args(MessageRole))


def test_assistant_calls_and_reasoning_are_kept():
    chat = edge_input([{"role": "assistant", "content": None, "tool_calls": [CALL], "reasoning_content": "r"},
                       {"role": "tool", "tool_call_id": "call_a", "content": "晴"}])
    assert chat.messages[0].stored() == {"role": "assistant", "reasoning_content": "r", "tool_calls": [CALL]}
    assert chat.messages[1].stored() == {"role": "tool", "content": "晴", "tool_call_id": "call_a"}


def test_the_legacy_function_call_becomes_a_tool_call():
    chat = edge_input([{"role": "user", "content": "q"},
                       {"role": "assistant", "content": None,
                        "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                       {"role": "function", "name": "get_weather", "content": "sunny"}])
    (call,) = chat.messages[1].tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'
    assert call.id.startswith("call_")


@pytest.mark.parametrize("messages", [
    [],
    "hello",
    [{"role": "wizard", "content": "x"}],
    [{"content": "x"}],
    [{"role": "user", "content": 5}],
    ["not an object"],
    [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"arguments": "{}"}}]}],
    [{"role": "assistant", "tool_calls": "f"}],
    [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"城市": "上海"}}}]}],
])
def test_wrong_shapes_are_refused_by_the_request_model(messages):
    with pytest.raises(ValidationError):
        edge_input(messages)


def test_the_role_error_names_the_seven_roles():
    with pytest.raises(ValidationError) as info:
        edge_input([{"role": "wizard", "content": "x"}])
    text = str(info.value)
    for role in ("system", "developer", "user", "assistant", "tool", "function", "observation"):
        assert f"'{role}'" in text


@pytest.mark.parametrize("messages, message", [
    ([{"role": "user"}], r"^messages\[0\]: a user message needs content$"),
    ([{"role": "assistant"}], "needs content or tool_calls"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
     r"^messages\[0\]\.content\[0\] is an image_url part; this model reads text only$"),
    ([{"role": "user", "content": [{"type": "text"}]}], r"content\[0\] is a text part without a text string"),
    ([{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:text/plain,x"}}]}],
     r"is a file part; this model reads text only"),  # no document reader given
])
def test_what_the_shapes_cannot_say_is_refused_at_the_edge(messages, message):
    with pytest.raises(InvalidRequestError, match=message):
        edge_input(messages)


def test_the_model_is_named_in_the_part_error():
    with pytest.raises(InvalidRequestError, match=r"is an input_audio part; Qwen reads text only") as info:
        edge_input([{"role": "user", "content": [{"type": "input_audio"}]}], model="Qwen")
    assert info.value.param == "messages[0].content[0]" and info.value.code == "unsupported_content_part"


def test_bad_history_is_reported_as_history():
    with pytest.raises(InvalidRequestError, match=r"history\[1\]") as info:
        edge_input([{"role": "user", "content": "x"}], history=[{"role": "user", "content": "a"}, {"role": "user"}])
    assert info.value.param == "history"


def test_tool_choice_narrows_the_offered_tools():
    def offered(choice):
        return [t.name for t in edge_input([{"role": "user", "content": "q"}], tools=TOOLS, tool_choice=choice).tools]

    assert offered(None) == offered("auto") == offered("required") == ["get_weather", "search"]
    assert offered("none") == []
    assert offered({"type": "function", "function": {"name": "search"}}) == ["search"]
    assert edge_input([{"role": "user", "content": "q"}]).tools == []
    with pytest.raises(ValidationError, match="not in tools"):
        offered({"type": "function", "function": {"name": "nope"}})
    with pytest.raises(ValidationError):
        edge_input([{"role": "user", "content": "q"}], tools=[{"type": "retrieval"}])
    with pytest.raises(ValidationError):
        edge_input([{"role": "user", "content": "q"}], tools={"type": "function"})


def test_file_parts_are_read_by_the_document_reader_in_place():
    data = "data:text/markdown;base64," + base64.b64encode("# 会议纪要\n周五发布。".encode()).decode()
    request = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarize:"}, {"type": "file", "file": {"filename": "notes.md", "file_data": data}},
        {"type": "text", "text": "Briefly."}]}]})
    assert has_file_parts(request)
    reader = DocumentReader(DocumentLimits())
    chat = chat_input(request, "M", files=reader)
    assert chat.messages[0].content == ('Summarize:\n<document name="notes.md">\n# 会议纪要\n周五发布。\n</document>\n'
                                        "Briefly.")
    assert [d.name for d in reader.documents] == ["notes.md"]
    with pytest.raises(InvalidRequestError, match="at most 0 files") as info:
        chat_input(request, "M", files=DocumentReader(DocumentLimits(max_documents=0)))
    assert info.value.code == "too_many_documents" and info.value.param == "messages[0].content[1]"
    assert not has_file_parts(ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "x"}]}))


def test_earlier_turns_come_first():
    earlier = [Message(role="user", content="a"), Message(role="assistant", content="b")]
    request = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "c"}],
                                                    "history": [{"role": "user", "content": "h"}]})
    assert [m.content for m in chat_input(request, earlier=earlier).messages] == ["a", "b", "h", "c"]


def test_stored_messages_are_read_in_both_forms():
    """This version stores ``Message.stored()``; earlier versions stored the wire form (developer role, parts)."""
    now = Message(role="assistant", content=None, tool_calls=edge_input([
        {"role": "assistant", "tool_calls": [CALL]}]).messages[0].tool_calls)
    assert stored_message(now.stored()) == now
    earlier = {"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert stored_message(earlier) == Message(role="system", content="a\nb")
