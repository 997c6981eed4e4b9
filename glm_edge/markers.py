"""Text that a stream must hold back because the next piece may complete a marker (a stop string, a
reasoning tag). Pure Python, shared by the engine's stop-string filter and the chat output parsers."""

from __future__ import annotations

from typing import Iterable


def partial_suffix_len(text: str, markers: Iterable[str]) -> int:
    """Length of the longest end of ``text`` that is a proper beginning of one of ``markers``."""
    best = 0
    for marker in markers:
        for k in range(min(len(marker) - 1, len(text)), best, -1):
            if text.endswith(marker[:k]):
                best = k
                break
    return best
