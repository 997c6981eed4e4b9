"""Shared pieces of the real-tokenizer tests: the vendored reference files, THUDM's own glm-4-9b-chat tokenizer,
and the tiny glm-4-9b-chat checkpoint around the real tokenizer, converted to GGUF.

Used by tests/test_chat_template_reference.py, tests/test_real_tokenizer_glm4.py and
tests/test_served_prompt_ids.py (the session fixtures that wrap these live in tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

DATA = Path(__file__).parent / "data"
REFS = DATA / "templates"
GLM4_DIR = DATA / "glm-4-9b-chat"  # glm-4-9b-chat's real tokenizer files (SOURCE.md there)


def ref_text(name: str) -> str:
    """A vendored reference template. The only normalisation: CRLF -> LF, for the copy that lives in a Python
    source file saved with Windows line ends (Python reads source with universal newlines, so the string the
    project actually passes to transformers has LF)."""
    return (REFS / name).read_bytes().decode("utf-8").replace("\r\n", "\n")


@lru_cache(maxsize=1)
def _chatglm_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("thudm_tokenization_chatglm", GLM4_DIR / "tokenization_chatglm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def thudm_glm4_tokenizer() -> Any:
    """THUDM's own ChatGLM4Tokenizer, loaded the way AutoTokenizer loads it (tokenizer_config.json's 14 added
    special tokens at 151329.., tokenizer.model's 151 329 tiktoken ranks), with the reference chat template
    (that tokenizer_config.json's own chat_template was edited by its uploader; see SOURCE.md)."""
    base = _chatglm_module().ChatGLM4Tokenizer

    class ChatGLM4TokenizerCompat(base):  # type: ignore[misc, valid-type]
        """transformers >= 4.45 passes `padding_side` to `_pad`; THUDM's later revision of the file takes it (and
        must be left), this copy predates that. Padding never happens here (one sequence, no padding)."""

        def _pad(self, encoded_inputs: Any, max_length: int | None = None, padding_strategy: Any = None,
                 pad_to_multiple_of: int | None = None, padding_side: str | None = None,
                 return_attention_mask: bool | None = None) -> dict[str, Any]:
            assert padding_side in (None, "left")
            kwargs = {} if padding_strategy is None else {"padding_strategy": padding_strategy}
            padded: dict[str, Any] = super()._pad(encoded_inputs, max_length=max_length,
                                                  pad_to_multiple_of=pad_to_multiple_of,
                                                  return_attention_mask=return_attention_mask, **kwargs)
            return padded

    tok = ChatGLM4TokenizerCompat.from_pretrained(str(GLM4_DIR))
    tok.chat_template = ref_text("xinference-glm4-chat.jinja")
    assert tok.convert_tokens_to_ids(["[gMASK]", "<sop>", "<|assistant|>", "<|observation|>"]) == [
        151331, 151333, 151337, 151338]
    return tok


# The name `glm-edge serve` resolves to the catalog's glm-4-9b-chat (file names starting with a catalog id do).
GLM4_GGUF_NAME = "glm-4-9b-chat-F16.gguf"


def convert_real_glm4(directory: Path, seed: int = 11) -> tuple[Path, Any]:
    """A tiny random-weight checkpoint in THUDM's glm-4-9b-chat layout around the real tokenizer files
    (``directory/hf``), converted to ``directory/glm-4-9b-chat-F16.gguf``; returns (GGUF, transformers model)."""
    from glm_edge_convert import convert_to_gguf
    from glm_edge_convert.tiny_glm_family import build_thudm_real_vocab

    model = build_thudm_real_vocab(directory / "hf", GLM4_DIR, seed=seed)
    gguf_path = convert_to_gguf(directory / "hf", directory / GLM4_GGUF_NAME, "F16", progress=False)
    return Path(gguf_path), model
