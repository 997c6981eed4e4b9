"""Tokenizer and chat metadata for GGUF: tokens, types, merges, pre-tokenizer, special ids, template.

Sources: ``tokenizer.json`` (a byte-level BPE), a tiktoken-style ``tokenizer.model`` (GLM-4-9b-chat) or a
SentencePiece ``tokenizer.model`` (ChatGLM3, read by sentencepiece_vocab.py),
plus ``tokenizer_config.json``, ``config.json`` and ``generation_config.json``. The pre-tokenizer name
is chosen from the architecture family and the tokenizer's own split regex (never by hashing
tokenizer output, which rejects every tokenizer it has not seen).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from glm_edge.errors import ConfigError

from .tiktoken_vocab import bytes_to_token, merges_from_ranks, read_tiktoken

TT = gguf.TokenType

# Split regexes as written in the models' tokenizer.json files.
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
GLM4_REGEX = LLAMA3_REGEX  # GLM-4's tiktoken pat_str is the same expression

# (family, regex, ignore_merges) -> llama.cpp pre-tokenizer name. ignore_merges=None: either.
# GLM: "glm4" looks whole pieces up before merging (tiktoken's and HF's ignore_merges behaviour),
# "chatglm-bpe" always merges; both use the same regex.
_PRE_TABLE: list[tuple[str, str, bool | None, str]] = [
    ("glm", GLM4_REGEX, True, "glm4"),
    ("glm", GLM4_REGEX, False, "chatglm-bpe"),
    ("qwen2", QWEN2_REGEX, None, "qwen2"),
    ("llama", LLAMA3_REGEX, None, "llama-bpe"),
]

# THUDM/glm-4-9b-chat's special tokens, in order, following the mergeable ranks.
GLM4_SPECIAL_TOKENS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
                       "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>",
                       "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>"]
GLM_STOP_TOKENS = ["<|endoftext|>", "<|user|>", "<|observation|>"]

STOP_IDS_KEY = "glm_edge.stop_token_ids"


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    special: dict[str, int] = field(default_factory=dict)  # bos, eos, eot, pad, unk
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | None = None
    stop_ids: list[int] = field(default_factory=list)

    def add_to(self, w: gguf.GGUFWriter) -> None:
        self._add_tokens(w)
        setters = {"bos": w.add_bos_token_id, "eos": w.add_eos_token_id, "eot": w.add_eot_token_id,
                   "pad": w.add_pad_token_id, "unk": w.add_unk_token_id}
        for kind, token_id in self.special.items():
            setters[kind](token_id)
        w.add_add_bos_token(self.add_bos)
        w.add_add_eos_token(self.add_eos)
        if self.chat_template:
            w.add_chat_template(self.chat_template)
        if self.stop_ids:
            w.add_array(STOP_IDS_KEY, self.stop_ids)

    def _add_tokens(self, w: gguf.GGUFWriter) -> None:
        """The tokenizer model and its token table (byte-level BPE: tokens, types, merges)."""
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        w.add_token_merges(self.merges)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e})") from e


def _split_regex(pre_tokenizer: dict[str, Any] | None) -> str | None:
    if not pre_tokenizer:
        return None
    if pre_tokenizer.get("type") == "Sequence":
        for p in pre_tokenizer.get("pretokenizers", []):
            if (r := _split_regex(p)) is not None:
                return r
        return None
    if pre_tokenizer.get("type") == "Split":
        pattern = pre_tokenizer.get("pattern", {})
        return pattern.get("Regex") or pattern.get("String")
    return None


def choose_pre(family: str, regex: str | None, ignore_merges: bool) -> str:
    """The llama.cpp pre-tokenizer for this family and split regex, or a clear error."""
    for fam, rx, ign, name in _PRE_TABLE:
        if fam == family and rx == regex and (ign is None or ign == ignore_merges):
            return name
    for _fam, rx, _ign, name in _PRE_TABLE:  # e.g. a fine-tune that swapped in another family's tokenizer
        if rx == regex:
            return name
    raise ConfigError(f"unknown pre-tokenizer regex {regex!r} for a {family} model; pass tokenizer_pre= "
                      "with a llama.cpp pre-tokenizer name if you know which one matches")


def _content(tok: Any) -> str | None:
    if isinstance(tok, dict):
        return tok.get("content")
    return tok


def _chat_template(src: Path, tok_cfg: dict[str, Any], override: str | Path | None) -> str | None:
    """The override (a Path: a Jinja file; a str: the template text), else the checkpoint's own template."""
    if isinstance(override, Path):
        if not override.is_file():
            raise ConfigError(f"chat template file {override} not found")
        return override.read_text(encoding="utf-8")
    if override is not None:
        return override
    tpl = tok_cfg.get("chat_template")
    if isinstance(tpl, list):
        named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
        tpl = named.get("default") or next(iter(named.values()), None)
    if tpl:
        return tpl
    if (src / "chat_template.jinja").is_file():
        return (src / "chat_template.jinja").read_text(encoding="utf-8")
    ct = _read_json(src / "chat_template.json").get("chat_template")
    return ct or None


