"""A GGUF file's key-value metadata, read from its header without loading the file or building numpy views.

``gguf.GGUFReader`` builds one numpy view per array element: about 15 s on a 150k-token vocabulary with its
300k merges (glm-4-9b-chat, Qwen2.5), at every server start. This reader maps the file, walks the header with
``struct`` and, for keys not asked for, only skips over their values (tens of milliseconds for the same file).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from pathlib import Path

_SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def read_gguf_metadata(path: Path, keys: Collection[str] | None = None) -> dict[str, object]:
    """Metadata of a GGUF v2/v3 file as plain Python values (str, int, float, bool, lists of them); with ``keys``,
    only those (the others are skipped, not decoded). Raises ``ValueError`` for a file that is not GGUF v2/v3."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _parse(data, Path(path), None if keys is None else frozenset(keys))


def _parse(data: mmap.mmap, path: Path, wanted: frozenset[str] | None) -> dict[str, object]:
    pos = 0

    def take(fmt: str) -> object:
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return value

    def count() -> int:
        n = take("Q")
        assert isinstance(n, int)
        return n

    def kind() -> int:
        k = take("I")
        assert isinstance(k, int)
        return k

    def string() -> str:
        nonlocal pos
        n = count()
        pos += n
        return data[pos - n:pos].decode("utf-8")

    def value(k: int) -> object:
        if k in _SCALAR_FORMATS:
            return take(_SCALAR_FORMATS[k])
        if k == _STRING:
            return string()
        if k != _ARRAY:
            raise ValueError(f"{path}: unknown GGUF value type {k}")
        item, n = kind(), count()
        return [value(item) for _ in range(n)]

    def skip(k: int) -> None:
        nonlocal pos
        if k in _SCALAR_FORMATS:
            pos += struct.calcsize("<" + _SCALAR_FORMATS[k])
        elif k == _STRING:
            n = count()  # read first: `pos += count()` would add to the position before the length
            pos += n
        elif k == _ARRAY:
            item, n = kind(), count()
            if item in _SCALAR_FORMATS:
                pos += n * struct.calcsize("<" + _SCALAR_FORMATS[item])
            else:
                for _ in range(n):
                    skip(item)
        else:
            raise ValueError(f"{path}: unknown GGUF value type {k}")

    if data[:4] != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file")
    pos = 4
    version = take("I")
    assert isinstance(version, int)
    if version < 2:
        raise ValueError(f"{path}: GGUF v1 is not supported")
    count()  # tensor count
    out: dict[str, object] = {}
    for _ in range(count()):
        key = string()
        k = kind()
        if wanted is None or key in wanted:
            out[key] = value(k)
        else:
            skip(k)
    return out
