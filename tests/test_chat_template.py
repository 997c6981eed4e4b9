"""glm_edge.chat.template and the shipped templates: exact prompts (DESIGN.md §4), the sandbox, tojson,
and agreement with transformers' own apply_chat_template rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from glm_edge.chat import builtin_template_names, load_template, to_template_input
from glm_edge.chat.template import ChatTemplate, templates_dir
from glm_edge.errors import ConfigError, InvalidRequestError
from tests.chat_requests import edge_input, render_request

R1_BOS = "<｜begin▁of▁sentence｜>"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "查询天气",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
TOOL_JSON = json.dumps(TOOLS[0]["function"], ensure_ascii=False, indent=4)
CALL_TURNS = [
    {"role": "user", "content": "北京天气？"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "北京"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 20}'},
]


def render(name: str, family: str, messages, **kw) -> str:
    return render_request(load_template(name), family, messages, **kw).prompt


def test_all_templates_are_shipped():
    """Every template the catalog names is shipped, and every shipped template is one the catalog names."""
    from glm_edge.catalog import load_catalog

    named = {Path(e.template).stem for e in load_catalog().of_kind("chat") if e.template}
    assert {"deepseek-r1-distill", "gemma-3", "glm-4-0414", "glm-4-9b-chat", "glm-z1", "chatglm3"} <= named
    assert builtin_template_names() == sorted(named)
    assert (templates_dir() / "README.md").is_file()


# --- glm-4-9b-chat (ChatGLM layout) ----------------------------------------------------------------

def test_glm4_9b_chat_system_and_user():
    prompt = render("glm-4-9b-chat", "chatglm", [{"role": "system", "content": "You are a helpful assistant."},
                                                 {"role": "user", "content": "Hello!"}])
    assert prompt == "[gMASK]<sop><|system|>\nYou are a helpful assistant.<|user|>\nHello!<|assistant|>"


def test_glm4_9b_chat_multi_turn_and_history():
    prompt = render("glm-4-9b-chat", "chatglm", [{"role": "user", "content": "再说一遍"}],
                    history=[{"role": "user", "content": "你好"},
                             {"role": "assistant", "content": "你好！有什么可以帮你？"}])
    assert prompt == ("[gMASK]<sop><|user|>\n你好<|assistant|>\n你好！有什么可以帮你？"
                      "<|user|>\n再说一遍<|assistant|>")


def test_glm4_9b_chat_without_generation_prompt():
    prompt = render("glm-4-9b-chat", "chatglm", [{"role": "user", "content": "hi"}], add_generation_prompt=False)
    assert prompt == "[gMASK]<sop><|user|>\nhi"


def test_glm4_9b_chat_tools_and_tool_results():
    prompt = render("glm-4-9b-chat", "chatglm", [{"role": "system", "content": "简洁回答"}] + CALL_TURNS, tools=TOOLS)
    # trim_blocks eats the first newline after `{% if tool['type'] == 'function' %}`, as transformers does
    assert prompt == (
        "[gMASK]<sop><|system|>\n你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，"
        "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具\n## get_weather\n\n" + TOOL_JSON +
        "\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
        "<|system|>\n简洁回答<|user|>\n北京天气？"
        '<|assistant|>get_weather\n{"city": "北京"}'
        '<|observation|>\n{"temp": 20}<|assistant|>')
    assert "查询天气" in prompt and "\\u" not in prompt  # tojson keeps Chinese


# --- GLM-4-0414 / GLM-Z1 -----------------------------------------------------------------------------

def test_glm4_0414_plain_chat():
    prompt = render("glm-4-0414", "glm4", [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
                                           {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q2"}])
    assert prompt == "[gMASK]<sop><|system|>\nS<|user|>\nQ<|assistant|>\nA<|user|>\nQ2<|assistant|>"


def test_glm4_0414_tools_in_system_turn():
    prompt = render("glm-4-0414", "glm4", [{"role": "system", "content": "简洁回答"}] + CALL_TURNS, tools=TOOLS)
    assert prompt == (
        "[gMASK]<sop><|system|>\n# 可用工具\n\n## get_weather\n\n" + TOOL_JSON +
        "\n在调用上述函数时，请使用 Json 格式表示调用的参数。<|system|>\n简洁回答<|user|>\n北京天气？"
        '<|assistant|>get_weather \n{"city": "北京"}<|observation|>\n{"temp": 20}<|assistant|>')


def test_glm_z1_opens_think_and_drops_earlier_reasoning():
    prompt = render("glm-z1", "glm-z1", [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2", "reasoning_content": "one plus one"},
        {"role": "assistant", "content": "<think>old style</think>\n\n还是 2"},
        {"role": "user", "content": "2+2?"}])
    assert prompt == ("[gMASK]<sop><|user|>\n1+1?<|assistant|>\n2<|assistant|>\n还是 2"
                      "<|user|>\n2+2?<|assistant|>\n<think>")
    assert "one plus one" not in prompt and "old style" not in prompt


# --- DeepSeek-R1 distills ----------------------------------------------------------------------------

def test_r1_prompt_opens_think_after_bos():
    prompt = render("deepseek-r1-distill", "deepseek-r1", [{"role": "user", "content": "1+1?"}], bos_token=R1_BOS)
    assert prompt == R1_BOS + "<｜User｜>1+1?<｜Assistant｜><think>\n"


def test_r1_system_and_earlier_turns_without_reasoning():
    prompt = render("deepseek-r1-distill", "deepseek-r1", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2", "reasoning_content": "one plus one is two"},
        {"role": "user", "content": "2+2?"}], bos_token=R1_BOS)
    assert prompt == (R1_BOS + "Be brief.<｜User｜>1+1?<｜Assistant｜>2<｜end▁of▁sentence｜>"
                      "<｜User｜>2+2?<｜Assistant｜><think>\n")


def test_r1_refuses_tools():
    with pytest.raises(InvalidRequestError, match="tool calling is not supported by DeepSeek-R1-Distill-Qwen-7B"):
        render_request(load_template("deepseek-r1-distill"), "deepseek-r1", [{"role": "user", "content": "q"}],
                           tools=TOOLS, model="DeepSeek-R1-Distill-Qwen-7B")


# --- Gemma 3 -----------------------------------------------------------------------------------------

def test_gemma3_system_folds_into_first_user_turn():
    prompt = render("gemma-3", "gemma", [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                                         {"role": "assistant", "content": "Hello!"},
                                         {"role": "user", "content": "Bye"}],
                    bos_token="<bos>")
    assert prompt == ("<bos><start_of_turn>user\nBe kind.\n\nHi<end_of_turn>\n"
                      "<start_of_turn>model\nHello!<end_of_turn>\n"
                      "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")


def test_gemma3_raise_exception_becomes_400():
    with pytest.raises(InvalidRequestError, match="Conversation roles must alternate"):
        render("gemma-3", "gemma", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


# --- the environment ---------------------------------------------------------------------------------

def test_tojson_is_plain_json_without_html_escaping():
    value = {"城市": "北京", "html": "<a href='x'>&</a>", "n": [1, 2]}
    t = ChatTemplate("{{ v | tojson }}|{{ v | tojson(indent=2) }}|{{ v | tojson(separators=(',', ':')) }}"
                     "|{{ v | tojson(ensure_ascii=True) }}|{{ w | tojson(sort_keys=True) }}")
    out = t.render([], v=value, w={"b": 1, "a": 2}).split("|")
    assert out[0] == '{"城市": "北京", "html": "<a href=\'x\'>&</a>", "n": [1, 2]}'
    assert out[1] == json.dumps(value, ensure_ascii=False, indent=2)
    assert out[2] == '{"城市":"北京","html":"<a href=\'x\'>&</a>","n":[1,2]}'
    assert out[3] == json.dumps(value)  # \u escapes only when asked
    assert out[4] == '{"a": 2, "b": 1}'


def test_strftime_now_and_generation_block_and_loop_controls():
    t = ChatTemplate("{{ strftime_now('%Y') }}|{% generation %}kept{% endgeneration %}|"
                     "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.role }}{% endfor %}")
    year, block, loop = t.render([{"role": "user"}, {"role": "assistant"}]).split("|")
    assert re.fullmatch(r"\d{4}", year) and block == "kept" and loop == "user"


def test_trim_and_lstrip_blocks():
    t = ChatTemplate("{% for m in messages %}\n    {% if m %}\n{{ m }}\n    {% endif %}\n{% endfor %}")
    assert t.render(["a", "b"]) == "a\nb\n"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",                    # attribute escapes
    "{{ messages.append(1) }}",                      # mutating what the server passed in
    "{% set ns = namespace(_hidden=1) %}",           # underscore names on a namespace
])
def test_sandbox_refuses_unsafe_templates(source):
    with pytest.raises(InvalidRequestError, match="cannot render"):
        ChatTemplate(source).render([{"role": "user", "content": "x"}])


def test_render_type_errors_are_invalid_requests():
    with pytest.raises(InvalidRequestError, match="can only concatenate"):
        ChatTemplate("{{ messages[0]['content'] + 1 }}").render([{"role": "user", "content": "x"}])


def test_bad_template_source_is_a_config_error():
    with pytest.raises(ConfigError, match="not a valid Jinja template"):
        ChatTemplate("{% if %}")
    with pytest.raises(ConfigError, match="empty"):
        ChatTemplate("  ")


def test_load_template_by_name_and_path(tmp_path):
    with pytest.raises(ConfigError, match="glm-4-9b-chat"):  # the message lists what exists
        load_template("no-such-template")
    path = tmp_path / "mine.jinja"
    path.write_text("{{ messages[0].content }}!", encoding="utf-8")
    assert load_template(path).render([{"role": "user", "content": "hey"}]) == "hey!"
    with pytest.raises(ConfigError, match="not found"):
        load_template(tmp_path / "missing.jinja")


# --- the same text as transformers renders -----------------------------------------------------------

CONVERSATIONS = {
    "chatglm": [([{"role": "system", "content": "你是助手"}, {"role": "user", "content": "你好"}], None),
                ([{"role": "system", "content": "S"}] + CALL_TURNS, TOOLS)],
    "glm4": [([{"role": "user", "content": "你好"}, {"role": "assistant", "content": "嗨"},
               {"role": "user", "content": "再见"}], None),
             (CALL_TURNS, TOOLS)],
    "glm-z1": [([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                 {"role": "user", "content": "q2"}], None), (CALL_TURNS, TOOLS)],
    "deepseek-r1": [([{"role": "system", "content": "S"}, {"role": "user", "content": "q"},
                      {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}], None)],
    "gemma": [([{"role": "system", "content": "S"}, {"role": "user", "content": "q"}], None)],
}
TEMPLATE_OF = {"chatglm": "glm-4-9b-chat", "glm4": "glm-4-0414", "glm-z1": "glm-z1",
               "deepseek-r1": "deepseek-r1-distill", "gemma": "gemma-3"}


@pytest.mark.parametrize("family", sorted(CONVERSATIONS))
def test_renders_like_transformers(family):
    from transformers.utils.chat_template_utils import render_jinja_template

    template = load_template(TEMPLATE_OF[family])
    for messages, tools in CONVERSATIONS[family]:
        chat = edge_input(messages, tools=tools)
        msgs, template_tools = to_template_input(family, chat.messages, chat.tools)
        ours = template.render(msgs, tools=template_tools, bos_token="<s>", eos_token="</s>")
        theirs = render_jinja_template([msgs], tools=template_tools, chat_template=template.source,
                                       add_generation_prompt=True, bos_token="<s>", eos_token="</s>")
        theirs = theirs[0][0] if isinstance(theirs, tuple) else theirs[0]
        assert ours == theirs
