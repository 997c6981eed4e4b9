"""The ``qwen`` tool-call parser: Qwen2.5's template output turned into OpenAI ``tool_calls``.

Qwen2.5's chat template asks for each call as a JSON object between tags (one or several)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Small models often write the bare object instead, alone or in a Markdown fence (```` ```json ````), so that is a
call too where a call may start: at the beginning of the answer or right after another call (whitespace
skipped). JSON elsewhere in an answer is text. Either way a call is a call only when the object's ``name`` is one
of the offered tools and its ``arguments`` (or ``parameters``) is a JSON object (or the JSON text of one); the
closing ``</tool_call>`` may be missing, a fence must close. Anything else (invalid JSON, an un-offered name, a
tag without an object) stays content, never lost. Content is the model's text without the whitespace that
separates it from a call.

Streaming emits content as it comes, holding back only what could still become a call: a partial tag or fence,
an object that has not closed yet, the closing tag or fence after it, and whitespace that would be dropped if a
call followed. Each call is emitted whole: first a piece with ``id`` and ``name``, then one with the arguments.
Holding it until it is decided is what keeps the streaming answer equal to the one-shot answer (``extract``).
"""

from __future__ import annotations

import json
from typing import Any, Literal, Sequence

from glm_edge.chat.deltas import DeltaMessage, ToolCall, ToolCallDelta
from glm_edge.chat.tool_parsers import ToolParser

TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _object_at(text: str, pos: int) -> tuple[Any, int] | None:
    """The JSON value starting at ``text[pos]`` (a ``{``) and its end, or None if it does not parse (yet)."""
    if not text.startswith("{", pos):
        return None
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError:
        return None


_WAIT: Literal["wait"] = "wait"  # a match that the text so far cannot decide yet (streaming only)


