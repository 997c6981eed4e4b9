"""Tool-call parsers: turn a model's raw answer into OpenAI ``tool_calls``.

``glm4`` (glm-4-9b-chat, GLM-4-0414, GLM-Z1): after ``<|assistant|>`` the model writes either a plain
answer (starting with a newline) or a call::

    get_weather
    {"city": "北京"}

A segment is a call when its first line (whitespace-trimmed) is one of the offered tool names and
what follows is a JSON object. Several calls follow one another, separated by ``<|assistant|>`` when
the engine renders control tokens as text, or directly concatenated when it renders them as nothing
(both are accepted: a JSON object ends itself). Leading whitespace and the separators
``<|assistant|>`` / ``<|observation|>`` between segments are dropped. The first segment that is not a
call ends the calls: it and everything after it is content (so a plain answer, an unknown name or
malformed JSON all come back as content, never lost).

Streaming emits content as it comes, holding back only while the text so far could still be the
first line of a call (a prefix of a tool name) or a separator. A call is emitted once its JSON
object is complete: first a piece with ``id`` and ``name``, then a piece with the arguments. Holding
the arguments until they parse is what lets the streaming answer always equal the one-shot answer
(a call whose JSON turns out malformed is content in both).
"""

from __future__ import annotations

import json
from typing import Sequence

from glm_edge.chat.deltas import DeltaMessage, ToolCall, ToolCallDelta

GLM4_SEPARATORS = ("<|assistant|>", "<|observation|>")
_DECODER = json.JSONDecoder()


def _decode_object(text: str) -> int | None:
    """End offset of the JSON object at the start of ``text``, or None."""
    if not text.startswith("{"):
        return None
    try:
        obj, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError:
        return None
    return end if isinstance(obj, dict) else None


class ToolParser:
    """Base: one instance per choice, built with the names of the tools offered to this request."""

    name = ""

    def __init__(self, tool_names: Sequence[str]) -> None:
        self.tool_names = frozenset(tool_names)

    def extract(self, text: str) -> tuple[str, list[ToolCall]]:
        """(content, calls) of a whole answer."""
        raise NotImplementedError

    def feed(self, delta: str) -> list[DeltaMessage]:
        raise NotImplementedError

    def finish(self) -> list[DeltaMessage]:
        raise NotImplementedError


class Glm4ToolParser(ToolParser):
    name = "glm4"

    def __init__(self, tool_names: Sequence[str], separators: Sequence[str] = GLM4_SEPARATORS) -> None:
        super().__init__(tool_names)
        self.separators = tuple(separators)
        self._buf = ""
        self._mode = "segment"  # "segment": deciding what the next segment is; "args": in a call; "content"
        self._name = ""  # the call being read (mode "args")
        self._n_calls = 0
        self._finished = False

    # one-shot --------------------------------------------------------------------------------
    def extract(self, text: str) -> tuple[str, list[ToolCall]]:
        calls: list[ToolCall] = []
        rest = text
        while True:
            rest = self._skip_gap(rest)
            line, newline, after = rest.partition("\n")
            name = line.strip()
            if newline and name in self.tool_names:
                args = after.lstrip()
                end = _decode_object(args)
                if end is not None:
                    calls.append(ToolCall.of(name, args[:end]))
                    rest = args[end:]
                    continue
            return rest, calls

    def _skip_gap(self, text: str) -> str:
        """Drop the whitespace and separators before a segment."""
        while True:
            text = text.lstrip()
            for sep in self.separators:
                if text.startswith(sep):
                    text = text[len(sep):]
                    break
            else:
                return text

    # streaming -------------------------------------------------------------------------------
    def feed(self, delta: str) -> list[DeltaMessage]:
        if self._finished:
            raise RuntimeError("feed() after finish(): use a fresh parser per request and choice")
        self._buf += delta
        return self._drain(final=False)

    def finish(self) -> list[DeltaMessage]:
        if self._finished:
            return []
        out = self._drain(final=True)
        self._finished = True
        return out

    def _drain(self, *, final: bool) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
        while True:
            if self._mode == "content":
                if self._buf:
                    out.append(DeltaMessage(content=self._buf))
                    self._buf = ""
                return out
            if self._mode == "segment":
                self._buf = self._skip_gap(self._buf)
                if not self._buf:
                    return out
                if not final and self._maybe_separator(self._buf):
                    return out
                line, newline, after = self._buf.partition("\n")
                if not newline:
                    if not final and self._maybe_name(self._buf):
                        return out  # could still be the first line of a call
                    self._mode = "content"
                    continue
                if line.strip() not in self.tool_names:
                    self._mode = "content"
                    continue
                self._mode = "args"
                self._name = line.strip()
                # keep the whole segment in the buffer: it becomes content if the arguments fail
                continue
            # mode "args": the buffer is "name line\n" + argument text
            _, _, after = self._buf.partition("\n")
            args = after.lstrip()
            if not args:
                if final:
                    self._mode = "content"
                    continue
                return out
            end = _decode_object(args) if "}" in args else None
            if end is None:
                if final or not args.startswith("{"):
                    self._mode = "content"  # not a JSON object, or one that never closed: the segment is text
                    continue
                return out
            index = self._n_calls
            self._n_calls += 1
            out.append(DeltaMessage.call_piece(ToolCallDelta.opening(index, self._name)))
            out.append(DeltaMessage.call_piece(ToolCallDelta.more_arguments(index, args[:end])))
            self._buf = args[end:]
            self._mode = "segment"

    def _maybe_separator(self, text: str) -> bool:
        return any(sep.startswith(text) and sep != text for sep in self.separators)

    def _maybe_name(self, text: str) -> bool:
        """Could ``text`` (no newline yet) still grow into a first line whose trimmed form is a tool name?"""
        for name in self.tool_names:
            if name.startswith(text):
                return True
            if text.startswith(name) and not text[len(name):].strip():
                return True
        return False

    @property
    def n_calls(self) -> int:
        return self._n_calls
