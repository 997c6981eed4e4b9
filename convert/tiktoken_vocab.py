"""Tiktoken-style vocabularies (``tokenizer.model`` of THUDM/glm-4-9b-chat: "base64-token rank" per line).

They carry ranks but no merges; llama.cpp's BPE needs merges, so they are rebuilt from the ranks.
tiktoken merges, at each step, the adjacent pair whose *concatenation* has the lowest rank, whatever the
ranks of its two parts: a part may well rank higher than the token it forms (in glm-4-9b-chat,
``b"\\xa0" + "除"`` has rank 23977 while ``"除"`` has 98928, and 1 072 tokens are like it). So every
token gets one merge per way of cutting it into two tokens, ranked by the token: llama.cpp then merges
exactly the pairs tiktoken merges, in the same order (transformers' tiktoken converter makes the same
list). Only a file in which some token cannot be cut into two tokens at all is not a BPE ranking.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path

from glm_edge.errors import ConfigError


@lru_cache(maxsize=1)
def byte_encoder() -> dict[int, str]:
    """GPT-2's byte -> printable unicode character table (byte-level BPE token spelling)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def bytes_to_token(b: bytes) -> str:
    enc = byte_encoder()
    return "".join(enc[x] for x in b)


def token_to_bytes(s: str) -> bytes:
    dec = {c: b for b, c in byte_encoder().items()}
    return bytes(dec[c] for c in s)


def read_tiktoken(path: Path) -> dict[bytes, int] | None:
    """The ranks of a tiktoken file, or None when the file is not one (e.g. a SentencePiece model)."""
    ranks: dict[bytes, int] = {}
    try:
        with Path(path).open("rb") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                parts = line.split()
                if len(parts) != 2:
                    return None
                ranks[base64.b64decode(parts[0], validate=True)] = int(parts[1])
    except (binascii.Error, ValueError):
        return None
    return ranks or None


def token_splits(ranks: dict[bytes, int], token: bytes) -> list[tuple[bytes, bytes]]:
    """Every cut of ``token`` into two tokens of ``ranks``, by the ranks of the left then the right part."""
    cuts = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
    return sorted(cuts, key=lambda lr: (ranks[lr[0]], ranks[lr[1]]))


def merges_from_ranks(ranks: dict[bytes, int]) -> list[str]:
    """BPE merges (``"left right"`` in byte-level spelling) that make llama.cpp's BPE merge like tiktoken."""
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ConfigError(f"tiktoken vocabulary is not a byte-level BPE ranking: {len(missing)} of the 256 "
                          f"single bytes have no rank (first: {missing[0]:#04x})")
    merges: list[str] = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        cuts = token_splits(ranks, token)
        if not cuts:
            raise ConfigError(f"tiktoken vocabulary is not a BPE ranking: token rank {rank} ({token!r}) cannot "
                              "be cut into two tokens of the vocabulary")
        merges.extend(f"{bytes_to_token(left)} {bytes_to_token(right)}" for left, right in cuts)
    return merges
