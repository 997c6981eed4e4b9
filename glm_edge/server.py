"""`glm-edge serve`: resolve the models, check the port, then run uvicorn with background loading."""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket

from glm_edge.errors import ConfigError
from glm_edge.settings import Settings

log = logging.getLogger("glm_edge")


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

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.models_dir is not None:
        os.environ["GLM_EDGE_MODELS_DIR"] = str(settings.models_dir)
    if settings.api_key_file is not None and not settings.api_key_file.is_file():
        raise ConfigError(f"API key file not found: {settings.api_key_file}")
    specs = resolve_all(settings)
    check_port_free(settings.host, settings.port)

    app = create_app(settings, loader=functools.partial(load_models, settings, specs))
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    failure: list[str] = []

    def on_load_failure(message: str) -> None:
        failure.append(message)
        server.should_exit = True

    app.state.on_load_failure = on_load_failure
    server.run()
    if failure:
        raise ConfigError(f"could not load the models: {failure[0]}")
