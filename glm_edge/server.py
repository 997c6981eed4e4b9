"""`glm-edge serve`: resolve the models, check the port, then run uvicorn with background loading.

SIGTERM (what `docker stop` and rolling restarts send) drains instead of stopping at once: uvicorn's signal
handler is told to start the app's drain (`Lifecycle.drain`) from uvicorn's own main-loop tick; when it is done,
`should_exit` hands over to uvicorn's ordinary shutdown, and the process exits 0. A second SIGTERM, or SIGINT,
takes uvicorn's usual way out.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import logging
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING, Any

from glm_edge.errors import ConfigError
from glm_edge.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from glm_edge.api.lifecycle import Lifecycle

log = logging.getLogger("glm_edge")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a request line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                               "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    """Every logger (uvicorn's included: it gets log_config=None) through one handler in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _uvicorn_server(config: uvicorn.Config, lifecycle: Lifecycle, grace_seconds: float) -> uvicorn.Server:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server with SIGTERM as a drain: stop taking requests, let running ones finish, exit 0."""

        drain_requested = False
        drain_task: asyncio.Task[None] | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if sig == signal.SIGTERM and not self.drain_requested and not self.should_exit:
                self.drain_requested = True  # not uvicorn's _captured_signals: no re-raise, the exit code is 0
                return
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self.drain_requested and self.drain_task is None:
                self.drain_task = asyncio.create_task(self._drain())
            return await super().on_tick(counter)

        async def _drain(self) -> None:
            try:
                await lifecycle.drain(grace_seconds)
            finally:
                self.should_exit = True

    return GracefulServer(config)


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is already in use; pick another with --port") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def run_server(settings: Settings) -> None:
    import uvicorn

    from glm_edge.api.app import create_app
    from glm_edge.loader import load_models, resolve_all

    configure_logging(settings.log_level, settings.log_format)
    if settings.api_key_file is not None and not settings.api_key_file.is_file():
        raise ConfigError(f"API key file not found: {settings.api_key_file}")
    specs = resolve_all(settings)
    check_port_free(settings.host, settings.port)

    failure: list[str] = []
    servers: list[uvicorn.Server] = []  # the server exists only once the app does

    def on_load_failure(message: str) -> None:
        failure.append(message)
        for server in servers:
            server.should_exit = True

    app = create_app(settings, loader=functools.partial(load_models, settings, specs), on_load_failure=on_load_failure)
    # the request middleware writes one line per request (uvicorn's access line would be a second one); after the
    # drain, uvicorn's own graceful shutdown only closes connections, so a few seconds are enough
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                            log_config=None, access_log=False, timeout_graceful_shutdown=5)
    servers.append(_uvicorn_server(config, app.state.lifecycle, settings.shutdown_grace))
    servers[0].run()
    if failure:
        raise ConfigError(f"could not load the models: {failure[0]}")
