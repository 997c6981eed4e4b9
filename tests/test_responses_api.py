"""The Responses API (`POST /v1/responses`) end to end with the official openai client, on the real embedded default
model (Qwen2.5-Coder-0.5B-Instruct) and on a tiny R1-distill GGUF for reasoning items; nothing mocked. Every body
and every streamed event is validated against OpenAI's own OpenAPI spec (the helpers of
tests/test_openapi_conformance.py), and answers are compared with `/v1/chat/completions` on the same conversation:
both routes are one serving path."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any, Iterator

import httpx
import openai
import pytest

from glm_edge_convert import synthesize
from tests import test_server_qwen_default
from tests.server_process import running_server, server_process
from tests.test_openapi_conformance import assert_valid, component, response_schema

MODEL = "qwen2.5-coder-0.5b-instruct"
R1 = "DeepSeek-R1-Distill-Qwen-1.5B"
RESPONSE = response_schema("/responses", "post")
ERROR = component("ErrorResponse")
EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent", "response.in_progress": "ResponseInProgressEvent",
    "response.completed": "ResponseCompletedEvent", "response.incomplete": "ResponseIncompleteEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent", "response.output_text.done": "ResponseTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
    "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
    "error": "ResponseErrorEvent",
}
WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name"}},
                          "required": ["city"]}}
CHAT_WEATHER = {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
FRANCE = "What is the capital of France?"


# the real default model, served as tests/test_server_qwen_default.py serves it (one server per module)
default_model_client = test_server_qwen_default.client


@pytest.fixture(scope="module")
def client(default_model_client: openai.OpenAI) -> openai.OpenAI:
    return default_model_client


@pytest.fixture(scope="module")
def url(client: openai.OpenAI) -> str:
    return str(client.base_url).rstrip("/").removesuffix("/v1")


@pytest.fixture(scope="module")
def r1_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("responses-r1")
    gguf = synthesize("qwen2", "tiny", folder / f"{R1}-tiny.gguf", progress=False)
    with running_server(str(gguf), "--no-embedding", "--ctx-size", "1024", "--parallel", "2", "--threads", "2",
                        log_path=folder / "serve.log") as served:
        yield served


def create(client: openai.OpenAI, **body: Any) -> Any:
    """client.responses.create, with the raw body validated against the spec's Response schema."""
    raw = client.responses.with_raw_response.create(**{"model": MODEL, "temperature": 0, **body})
    assert raw.status_code == 200
    assert_valid(json.loads(raw.text), RESPONSE)
    return raw.parse()


