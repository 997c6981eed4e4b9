"""The browser chat page served at `/` (one static HTML file, no build step)."""

from pathlib import Path


def page_path() -> Path:
    return Path(__file__).with_name("index.html")
