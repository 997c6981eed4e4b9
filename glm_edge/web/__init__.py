"""The browser chat page served at `/`: index.html, with its script, style and vendored libraries under static/
(served at `/static/`). Plain files, no build step."""

from pathlib import Path

# The page loads only its own files and talks only to this server; no inline script, so even markup that got
# past the sanitiser could not run code.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def page_path() -> Path:
    return Path(__file__).with_name("index.html")


def static_dir() -> Path:
    return Path(__file__).with_name("static")
