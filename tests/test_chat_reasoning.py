"""glm_edge.chat.reasoning: the deepseek_r1 parser (R1 distills and GLM-Z1), streaming == one-shot."""

from __future__ import annotations

import pytest

from glm_edge.chat import ChatOutputParser
from glm_edge.chat.output import reasoning_parser_class
from glm_edge.chat.reasoning import DeepSeekR1ReasoningParser

if __package__:  # tests/ is a package
    from .test_chat_agreement import assert_stream_matches_oneshot
else:  # tests/ on sys.path (pytest's rootdir-relative "prepend" import mode)
    from test_chat_agreement import assert_stream_matches_oneshot


def r1() -> ChatOutputParser:
    return ChatOutputParser.create("deepseek_r1")


@pytest.mark.parametrize("text, reasoning, content", [
    # what R1 writes after a prompt that ends "<｜Assistant｜><think>\n"
    ("Let me think. 1+1 is 2.\n</think>\n\nThe answer is 2.", "Let me think. 1+1 is 2.", "The answer is 2."),
    ("嗯，用户问的是首都。北京是中国的首都。\n</think>\n\n北京。", "嗯，用户问的是首都。北京是中国的首都。", "北京。"),
    # older templates: the model opens <think> itself; the tag is removed
    ("<think>\nhmm\n</think>\n\nok", "hmm", "ok"),
    # cut off before </think>: everything is reasoning
    ("still thinking about 北京", "still thinking about 北京", ""),
    # only the first </think> splits; later tags belong to the answer
    ("a</think>b</think>c", "a", "b</think>c"),
    ("a</think>see the <think> tag", "a", "see the <think> tag"),
    # empty reasoning
    ("</think>answer", None, "answer"),
    # strings that look like the start of a tag but are not
    ("x<y</thinkz>w <th", "x<y</thinkz>w <th", ""),
    # whitespace inside the reasoning and the answer is kept
    ("a  \n\n b\n</think>\n\nline1\n\nline2  ", "a  \n\n b", "line1\n\nline2  "),
    ("", None, ""),
])
def test_split_reasoning_and_content(text, reasoning, content):
    parsed = assert_stream_matches_oneshot(r1, text)
    assert parsed.reasoning_content == reasoning
    assert parsed.content == content
    assert parsed.tool_calls == []


def test_tags_split_at_every_position():
    text = "想<think>一想</think>\n\n答案"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            parser = DeepSeekR1ReasoningParser()
            pieces = [parser.feed(text[:i]), parser.feed(text[i:j]), parser.feed(text[j:]), parser.finish()]
            assert "".join(p[0] for p in pieces) == "想一想"
            assert "".join(p[1] for p in pieces) == "答案"


def test_streaming_holds_back_only_a_possible_tag():
    parser = DeepSeekR1ReasoningParser()
    assert parser.feed("thinking <") == ("thinking", "")  # "<" might start "</think>"; " " waits for more text
    assert parser.feed("b> more") == (" <b> more", "")    # not a tag after all: every character comes out once
    assert parser.feed("</thi") == ("", "")
    assert parser.feed("nk>\n\nAns") == ("", "Ans")
    assert parser.feed("wer") == ("", "wer")
    assert parser.finish() == ("", "")


def test_a_fresh_parser_per_choice():
    parser = DeepSeekR1ReasoningParser()
    parser.feed("a</think>b")
    parser.finish()
    with pytest.raises(RuntimeError, match="fresh parser"):
        parser.feed("more")
    assert parser.finish() == ("", "")
    other = DeepSeekR1ReasoningParser()  # no state leaks between instances
    assert other.feed("x") == ("x", "")


def test_registry_lists_valid_names():
    assert reasoning_parser_class("deepseek_r1") is DeepSeekR1ReasoningParser
    with pytest.raises(ValueError, match="unknown reasoning parser 'qwen3'; valid: deepseek_r1"):
        reasoning_parser_class("qwen3")


def test_finish_reason_is_unchanged_without_tools():
    parser = r1()
    parser.parse("a</think>b")
    assert parser.finish_reason("stop") == "stop" and parser.finish_reason("length") == "length"
