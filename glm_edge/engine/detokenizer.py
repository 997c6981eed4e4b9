"""Incremental detokenization and stop-string handling, constant work per token.

`IncrementalDetokenizer` appends each token's bytes to an incremental UTF-8 decoder, so a character split
over several tokens comes out whole once its last byte arrives, and nothing is ever re-decoded.
`StopStringFilter` holds back the tail of the text that could still grow into a stop string; a stop string
is never emitted, even when it is split across tokens. The text it holds is bounded by the longest stop
string, so the work per token does not depend on the length of the answer.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Callable

from glm_edge.markers import partial_suffix_len


class IncrementalDetokenizer:
    """Token ids in, complete UTF-8 text out."""

    def __init__(self, token_to_piece: Callable[[int], bytes]) -> None:
        self._token_to_piece = token_to_piece
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        """Append one token; return the text that became complete (may be empty)."""
        return self._decoder.decode(self._token_to_piece(token_id))

    def flush(self) -> str:
        """End of the answer: whatever bytes remain (an unfinished character becomes U+FFFD)."""
        return self._decoder.decode(b"", final=True)


@dataclass
class StopResult:
    text: str  # text safe to emit now
    stop: str | None = None  # the stop string that matched (the text before it is in `text`)


class StopStringFilter:
    """Hold back text while it could still be the start of a stop string."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in dict.fromkeys(stops) if s]
        self._max_len = max((len(s) for s in self._stops), default=0)
        self._held = ""

    @property
    def held(self) -> str:
        return self._held

    def add(self, text: str) -> StopResult:
        if not self._stops:
            return StopResult(text)
        buffer = self._held + text
        # A match must end inside the new text; earlier positions were checked already. Held text is
        # shorter than the longest stop string, so the search window is bounded.
        start = max(0, len(self._held) - self._max_len + 1)
        best: tuple[int, str] | None = None
        for stop in self._stops:
            idx = buffer.find(stop, start)
            if idx >= 0 and (best is None or idx < best[0]):
                best = (idx, stop)
        if best is not None:
            self._held = ""
            return StopResult(buffer[: best[0]], best[1])
        keep = partial_suffix_len(buffer, self._stops)
        if keep:
            self._held = buffer[-keep:]
            return StopResult(buffer[:-keep])
        self._held = ""
        return StopResult(buffer)

    def flush(self) -> str:
        """The answer ended without a stop string: the held text was ordinary text."""
        held, self._held = self._held, ""
        return held
