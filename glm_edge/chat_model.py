"""A served chat model: its engine plus the facts that make chat right for it (template, family, stop ids,
generation defaults, reasoning and tool parsers), resolved once at load time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glm_edge.catalog import CatalogEntry
from glm_edge.chat.messages import ChatInput
from glm_edge.chat.output import ChatOutputParser
from glm_edge.chat.prompt import RenderedPrompt, render_chat_prompt
from glm_edge.chat.template import ChatTemplate
from glm_edge.engine.types import Engine


@dataclass
class ChatModel:
    id: str
    engine: Engine
    template: ChatTemplate
    family: str = "generic"
    entry: CatalogEntry | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    stop_token_ids: list[int] = field(default_factory=list)
    reasoning_parser: str = ""
    tool_parser: str = ""
    bos_token: str = ""
    eos_token: str = ""
    encode_prefix: str = ""  # special-token text the model's tokenizer's encode() starts with (GLM: [gMASK]<sop>)
    encode_parses_special: bool = True

    @property
    def skip_special_tokens(self) -> bool:
        """Control tokens are dropped from the text, except where a parser reads them (GLM's <|assistant|>
        between calls, reasoning tags that a GGUF marks as control). Stop tokens are never in the text."""
        return not (self.reasoning_parser or self.tool_parser)

    def render(self, chat: ChatInput) -> RenderedPrompt:
        return render_chat_prompt(self.template, self.family, chat, bos_token=self.bos_token,
                                  eos_token=self.eos_token, model=self.id)

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """Special tokens parsed, no BOS added: the templates emit their own."""
        return self.engine.tokenize(prompt, add_special=False, parse_special=True)

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids as the model's own tokenizer's ``encode()`` gives them: with ``add_special_tokens``, its
        prefix (GLM: [gMASK]<sop>) or else the GGUF's BOS; special-token text parsed where that tokenizer does."""
        special = self.encode_parses_special
        if not (add_special_tokens and self.encode_prefix):
            return self.engine.tokenize(text, add_special=add_special_tokens, parse_special=special)
        head = self.engine.tokenize(self.encode_prefix, add_special=False, parse_special=True)
        return head + self.engine.tokenize(text, add_special=False, parse_special=special)

    def output_parser(self, tool_names: list[str]) -> ChatOutputParser:
        """A fresh parser for one choice of one request."""
        return ChatOutputParser.create(self.reasoning_parser or None, self.tool_parser or None, tool_names)

    def stats(self) -> dict[str, float]:
        return self.engine.stats()

    def close(self) -> None:
        self.engine.close()
