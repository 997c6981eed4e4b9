"""GBNF grammars for `response_format`: any JSON object, or JSON that follows a schema (llama.cpp's converter)."""

from __future__ import annotations

import json
from typing import Any

from glm_edge.errors import InvalidRequestError


def json_object_grammar() -> str:
    from llama_cpp.llama_grammar import JSON_GBNF

    return JSON_GBNF


def json_schema_grammar(schema: dict[str, Any]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar: str = json_schema_to_gbnf(json.dumps(schema))
        return grammar
    except Exception as exc:  # the converter raises plain exceptions on schemas it does not support
        raise InvalidRequestError(f"response_format.json_schema cannot be turned into a grammar: {exc}",
                                  param="response_format") from None
