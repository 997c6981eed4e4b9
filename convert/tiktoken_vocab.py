"""Tiktoken-style vocabularies (``tokenizer.model`` of THUDM/glm-4-9b-chat: "base64-token rank" per line).

They carry ranks but no merges; llama.cpp's BPE needs merges, so they are rebuilt from the ranks the
way tiktoken would merge: each multi-byte token is split by running BPE on its own bytes with only
lower-ranked merges allowed, which leaves exactly the two parts it was made of.
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


def _split(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best_i, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best_i, best_rank = i, r
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def merges_from_ranks(ranks: dict[bytes, int]) -> list[str]:
    """BPE merges (``"left right"`` in byte-level spelling), in rank order."""
    merges: list[str] = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = _split(ranks, token, rank)
        if len(parts) != 2:
            raise ConfigError(f"tiktoken vocabulary is not a BPE ranking: token rank {rank} cannot be "
                              "built from two lower-ranked tokens")
        merges.append(f"{bytes_to_token(parts[0])} {bytes_to_token(parts[1])}")
    return merges