def raw_events(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE events of a streamed response as sent, each checked against its schema and its `event:` name."""
    events: list[dict[str, Any]] = []
    name = None
    with httpx.stream("POST", f"{url}/v1/responses", timeout=180,
                      json={"model": MODEL, "temperature": 0, **body, "stream": True}) as res:
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
        for line in res.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                assert line != "data: [DONE]"  # a Responses stream ends with its last event
                event = json.loads(line[6:])
                assert event["type"] == name
                assert_valid(event, component(EVENT_SCHEMAS[event["type"]]))
                events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def chat(client: openai.OpenAI, messages: list[Any], **extra: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=messages, temperature=0, **extra)


# ------------------------------------------------------------------------------------------------ text


def test_string_input_is_one_user_message(client: openai.OpenAI) -> None:
    answer = create(client, input=FRANCE, max_output_tokens=32)
    assert answer.object == "response" and answer.id.startswith("resp_") and answer.status == "completed"
    assert answer.model == MODEL and answer.error is None and answer.incomplete_details is None
    assert [item.type for item in answer.output] == ["message"]
    assert answer.output[0].role == "assistant" and answer.output[0].status == "completed"
    assert "Paris" in answer.output_text
    usage = answer.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    same = chat(client, [{"role": "user", "content": FRANCE}], max_tokens=32)  # the same prompt, the same path
    assert same.choices[0].message.content == answer.output_text
    assert (same.usage.prompt_tokens, same.usage.completion_tokens) == (usage.input_tokens, usage.output_tokens)


def test_instructions_and_a_message_list(client: openai.OpenAI) -> None:
    instructions = "You are a geography teacher. Answer in one short sentence."
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Hello, I am Ann."}]},
             {"role": "assistant", "content": [{"type": "output_text", "text": "Hello Ann! How can I help?"}]},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": FRANCE}]}]
    answer = create(client, instructions=instructions, input=items, max_output_tokens=32)
    assert answer.instructions == instructions and "Paris" in answer.output_text
    same = chat(client, [{"role": "system", "content": instructions}, {"role": "user", "content": "Hello, I am Ann."},
                         {"role": "assistant", "content": "Hello Ann! How can I help?"},
                         {"role": "user", "content": FRANCE}], max_tokens=32)
    assert same.usage.prompt_tokens == answer.usage.input_tokens  # instructions rendered as the first system turn
    assert same.choices[0].message.content == answer.output_text


def test_max_output_tokens_cuts_the_answer(client: openai.OpenAI) -> None:
    answer = create(client, input="Write a long story about a dragon.", max_output_tokens=5)
    assert answer.status == "incomplete" and answer.incomplete_details.reason == "max_output_tokens"
    assert answer.usage.output_tokens == 5 and answer.output[0].status == "incomplete"


def test_text_format_json_schema(client: openai.OpenAI, url: str) -> None:
    """`text.format` becomes the chat request's response_format: a grammar holds the answer to the schema."""
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"],
              "additionalProperties": False}
    answer = create(client, input="What is the capital of France? Answer in JSON.", max_output_tokens=32,
                    text={"format": {"type": "json_schema", "name": "capital", "schema": schema, "strict": True}})
    assert "Paris" in json.loads(answer.output_text)["capital"]
    assert answer.text.format.type == "json_schema"
    events = raw_events(url, {"input": "What is the capital of France? Answer in JSON.", "max_output_tokens": 32,
                              "text": {"format": {"type": "json_schema", "name": "capital", "schema": schema}}})
    assert events[-1]["response"]["text"]["format"]["schema"] == schema
    assert json.loads(events[-1]["response"]["output"][0]["content"][0]["text"]) == json.loads(answer.output_text)


def test_streamed_events(client: openai.OpenAI, url: str) -> None:
    body = {"input": FRANCE, "max_output_tokens": 32}
    events = raw_events(url, body)
    kinds = [e["type"] for e in events]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 1
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * len(deltas),
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    item_id = events[2]["item"]["id"]
    assert all(e["item_id"] == item_id for e in events[3:-2])
    text = "".join(deltas)
    assert "Paris" in text and events[-4]["text"] == text and events[-2]["item"]["content"][0]["text"] == text
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["output"] == [events[-2]["item"]]
    assert final["usage"]["output_tokens"] > 0 and final["usage"]["input_tokens"] > 0
    # the SDK's own stream reads the same events, and the whole answer equals the one not streamed
    sdk = list(client.responses.create(model=MODEL, temperature=0, stream=True, **body))  # type: ignore[arg-type]
    assert [e.type for e in sdk] == kinds
    assert sdk[-1].response.output_text == text == create(client, **body).output_text
    with client.responses.stream(model=MODEL, temperature=0, **body) as manager:  # the SDK's accumulating helper
        assert manager.get_final_response().output_text == text


# ------------------------------------------------------------------------------------------------ tools


def _weather_call(items: list[Any]) -> Any:
    calls = [item for item in items if item.type == "function_call"]
    assert len(calls) == 1, items
    call = calls[0]
    assert call.name == "get_weather" and call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert "Paris" in json.loads(call.arguments)["city"]
    return call


def test_function_call(client: openai.OpenAI) -> None:
    answer = create(client, input="What's the weather in Paris?", tools=[WEATHER], max_output_tokens=64)
    assert [item.type for item in answer.output] == ["function_call"] and answer.status == "completed"
    _weather_call(answer.output)
    assert answer.tools[0].name == "get_weather" and answer.tool_choice == "auto"


