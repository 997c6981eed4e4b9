"""Render a conversation with a model's own Jinja chat template.

The environment is set up the way transformers' ``apply_chat_template`` sets it up (read from
``transformers/utils/chat_template_utils.py``), so a template renders here exactly as it does there:
an ``ImmutableSandboxedEnvironment`` with ``trim_blocks``/``lstrip_blocks`` and ``loopcontrols``, a
``tojson`` filter that is plain ``json.dumps`` (``ensure_ascii=False``, no HTML escaping, ``indent``,
``separators`` and ``sort_keys`` arguments), the globals ``raise_exception`` and ``strftime_now``,
and a ``namespace`` that refuses underscore names. ``{% generation %}`` blocks (used by training
templates to mark assistant tokens) render their body.

Compile errors are the server's problem (a bad template in a GGUF or the catalog): ``ConfigError``.
Render errors come from what the client sent (roles the template refuses, missing fields):
``InvalidRequestError`` (400) with the template's own message.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment

from glm_edge.catalog import templates_dir  # the folder of the shipped templates (models/templates)
from glm_edge.errors import ConfigError, InvalidRequestError


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | str | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    # Jinja's own tojson escapes <, >, & and ' for HTML and forces ASCII; chat templates want plain JSON.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class _TemplateDict:
    """``dict(...)`` for templates without exposing the dict type itself."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """Jinja's ``namespace`` that refuses underscore-prefixed attribute names (no dunder access)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 - same signature trick as Jinja's Namespace
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"chat templates cannot store underscore-prefixed attributes on a namespace: {name!r}")


class _GenerationBlock(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}``: rendered as its body (we never need the token mask)."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

    def _render_body(self, caller: Callable[[], str]) -> str:
        return caller()


@functools.lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = _TemplateDict()
    env.globals["namespace"] = _TemplateNamespace
    return env


@functools.lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    return _environment().from_string(source)


# What a template may fail with at render time because of what the request holds.
_RENDER_ERRORS = (jinja2.exceptions.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError)


class ChatTemplate:
    """A compiled chat template. Thread-safe: rendering keeps no state between calls."""

    def __init__(self, source: str, *, name: str = "chat template") -> None:
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f"{name} is empty")
        self.source = source
        self.name = name
        try:
            self._template = _compile(source)
        except jinja2.exceptions.TemplateSyntaxError as exc:
            raise ConfigError(f"{name} is not a valid Jinja template (line {exc.lineno}): {exc.message}") from exc

    def render(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
               add_generation_prompt: bool = True, bos_token: str = "", eos_token: str = "",
               **extra: Any) -> str:
        """The prompt text for ``messages``. ``extra`` are further template variables (for example
        ``enable_thinking``). ``tools`` is passed as the template's top-level ``tools`` variable."""
        variables: dict[str, Any] = dict(extra)
        variables.update(messages=messages, tools=tools, add_generation_prompt=add_generation_prompt,
                         bos_token=bos_token, eos_token=eos_token)
        try:
            return self._template.render(**variables)
        except _RENDER_ERRORS as exc:
            detail = exc.message if isinstance(exc, jinja2.exceptions.TemplateError) and exc.message else str(exc)
            raise InvalidRequestError(f"the model's chat template cannot render these messages: {detail}",
                                      param="messages") from exc


def builtin_template_names() -> list[str]:
    return sorted(p.stem for p in templates_dir().glob("*.jinja"))


def load_template(name_or_path: str | Path) -> ChatTemplate:
    """A shipped template by name (``"glm-4-9b-chat"``, see ``builtin_template_names()``) or a ``.jinja`` file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = templates_dir() / f"{name_or_path}.jinja"
        if not path.is_file():
            raise ConfigError(f"unknown chat template {str(name_or_path)!r}; shipped templates: "
                              f"{', '.join(builtin_template_names())}")
    if not path.is_file():
        raise ConfigError(f"chat template file not found: {path}")
    return ChatTemplate(path.read_text(encoding="utf-8"), name=f"chat template {path.name}")