class QwenToolParser(ToolParser):
    name = "qwen"

    def __init__(self, tool_names: Sequence[str]) -> None:
        super().__init__(tool_names)
        self._buf = ""
        self._call_may_start = True  # at the answer's start or right after a call: a bare object is a call
        self._after_call = False  # whitespace here separates content from the call before it: dropped
        self._held_ws = ""  # content whitespace that is dropped if a call follows it
        self._n_calls = 0
        self._finished = False

    # matching (shared by both paths) ---------------------------------------------------------
    def _call(self, obj: Any) -> tuple[str, str] | None:
        """(name, arguments JSON) if ``obj`` is a call of an offered tool."""
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or obj["name"] not in self.tool_names:
            return None
        arguments = obj["arguments"] if "arguments" in obj else obj.get("parameters", {})
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments)
            except ValueError:
                return None
            return (obj["name"], arguments) if isinstance(parsed, dict) else None
        if not isinstance(arguments, dict):
            return None
        return obj["name"], json.dumps(arguments, ensure_ascii=False)

    def _match(self, text: str, pos: int, opener: str, closer: str, *, final: bool,
               close_required: bool) -> tuple[str, str, int] | None | Literal["wait"]:
        """A call at ``text[pos:]``: ``opener`` (may be ""), whitespace, the object, whitespace, ``closer``.
        (name, arguments, end), None when it is not one, or _WAIT when more text could still make it one."""
        rest = text[pos:]
        if not rest.startswith(opener):
            return _WAIT if not final and opener.startswith(rest) else None
        start = _skip_ws(text, pos + len(opener))
        if start == len(text) or text.startswith("{", start):
            decoded = _object_at(text, start)
            if decoded is None:
                return None if final else _WAIT
        else:
            return None
        call = self._call(decoded[0])
        if call is None:
            return None
        close = _skip_ws(text, decoded[1])
        if text.startswith(closer, close):
            return (*call, close + len(closer))
        if not final and closer.startswith(text[close:]):
            return _WAIT
        return None if close_required else (*call, decoded[1])

    def _tagged(self, text: str, pos: int, final: bool) -> tuple[str, str, int] | None | Literal["wait"]:
        return self._match(text, pos, TOOL_CALL_START, TOOL_CALL_END, final=final, close_required=False)

    def _bare(self, text: str, pos: int, final: bool) -> tuple[str, str, int] | None | Literal["wait"]:
        """A bare object, or one in a ```json (or ```) fence."""
        if not text.startswith("`", pos):
            return self._match(text, pos, "", "", final=final, close_required=False)
        fenced = self._match(text, pos, "```json", "```", final=final, close_required=True)
        if fenced is None:
            fenced = self._match(text, pos, "```", "```", final=final, close_required=True)
        return fenced

    # one-shot --------------------------------------------------------------------------------
    def extract(self, text: str) -> tuple[str, list[ToolCall]]:
        calls: list[ToolCall] = []
        pieces: list[str] = []
        pos, after_call = 0, False
        while True:
            bare = self._bare(text, _skip_ws(text, pos), True)  # pos is where a call may start
            if isinstance(bare, tuple):
                calls.append(ToolCall.of(bare[0], bare[1]))
                pos, after_call = bare[2], True
                continue
            tag = text.find(TOOL_CALL_START, pos)
            tagged = self._tagged(text, tag, True) if tag != -1 else None
            while tag != -1 and not isinstance(tagged, tuple):
                tag = text.find(TOOL_CALL_START, tag + 1)
                tagged = self._tagged(text, tag, True) if tag != -1 else None
            piece = text[pos:tag].rstrip() if isinstance(tagged, tuple) else text[pos:]
            pieces.append(piece.lstrip() if after_call else piece)
            if not isinstance(tagged, tuple):
                return "".join(pieces), calls
            calls.append(ToolCall.of(tagged[0], tagged[1]))
            pos, after_call = tagged[2], True

    # streaming -------------------------------------------------------------------------------
    def feed(self, delta: str) -> list[DeltaMessage]:
        if self._finished:
            raise RuntimeError("feed() after finish(): use a fresh parser per request and choice")
        if not self.tool_names:  # nothing can be a call
            return [DeltaMessage(content=delta)] if delta else []
        self._buf += delta
        return self._drain(final=False)

    def finish(self) -> list[DeltaMessage]:
        if self._finished:
            return []
        self._finished = True
        return self._drain(final=True) if self.tool_names else []

    def _emit_call(self, out: list[DeltaMessage], call: tuple[str, str, int]) -> None:
        self._held_ws = ""  # the whitespace before a call is not content
        index = self._n_calls
        self._n_calls += 1
        out.append(DeltaMessage.call_piece(ToolCallDelta.opening(index, call[0])))
        out.append(DeltaMessage.call_piece(ToolCallDelta.more_arguments(index, call[1])))
        self._buf = self._buf[call[2]:]
        self._call_may_start = self._after_call = True

    def _content(self, out: list[DeltaMessage], text: str) -> None:
        """Send ``text`` as content, holding back its trailing whitespace (a call may follow it)."""
        body = text.rstrip()
        if body:
            out.append(DeltaMessage(content=self._held_ws + body))
            self._held_ws = ""
        self._held_ws += text[len(body):]

    def _drain(self, *, final: bool) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
        while True:
            if self._after_call:
                self._buf = self._buf.lstrip()
                if not self._buf and not final:
                    return out
            if self._call_may_start:
                start = _skip_ws(self._buf, 0)
                if start == len(self._buf) and not final:
                    return out
                bare = self._bare(self._buf, start, final)
                if bare == _WAIT:
                    return out
                if isinstance(bare, tuple):
                    self._emit_call(out, bare)
                    continue
                self._call_may_start = False
            if self._buf:
                self._after_call = False
            tag = self._buf.find(TOOL_CALL_START)
            if tag == -1:
                keep = 0 if final else next((n for n in range(len(TOOL_CALL_START) - 1, 0, -1)
                                             if self._buf.endswith(TOOL_CALL_START[:n])), 0)
                self._content(out, self._buf[:len(self._buf) - keep])
                self._buf = self._buf[len(self._buf) - keep:]
                if final and self._held_ws:
                    out.append(DeltaMessage(content=self._held_ws))  # no call follows it
                    self._held_ws = ""
                return out
            self._content(out, self._buf[:tag])
            self._buf = self._buf[tag:]
            tagged = self._tagged(self._buf, 0, final)
            if tagged == _WAIT:
                return out
            if isinstance(tagged, tuple):
                self._emit_call(out, tagged)
                continue
            self._content(out, TOOL_CALL_START)  # not a call: the tag is text
            self._buf = self._buf[len(TOOL_CALL_START):]

    @property
    def n_calls(self) -> int:
        return self._n_calls
