"""A synthetic byte-level BPE vocabulary of any size, with working merges.

Tokens are the 256 byte tokens, then strings grown one character at a time in breadth-first order
("Ġt", "th", "Ġth", "the", ...), each with the merge that builds it, so llama.cpp tokenizes any text
with it (Chinese falls back to bytes). Special tokens sit at the ids the real model uses.
"""

from __future__ import annotations

from collections import deque

import gguf

from .tiktoken_vocab import bytes_to_token
from .vocab import Vocab

_LETTERS = "etaoinsrhldcumfpgwybvkxjqz"
_STARTS = [bytes_to_token(b" ")] + list(_LETTERS) + list("ETAOINSRHLDCUMFPGWYBVKXJQZ") + list("0123456789")


def _grown_tokens(n: int) -> list[tuple[str, str]]:
    """n (left, right) pairs whose concatenations are new tokens, breadth first."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    queue: deque[str] = deque(_STARTS)
    while queue and len(out) < n:
        prefix = queue.popleft()
        for c in _LETTERS:
            tok = prefix + c
            if tok in seen:
                continue
            seen.add(tok)
            out.append((prefix, c))
            queue.append(tok)
            if len(out) == n:
                break
    return out


def synthetic_vocab(vocab_size: int, specials: dict[int, str], *, pre: str, not_control: set[str],
                    bos: str | None, eos: str, eot: str | None, add_bos: bool, chat_template: str,
                    stop: list[str]) -> Vocab:
    first_special = min(specials)
    n_merged = first_special - 256
    if n_merged < 0:
        raise ValueError("vocabulary too small for the byte tokens")
    tokens = [bytes_to_token(bytes([b])) for b in range(256)]
    merges = []
    for left, right in _grown_tokens(n_merged):
        tokens.append(left + right)
        merges.append(f"{left} {right}")
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    while len(tokens) < vocab_size:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(int(gguf.TokenType.UNUSED))
    for i, text in specials.items():
        tokens[i] = text
        types[i] = int(gguf.TokenType.USER_DEFINED if text in not_control else gguf.TokenType.CONTROL)
    ids = {t: i for i, t in specials.items()}
    special = {"eos": ids[eos], "pad": ids[eos]}
    if bos is not None:
        special["bos"] = ids[bos]
    if eot is not None:
        special["eot"] = ids[eot]
    return Vocab(tokens=tokens, types=types, merges=merges, pre=pre, special=special, add_bos=add_bos,
                 chat_template=chat_template, stop_ids=sorted(ids[t] for t in stop))
