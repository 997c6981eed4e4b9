"""End to end on the embedded default chat model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M: `glm-edge serve` with no
MODEL, called with the official openai client. Answer quality and tool calls, streaming and not; nothing mocked.

One module-scoped server (the other end-to-end tests use the smaller Gemma where quality does not matter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

from tests.server_process import running_default

MODEL = "qwen2.5-coder-0.5b-instruct"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name"}},
                   "required": ["city"]}}}
ASK_WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, qwen_gguf: Path) -> Iterator[openai.OpenAI]:
    with running_default(tmp_path_factory.mktemp("qwen-server")) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=180)


def test_the_default_is_qwen(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_capital_of_france(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0,
        max_tokens=32)
    choice = answer.choices[0]
    assert "Paris" in (choice.message.content or "") and choice.finish_reason == "stop"
    assert not choice.message.tool_calls


def test_chinese_question_gets_a_chinese_answer(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "北京是哪个国家的首都？"}], temperature=0, max_tokens=32)
    content = answer.choices[0].message.content or ""
    # greedy, this model names the country by its full name (中华人民共和国, the People's Republic of China)
    assert "中国" in content or "中华人民共和国" in content, content
    chinese = sum("\u4e00" <= ch <= "\u9fff" for ch in content)
    assert chinese >= len(content.strip()) // 2, content  # the answer is in Chinese, not in English


def _weather_arguments(call: Any) -> dict[str, Any]:
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert "Paris" in arguments["city"]
    return dict(arguments)


def test_tool_call(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER_TOOL],
                                            temperature=0, max_tokens=64)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert len(choice.message.tool_calls or []) == 1
    _weather_arguments(choice.message.tool_calls[0])


def test_tool_call_streamed(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER_TOOL],
                                            temperature=0, max_tokens=64, stream=True)
    pieces, content, finish = [], "", None
    for chunk in stream:
        delta = chunk.choices[0].delta
        content += delta.content or ""
        pieces += delta.tool_calls or []
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and content == ""
    first, rest = pieces[0], pieces[1:]
    assert first.index == 0 and first.id.startswith("call_") and first.function.name == "get_weather"
    assert rest and all(p.index == 0 and p.id is None and p.function.name is None for p in rest)
    arguments = json.loads("".join(p.function.arguments or "" for p in pieces))
    assert "Paris" in arguments["city"]


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}],
                         ids=["required", "named"])
def test_forced_tool_call_in_qwen_format(client: openai.OpenAI, tool_choice: Any) -> None:
    """OpenAI promises a call for "required" and a named function: a grammar makes the model write one in its
    template's <tool_call> format, even for a message that would not call anything by itself."""
    hello = [{"role": "user", "content": "Write a haiku about the sea."}]
    answer = client.chat.completions.create(model=MODEL, messages=hello, tools=[WEATHER_TOOL],
                                            tool_choice=tool_choice, temperature=0, max_tokens=64)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and len(choice.message.tool_calls or []) == 1
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and set(json.loads(call.function.arguments)) == {"city"}
    free = client.chat.completions.create(model=MODEL, messages=hello, tools=[WEATHER_TOOL], temperature=0,
                                          max_tokens=32)
    assert free.choices[0].finish_reason != "tool_calls"  # left to itself the model answers in text here


def test_follow_up_with_the_tool_result_answers_in_text(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER_TOOL],
                                           temperature=0, max_tokens=64).choices[0].message
    call = (first.tool_calls or [])[0]
    messages: list[Any] = [
        *ASK_WEATHER,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 18, "condition": "sunny"})},
        # right after the tool message this 0.5B model repeats its call (0 text answers in 8 samples); with the
        # user's next turn it answers from the result (8 in 8)
        {"role": "user", "content": "So what is the weather in Paris? Answer in words."},
    ]
    for stream in (False, True):
        if stream:
            chunks = list(client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL],
                                                         temperature=0, max_tokens=48, stream=True))
            content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        else:
            answer = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL],
                                                    temperature=0, max_tokens=48).choices[0]
            content, finish = answer.message.content or "", [answer.finish_reason]
            assert not answer.message.tool_calls
        assert finish == ["stop"], content
        assert "sunny" in content.lower() or "18" in content, content
        assert not content.lstrip().startswith(("{", "<tool_call>", "```")), content


def test_assistant_calls_render_as_the_template_writes_them(qwen_gguf: Path) -> None:
    """A call sent back in OpenAI form (arguments as JSON text) becomes the object Qwen's own template writes,
    not a JSON string inside the object."""
    from glm_edge.chat.template import ChatTemplate
    from glm_edge.gguf_header import read_gguf_metadata
    from tests.chat_requests import render_request

    source = read_gguf_metadata(qwen_gguf, keys=["tokenizer.chat_template"])["tokenizer.chat_template"]
    assert isinstance(source, str)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    prompt = render_request(ChatTemplate(source), "qwen", [
        *ASK_WEATHER, {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}], tools=[WEATHER_TOOL]).prompt
    assert ('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
            '</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n'
            '<|im_start|>assistant\n') in prompt
    assert '"description": "Get the current weather in a city"' in prompt  # the tool, in <tools>


def test_models_retrieve(client: openai.OpenAI) -> None:
    card = client.models.retrieve(MODEL)
    assert card.id == MODEL and card.object == "model" and card.owned_by == "glm-edge" and card.created > 0
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.status_code == 404 and "gpt-4o" in missing.value.message


def test_the_sdk_raises_its_typed_errors(client: openai.OpenAI) -> None:
    """What the openai SDK raises for the server's 404 and 400, with OpenAI's error body (type, param)."""
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=ASK_WEATHER, max_tokens=4)
    assert isinstance(unknown.value.body, dict) and "gpt-4o" in unknown.value.body["message"]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=5, max_tokens=4)
    assert bad.value.status_code == 400 and isinstance(bad.value.body, dict)
    assert bad.value.body["type"] == "invalid_request_error" and bad.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as image:
        client.chat.completions.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    assert "image_url" in image.value.message and MODEL in image.value.message
