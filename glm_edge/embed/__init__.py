"""ONNX Runtime embedder with micro-batching; pooling; normalisation (no torch)."""

from glm_edge.embed.defaults import MULTILINGUAL_ID, default_embedding_dir, multilingual_default_model
from glm_edge.embed.embedder import MAX_INPUTS, Embedder, EmbeddingResult

__all__ = ["MAX_INPUTS", "MULTILINGUAL_ID", "Embedder", "EmbeddingResult", "default_embedding_dir",
           "multilingual_default_model"]
