"""Reasoning parsers: split a thinking model's output into ``reasoning_content`` and ``content``.

``deepseek_r1`` (DeepSeek-R1 distills and GLM-Z1): the prompt already opens ``<think>``, so the model
writes its reasoning, then ``</think>``, then the answer.

- text before the first ``</think>`` is reasoning, text after it is content;
- if ``</think>`` never comes (cut off by ``max_tokens``), everything is reasoning;
- a ``<think>`` the model writes itself (older templates did not open it) is removed;
- whitespace around the reasoning and before the answer is trimmed (the model writes ``\\n</think>\\n\\n``).

A parser instance belongs to one choice of one request: ``feed`` keeps state. ``extract`` is the
one-shot path for a whole output and is written independently of ``feed``; the tests hold the two
to the same answer for every way of cutting the output into chunks.
"""

from __future__ import annotations

from glm_edge.markers import partial_suffix_len

THINK_START = "<think>"
THINK_END = "</think>"


class ReasoningParser:
    """Base: one instance per choice. ``feed``/``finish`` return (reasoning delta, content delta)."""

    name = ""

    def extract(self, text: str) -> tuple[str, str]:
        raise NotImplementedError

    def feed(self, delta: str) -> tuple[str, str]:
        raise NotImplementedError

    def finish(self) -> tuple[str, str]:
        raise NotImplementedError


class DeepSeekR1ReasoningParser(ReasoningParser):
    name = "deepseek_r1"

    def __init__(self) -> None:
        self._buf = ""  # text not yet classified (may end in part of a tag)
        self._in_reasoning = True
        self._reasoning_started = False  # leading whitespace of the reasoning is dropped
        self._reasoning_ws = ""  # trailing whitespace held back until more reasoning text follows
        self._content_started = False  # leading whitespace of the content is dropped
        self._finished = False

    # one-shot --------------------------------------------------------------------------------
    def extract(self, text: str) -> tuple[str, str]:
        reasoning, found, content = text.partition(THINK_END)
        if not found:
            content = ""
        return reasoning.replace(THINK_START, "").strip(), content.lstrip()

    # streaming -------------------------------------------------------------------------------
    def feed(self, delta: str) -> tuple[str, str]:
        if self._finished:
            raise RuntimeError("feed() after finish(): use a fresh parser per request and choice")
        self._buf += delta
        return self._drain(final=False)

    def finish(self) -> tuple[str, str]:
        if self._finished:
            return "", ""
        reasoning, content = self._drain(final=True)
        self._finished = True
        self._reasoning_ws = ""  # trailing whitespace of unfinished reasoning is dropped, as in extract()
        return reasoning, content

    def _drain(self, *, final: bool) -> tuple[str, str]:
        reasoning: list[str] = []
        content: list[str] = []
        while self._buf:
            if not self._in_reasoning:
                content.append(self._content(self._buf))
                self._buf = ""
                break
            end = self._buf.find(THINK_END)
            start = self._buf.find(THINK_START)
            if start != -1 and (end == -1 or start < end):  # a <think> the model wrote: drop the tag
                reasoning.append(self._reasoning(self._buf[:start]))
                self._buf = self._buf[start + len(THINK_START):]
                continue
            if end != -1:
                reasoning.append(self._reasoning(self._buf[:end]))
                self._buf = self._buf[end + len(THINK_END):]
                self._in_reasoning = False
                self._reasoning_ws = ""  # whitespace before </think> is dropped
                continue
            keep = 0 if final else partial_suffix_len(self._buf, (THINK_START, THINK_END))
            reasoning.append(self._reasoning(self._buf[:len(self._buf) - keep]))
            self._buf = self._buf[len(self._buf) - keep:]
            break
        return "".join(reasoning), "".join(content)

    def _reasoning(self, text: str) -> str:
        if not self._reasoning_started:
            text = text.lstrip()
            if not text:
                return ""
            self._reasoning_started = True
        text = self._reasoning_ws + text
        body = text.rstrip()
        self._reasoning_ws = text[len(body):]
        return body

    def _content(self, text: str) -> str:
        if not self._content_started:
            text = text.lstrip()
            if text:
                self._content_started = True
        return text
