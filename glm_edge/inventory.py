"""What `glm-edge models` lists: every catalog model, and whether and where it is on disk."""

from __future__ import annotations

from pathlib import Path

from glm_edge.catalog import load_catalog
from glm_edge.defaults import EMBEDDED_CHAT, models_home
from glm_edge.errors import ConfigError
from glm_edge.resolve import resolve_chat, resolve_embedding


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def inventory(home: Path | None = None) -> list[dict[str, str]]:
    home = home or models_home()
    rows = []
    for entry in load_catalog().entries.values():
        path: Path | None = None
        status = "not downloaded"
        try:
            if entry.kind == "chat":
                if entry.id in EMBEDDED_CHAT:
                    path = home / EMBEDDED_CHAT[entry.id].filename
                    status = "ready" if path.exists() else "embedded"
                else:
                    path = resolve_chat(entry.id, home).gguf
                    status = "ready"
            else:
                spec = resolve_embedding(entry.id, home)
                path = spec.source
                status = "embedded" if entry.embedded else "ready"
        except ConfigError:
            local = home / entry.id
            if local.is_dir():
                path, status = local, "needs convert"
        rows.append({
            "id": entry.id,
            "kind": entry.kind,
            "status": status,
            "size": _human(_size(path)) if path is not None and path.exists() else "-",
            "path": str(path) if path is not None else entry.repo,
        })
    return rows