def test_forced_function_call(client: openai.OpenAI) -> None:
    """A message the model would answer in text by itself, with tool_choice naming the function."""
    haiku = "Write a haiku about the sea."
    free = create(client, input=haiku, tools=[WEATHER], max_output_tokens=32)
    assert [item.type for item in free.output] == ["message"]
    forced = create(client, input=haiku, tools=[WEATHER], max_output_tokens=64,
                    tool_choice={"type": "function", "name": "get_weather"})
    assert [item.type for item in forced.output] == ["function_call"]
    assert forced.output[0].name == "get_weather" and set(json.loads(forced.output[0].arguments)) == {"city"}


def test_function_call_streamed(url: str) -> None:
    events = raw_events(url, {"input": "What's the weather in Paris?", "tools": [WEATHER], "max_output_tokens": 64})
    kinds = [e["type"] for e in events]
    pieces = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert pieces and kinds == ["response.created", "response.in_progress", "response.output_item.added",
                                *["response.function_call_arguments.delta"] * len(pieces),
                                "response.function_call_arguments.done", "response.output_item.done",
                                "response.completed"]
    added, done, item = events[2]["item"], events[-3], events[-2]["item"]
    assert added["type"] == "function_call" and added["name"] == "get_weather" and added["arguments"] == ""
    assert done["arguments"] == "".join(pieces) == item["arguments"] and done["name"] == "get_weather"
    assert item["id"] == added["id"] == done["item_id"] and item["call_id"] == added["call_id"]
    assert "Paris" in json.loads(item["arguments"])["city"]
    assert events[-1]["response"]["output"] == [item]


def test_function_call_output_follow_up(client: openai.OpenAI, url: str) -> None:
    ask = {"role": "user", "content": "What's the weather in Paris?"}
    call = _weather_call(create(client, input=[ask], tools=[WEATHER], max_output_tokens=64).output)
    result = json.dumps({"temperature_c": 18, "condition": "sunny"})
    items: list[Any] = [
        ask, call.model_dump(exclude_none=True), {"type": "function_call_output", "call_id": call.call_id,
                                                  "output": result},
        # right after the tool result this 0.5B model repeats its call; with the user's next turn it answers
        {"role": "user", "content": "So what is the weather in Paris? Answer in words."},
    ]
    answer = create(client, input=items, tools=[WEATHER], max_output_tokens=48)
    assert [item.type for item in answer.output] == ["message"], answer.output
    text = answer.output_text
    assert ("sunny" in text.lower() or "18" in text) and not text.lstrip().startswith(("{", "<tool_call>")), text
    same = chat(client, [ask, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": result}, items[-1]],
        tools=[CHAT_WEATHER], max_tokens=48)
    assert same.usage.prompt_tokens == answer.usage.input_tokens and same.choices[0].message.content == text
    streamed = raw_events(url, {"input": items, "tools": [WEATHER], "max_output_tokens": 48})
    assert "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta") == text


# ------------------------------------------------------------------------------------------- reasoning