def _from_tokenizer_json(path: Path) -> tuple[dict[str, int], list[str], dict[int, tuple[str, bool]], str | None, bool]:
    data = _read_json(path)
    model = data.get("model", {})
    if model.get("type") != "BPE":
        raise ConfigError(f"{path}: tokenizer model {model.get('type')!r} is not a byte-level BPE")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    added = {int(t["id"]): (t["content"], bool(t.get("special", False))) for t in data.get("added_tokens", [])}
    return (dict(model["vocab"]), merges, added, _split_regex(data.get("pre_tokenizer")),
            bool(model.get("ignore_merges", False)))


def _from_tiktoken(src: Path, tok_cfg: dict[str, Any]) -> tuple[dict[str, int], list[str], dict[int, tuple[str, bool]]]:
    ranks = read_tiktoken(src / "tokenizer.model")
    if ranks is None:
        raise ConfigError(f"{src / 'tokenizer.model'} is neither a tiktoken-style vocabulary nor a SentencePiece "
                          "model, and there is no tokenizer.json")
    vocab = {bytes_to_token(b): r for b, r in ranks.items()}
    decoder = tok_cfg.get("added_tokens_decoder") or {}
    if decoder:
        added = {int(i): (t["content"], bool(t.get("special", True))) for i, t in decoder.items()}
    else:
        base = max(ranks.values()) + 1
        added = {base + i: (t, True) for i, t in enumerate(GLM4_SPECIAL_TOKENS)}
    return vocab, merges_from_ranks(ranks), added


def load_vocab(src: Path, family: str, vocab_size: int, *, chat_template: str | Path | None = None,
               tokenizer_pre: str | None = None) -> Vocab:
    """Read the tokenizer of checkpoint ``src`` for a model whose embedding has ``vocab_size`` rows."""
    src = Path(src)
    tok_cfg = _read_json(src / "tokenizer_config.json")
    config = _read_json(src / "config.json")
    gen_cfg = _read_json(src / "generation_config.json")
    if (src / "tokenizer.json").is_file():
        vocab, merges, added, regex, ignore_merges = _from_tokenizer_json(src / "tokenizer.json")
    elif (src / "tokenizer.model").is_file() and family == "glm":
        from .sentencepiece_vocab import chatglm3_vocab  # ChatGLM3 ships a SentencePiece tokenizer.model

        spm = chatglm3_vocab(src, vocab_size, config, gen_cfg, _chat_template(src, tok_cfg, chat_template))
        if spm is not None:
            return spm
        vocab, merges, added = _from_tiktoken(src, tok_cfg)
        regex, ignore_merges = GLM4_REGEX, True  # tiktoken looks whole pieces up first
    else:
        raise ConfigError(f"{src}: no tokenizer found (need tokenizer.json"
                          f"{' or a tiktoken-style tokenizer.model' if family == 'glm' else ''})")
    pre = tokenizer_pre or choose_pre(family, regex, ignore_merges)

    n_tokens = max([*vocab.values(), *added.keys()]) + 1
    if n_tokens > vocab_size:
        raise ConfigError(f"the tokenizer has {n_tokens} tokens but the model's embedding only {vocab_size} rows")
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [int(TT.UNUSED)] * vocab_size
    for text, i in vocab.items():
        tokens[i], types[i] = text, int(TT.NORMAL)
    for i, (text, special) in added.items():
        tokens[i], types[i] = text, int(TT.CONTROL if special else TT.USER_DEFINED)
    ids = {t: i for i, t in enumerate(tokens)}

    def id_of(tok: Any) -> int | None:
        text = _content(tok)
        return ids.get(text) if text is not None else None

    special: dict[str, int] = {}
    for kind in ("bos", "eos", "pad", "unk"):
        if (i := id_of(tok_cfg.get(f"{kind}_token"))) is not None:
            special[kind] = i
    for kind in ("bos", "eos", "pad"):
        cfg_id = config.get(f"{kind}_token_id")
        if kind not in special and isinstance(cfg_id, int) and 0 <= cfg_id < vocab_size:
            special[kind] = cfg_id
    add_bos = bool(tok_cfg.get("add_bos_token", family == "llama"))
    add_eos = bool(tok_cfg.get("add_eos_token", False))

    stop: list[int] = []
    if family == "glm":
        eos = ids.get("<|endoftext|>")
        if eos is None:
            raise ConfigError(f"{src}: a GLM tokenizer without <|endoftext|>")
        # GLM-4(-0414) files must carry <|endoftext|> as bos ([gMASK] as bos misbehaves); no BOS is added.
        special.update(bos=eos, eos=eos, unk=eos)
        special.setdefault("pad", eos)
        if (eot := ids.get("<|user|>")) is not None:
            special["eot"] = eot
        add_bos = False
        stop += [ids[t] for t in GLM_STOP_TOKENS if t in ids]
    for src_ids in (config.get("eos_token_id"), gen_cfg.get("eos_token_id")):
        for i in (src_ids if isinstance(src_ids, list) else [src_ids]):
            if isinstance(i, int) and 0 <= i < vocab_size:
                stop.append(i)
    if "eos" in special:
        stop.append(special["eos"])
    stop_ids = sorted(set(stop))

    return Vocab(tokens=tokens, types=types, merges=merges, pre=pre, special=special, add_bos=add_bos,
                 add_eos=add_eos, chat_template=_chat_template(src, tok_cfg, chat_template), stop_ids=stop_ids)
