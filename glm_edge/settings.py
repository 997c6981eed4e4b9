"""Server settings: command-line flags > environment (GLM_EDGE_*, GLM_MODEL, API_PORT) > TOML file > defaults."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MAX_DEVICES = 16  # llama_max_devices() in llama.cpp: the length of llama_model_params.tensor_split


class Settings(BaseSettings):
    """Every setting of `glm-edge serve`. The TOML file uses the same names (e.g. `port = 8300`)."""

    model_config = SettingsConfigDict(env_prefix="GLM_EDGE_", extra="forbid", populate_by_name=True)

    model: str | None = Field(
        default=None,
        validation_alias=AliasChoices("model", "GLM_EDGE_MODEL", "GLM_MODEL"),
        description="chat model: a catalog id, a local GGUF path or a Hugging Face repo id "
        "(default: the embedded Qwen2.5-Coder-0.5B-Instruct)",
    )
    embedding: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="embedding models to serve: catalog ids or ONNX folders "
                    "(default: the embedded use-multilingual-v3-int8 and all-MiniLM-L6-v2)",
    )
    no_embedding: bool = Field(default=False, description="serve no embedding model")
    no_chat: bool = Field(default=False, description="serve no chat model")
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(
        default=8200, ge=1, le=65535,
        validation_alias=AliasChoices("port", "GLM_EDGE_PORT", "API_PORT"),
        description="port to listen on",
    )
    parallel: int = Field(default=4, ge=1, le=256, description="sequences decoded together (slots)")
    ctx_size: int = Field(default=4096, ge=256, description="context length of each slot, in tokens")
    batch_size: int = Field(default=512, ge=32, description="tokens per decode step (prompt chunks + decodes)")
    n_gpu_layers: int = Field(default=-1, description="layers offloaded to the GPU (-1: all when CUDA is present)")
    split_mode: Literal["none", "layer", "row"] = Field(
        default="layer",
        description="how a model spreads over several GPUs (llama.cpp -sm): layer = whole layers and their KV "
                    "per GPU; row = each matrix split by rows (tensor parallel, needs fast links); none = all on "
                    "--main-gpu",
    )
    tensor_split: Annotated[list[float], NoDecode] = Field(
        default_factory=list,
        description="share of the model per GPU, in device order (llama.cpp -ts), e.g. 3,1 puts 3/4 on GPU 0 "
                    "(default: by free memory)",
    )
    main_gpu: int = Field(
        default=0, ge=0,
        description="GPU for the whole model with --split-mode none, for intermediate results and KV with row "
                    "(llama.cpp -mg; counts the devices glm-edge sees, after --devices)",
    )
    devices: str | None = Field(
        default=None, pattern=r"^\s*[0-9A-Za-z-]+(\s*,\s*[0-9A-Za-z-]+)*\s*$",
        description="the CUDA devices to use, as CUDA_VISIBLE_DEVICES takes them (e.g. 0,1 or GPU-UUIDs); set "
                    "before llama.cpp starts CUDA (default: what CUDA_VISIBLE_DEVICES says, else all)",
    )
    rpc: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="llama.cpp rpc-server workers as HOST:PORT (llama-server --rpc); their devices take layers "
                    "like GPUs. Needs an RPC build of llama.cpp (scripts/build-llama-rpc.sh). No "
                    "authentication: private networks only",
    )
    flash_attn: bool = Field(default=False, description="use flash attention")
    cache_type: str | None = Field(default=None, description="KV cache type: f16, q8_0, q4_0 ...")
    threads: int | None = Field(default=None, ge=1, description="CPU threads (default: all cores)")
    max_queue: int = Field(default=64, ge=1, description="requests that may wait for a slot before 429")
    chat_template: Path | None = Field(default=None,
                                       description="a Jinja file that overrides the model's chat template")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("api_keys", "GLM_EDGE_API_KEYS"),
        description="accepted API keys (Authorization: Bearer K or API-KEY: K); none = open",
        json_schema_extra={"flag": "api-key"},
    )
    api_key_file: Path | None = Field(default=None, description="a file with one accepted API key per line")
    models_dir: Path | None = Field(default=None, description="where downloaded and converted models live")
    embed_threads: int | None = Field(default=None, ge=1, description="ONNX Runtime threads for embeddings")
    data_dir: Path | None = Field(default=None,
                                  description="where the server keeps its data (conversations.sqlite3); "
                                              "default: <models_dir>/data")
    conversation_ttl: float = Field(default=86400.0, gt=0,
                                    description="seconds a stored conversation lives after its last use")
    documents_dir: Path | None = Field(default=None,
                                       description="a folder whose files chat requests may name by local path "
                                                   "in file parts (default: none may be)")
    remote_documents: bool = Field(default=False,
                                   description="allow http(s) URLs in file parts (not implemented: refused)")
    max_document_bytes: int = Field(default=10 * 1024 * 1024, ge=1,
                                    description="the largest document a file part may carry, in bytes")
    max_documents: int = Field(default=8, ge=0, description="file parts one request may carry")
    log_level: str = Field(default="info", description="debug, info, warning, error")
    log_format: Literal["text", "json"] = Field(default="text",
                                                description="log lines as text or as one JSON object each")
    log_prompts: bool = Field(default=False, description="put the prompt text into the request log lines")
    shutdown_grace: float = Field(default=30.0, ge=0,
                                  description="seconds running requests get to finish after SIGTERM")
    config: Path | None = Field(default=None, description="a TOML file with any of these settings")

    @field_validator("embedding", "api_keys", "tensor_split", "rpc", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tensor_split")
    @classmethod
    def _check_tensor_split(cls, value: list[float]) -> list[float]:
        if len(value) > MAX_DEVICES:
            raise ValueError(f"tensor_split has {len(value)} shares; llama.cpp takes at most {MAX_DEVICES}")
        if any(not math.isfinite(share) or share < 0 for share in value):
            raise ValueError(f"tensor_split shares must be finite and non-negative: {value}")
        if value and sum(value) <= 0:
            raise ValueError("tensor_split shares add up to 0: give at least one device a share")
        return value

    @field_validator("rpc")
    @classmethod
    def _check_rpc(cls, value: list[str]) -> list[str]:
        for endpoint in value:
            host, sep, port = endpoint.rpartition(":")
            if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"rpc endpoint {endpoint!r} is not HOST:PORT")
        return value

    @model_validator(mode="after")
    def _check_devices(self) -> "Settings":
        if self.devices is not None:
            count = len([d for d in self.devices.split(",") if d.strip()])
            if len(self.tensor_split) > count:
                raise ValueError(f"tensor_split has {len(self.tensor_split)} shares for {count} devices "
                                 f"({self.devices})")
            if self.main_gpu >= count:
                raise ValueError(f"main_gpu {self.main_gpu} is not one of the {count} devices ({self.devices})")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the TOML file is the class's own `toml_file` (see `load_settings`): no module state
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    def models_home(self) -> Path:
        """Where downloaded and converted models live: `models_dir`, else the default (`defaults.models_home`)."""
        if self.models_dir is not None:
            return self.models_dir.expanduser()
        from glm_edge.defaults import models_home

        return models_home()

    def data_home(self) -> Path:
        """Where the server keeps its own data: `data_dir`, else <models_dir>/data."""
        if self.data_dir is not None:
            return self.data_dir.expanduser()
        return self.models_home() / "data"

    def accepted_keys(self) -> list[str]:
        keys = list(self.api_keys)
        if self.api_key_file is not None:
            lines = self.api_key_file.read_text(encoding="utf-8").splitlines()
            keys.extend(line.strip() for line in lines if line.strip() and not line.startswith("#"))
        return keys


def load_settings(config: Path | None = None, **flags: Any) -> Settings:
    """Build settings from flags (None values mean: not given), the environment and an optional TOML file."""
    import os

    config = config or (Path(os.environ["GLM_EDGE_CONFIG"]) if os.environ.get("GLM_EDGE_CONFIG") else None)
    if config is not None and not config.is_file():
        from glm_edge.errors import ConfigError

        raise ConfigError(f"config file not found: {config}")
    given = {key: value for key, value in flags.items() if value is not None and value != () and value != []}
    if config is None:
        return Settings(**given)
    # the same model read from this one file: a subclass whose only difference is its `toml_file`
    with_file = cast(type[Settings], type("Settings", (Settings,),
                                          {"model_config": {**Settings.model_config, "toml_file": config}}))
    return with_file(config=config, **given)