def test_reasoning_items_on_r1(r1_url: str) -> None:
    """The R1 prompt opens <think> and random weights never close it: the whole (cut) answer is reasoning."""
    client = openai.OpenAI(base_url=f"{r1_url}/v1", api_key="unused", max_retries=0, timeout=120)
    body: dict[str, Any] = {"model": R1, "input": "Why is the sky blue?", "max_output_tokens": 16, "temperature": 0}
    raw = client.responses.with_raw_response.create(**body)
    assert_valid(json.loads(raw.text), RESPONSE)
    answer = raw.parse()
    assert [item.type for item in answer.output] == ["reasoning"] and answer.status == "incomplete"
    reasoning = answer.output[0]
    assert reasoning.id.startswith("rs_") and reasoning.summary == [] and reasoning.content[0].type == "reasoning_text"
    same = client.chat.completions.create(model=R1, messages=[{"role": "user", "content": "Why is the sky blue?"}],
                                          max_tokens=16, temperature=0)
    assert reasoning.content[0].text == same.choices[0].message.reasoning_content  # type: ignore[attr-defined]
    events = raw_events(r1_url, body)
    kinds = [e["type"] for e in events]
    deltas = [e["delta"] for e in events if e["type"] == "response.reasoning_text.delta"]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     *["response.reasoning_text.delta"] * len(deltas), "response.reasoning_text.done",
                     "response.output_item.done", "response.incomplete"]
    assert "".join(deltas) == events[-3]["text"] == reasoning.content[0].text
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    refused = httpx.post(f"{r1_url}/v1/responses", json={**body, "tools": [WEATHER]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tools"  # R1 templates have no tools
    assert_valid(refused.json(), ERROR)


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"input": FRANCE, "previous_response_id": "resp_123"}, 404, "no conversation"),
    ({"input": []}, 400, "input must not be empty"),
    ({"input": [{"type": "web_search_call", "id": "x"}]}, 400, "an input item's type must be"),
    ({"input": FRANCE, "tools": [{"type": "web_search"}]}, 400, "only function tools"),
    ({"input": FRANCE, "tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}, 400,
     "tool_choice names 'nope'"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}], }, 400,
     "input_image part"),
    ({"input": FRANCE, "max_output_tokens": 0}, 400, "max_output_tokens"),
    ({"input": FRANCE, "text": {"format": {"type": "json_schema", "name": "x"}}}, 400, "needs a name and a schema"),
    ({"input": FRANCE, "model": "gpt-4o"}, 404, "gpt-4o"),
], ids=["previous-response", "empty-input", "unknown-item", "hosted-tool", "unknown-tool-choice", "image",
        "zero-tokens", "schema-missing", "unknown-model"])
def test_errors_in_openai_shape(url: str, body: dict[str, Any], status: int, says: str) -> None:
    res = httpx.post(f"{url}/v1/responses", json={"model": MODEL, **body}, timeout=60)
    assert res.status_code == status, res.text
    assert_valid(res.json(), ERROR)
    assert says in res.json()["error"]["message"], res.json()


def test_previous_response_id_through_the_sdk(client: openai.OpenAI) -> None:
    """A stored response continues by its id (the store of /v1/chat/completions); an unknown id is a 404."""
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input=FRANCE, previous_response_id="resp_123")
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "previous_response_id"
    assert error["code"] == "conversation_not_found"
    first = client.responses.create(model=MODEL, input="My name is Ada. Reply with OK.", temperature=0,
                                    max_output_tokens=8)
    assert first.store is True
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id,
                                     temperature=0, max_output_tokens=16)
    assert second.previous_response_id == first.id
    assert second.usage is not None and second.usage.input_tokens_details.cached_tokens > 0
    assert second.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]


def test_an_error_after_the_200_is_the_error_event(tmp_path: Path, default_gguf: Path) -> None:
    """SIGTERM cuts a streamed response off after the grace period: the stream ends with the Responses API's own
    `error` event, numbered on from the events before it; no `response.completed` and no `[DONE]`."""
    events: list[dict[str, Any]] = []
    names: list[str] = []
    with server_process("gemma-3-270m", "--no-embedding", "--parallel", "1", "--ctx-size", "2048", "--threads", "2",
                        "--shutdown-grace", "1", log_path=tmp_path / "serve.log") as (url, proc):
        body = {"model": "gemma-3-270m", "input": "1, 2, 3, 4, 5, 6, 7, 8,", "temperature": 0, "stream": True}
        with httpx.stream("POST", f"{url}/v1/responses", json=body, timeout=300) as res:
            assert res.status_code == 200
            for line in res.iter_lines():
                if line.startswith("event: "):
                    names.append(line[7:])
                elif line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "response.output_text.delta" and len(names) == len(events) == 5:
                        proc.send_signal(signal.SIGTERM)  # the first piece of text has come: far from the end
        assert proc.wait(timeout=60) == 0
    assert names == [e["type"] for e in events] and [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[4]["type"] == "response.output_text.delta"
    error = events[-1]
    assert_valid(error, component("ResponseErrorEvent"))
    assert error["type"] == "error" and error["code"] == "server_shutting_down" and "grace period" in error["message"]
    assert not any(e["type"] in ("response.completed", "response.incomplete") for e in events)
