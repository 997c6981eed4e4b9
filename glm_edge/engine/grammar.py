"""GBNF grammars for `response_format` (any JSON object, or JSON that follows a schema: llama.cpp's converter) and
for forced tool calls (`tool_choice` "required" or a named function)."""

from __future__ import annotations

import json
import re
from typing import Any

from glm_edge.errors import InvalidRequestError


def json_object_grammar() -> str:
    from llama_cpp.llama_grammar import JSON_GBNF

    return JSON_GBNF


def json_schema_grammar(schema: dict[str, Any], *, param: str = "response_format",
                        what: str = "response_format.json_schema") -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar: str = json_schema_to_gbnf(json.dumps(schema))
        return grammar
    except Exception as exc:  # the converter raises plain exceptions on schemas it does not support
        raise InvalidRequestError(f"{what} cannot be turned into a grammar: {exc}", param=param) from None


def forced_tool_call_grammar(tool_parser: str, tools: list[dict[str, Any]]) -> str | None:
    """A grammar that makes the model write one call of one of ``tools`` (OpenAI function tools) in the format
    that ``tool_parser`` reads: for ``tool_choice`` "required" or a named function, where OpenAI promises a
    call. The arguments follow the tool's parameter schema when exactly one tool is offered, else any JSON
    object. None for a parser whose format has no grammar here (the choice is then only a request)."""
    if tool_parser not in ("glm4", "qwen") or not tools:
        return None
    names = [str(tool["function"]["name"]) for tool in tools]
    parameters = tools[0]["function"].get("parameters") if len(tools) == 1 else None
    if parameters:
        arguments = json_schema_grammar(parameters, param="tools",
                                        what=f"the parameters of {names[0]}")
    else:
        arguments = json_object_grammar()
    arguments = re.sub(r"^root\s*::=", "call-arguments ::=", arguments, flags=re.MULTILINE)
    if tool_parser == "glm4":  # the function's name on the first line, its JSON arguments after it (DESIGN.md 4)
        name_rule = " | ".join(json.dumps(name, ensure_ascii=False) for name in names)
        return f'root ::= ({name_rule}) "\\n" call-arguments\n{arguments}'
    # qwen: the template's <tool_call> block around {"name": ..., "arguments": ...}
    name_rule = " | ".join(json.dumps(json.dumps(name, ensure_ascii=False), ensure_ascii=False) for name in names)
    return (f'root ::= "<tool_call>\\n{{\\"name\\": " ({name_rule}) ", \\"arguments\\": " call-arguments '
            f'"}}\\n</tool_call>"\n{arguments}')
