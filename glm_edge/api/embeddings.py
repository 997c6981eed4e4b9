"""Embedding and keyword routes: OpenAI `POST /v1/embeddings`, GLM-API `POST /embedding` and `POST /keyword`."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from glm_edge.api.observe import note_model
from glm_edge.api.protocol import (
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    GlmEmbeddingRequest,
    GlmEmbeddingResponse,
    Keyword,
    KeywordRequest,
    KeywordResponse,
)
from glm_edge.api.state import registry_of
from glm_edge.errors import InvalidRequestError
from glm_edge.keywords.extractor import DEFAULT_NGRAM_RANGE
from glm_edge.keywords.stopwords import resolve_stop_words

router = APIRouter()


def _split_input(value: Any) -> tuple[list[str] | None, list[list[int]] | None]:
    """OpenAI's four input forms -> texts or token-id lists."""
    if isinstance(value, str):
        return [value], None
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return None, [list(value)]
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return None, [list(v) for v in value]
    return list(value), None


@router.post("/v1/embeddings", response_model=EmbeddingResponse)
async def create_embeddings(body: EmbeddingRequest, request: Request) -> EmbeddingResponse:
    embedder = registry_of(request).embedder(body.model)
    texts, token_ids = _split_input(body.input)
    if token_ids is not None:
        result = await embedder.embed_token_ids(token_ids, truncate=body.truncate, dimensions=body.dimensions)
    else:
        result = await embedder.embed(texts or [], truncate=body.truncate, dimensions=body.dimensions)
    data = []
    for i, vector in enumerate(result.vectors):
        if body.encoding_format == "base64":  # OpenAI: little-endian float32 bytes, base64
            encoded: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        else:
            encoded = vector.tolist()
        data.append(EmbeddingData(embedding=encoded, index=i))
    usage = EmbeddingUsage(prompt_tokens=result.total_tokens, total_tokens=result.total_tokens)
    note_model(request, embedder.id, result.total_tokens)
    return EmbeddingResponse(data=data, model=embedder.id, usage=usage)


@router.post("/embedding", response_model=GlmEmbeddingResponse)
async def glm_embedding(body: GlmEmbeddingRequest, request: Request) -> GlmEmbeddingResponse:
    embedder = registry_of(request).embedder(body.model)
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    result = await embedder.embed(prompts)
    note_model(request, embedder.id, result.total_tokens)
    return GlmEmbeddingResponse(data=np.asarray(result.vectors, dtype=np.float64).tolist(), model=embedder.id)


@router.post("/keyword", response_model=KeywordResponse)
async def glm_keyword(body: KeywordRequest, request: Request) -> KeywordResponse:
    extractor = registry_of(request).keyword_extractor(body.model)
    if body.ngram_range and body.keyphrase_ngram_range and body.ngram_range != body.keyphrase_ngram_range:
        raise InvalidRequestError("ngram_range and keyphrase_ngram_range disagree; give one", param="ngram_range")
    low, high = body.keyphrase_ngram_range or body.ngram_range or DEFAULT_NGRAM_RANGE
    if not 1 <= low <= high <= 4:
        raise InvalidRequestError("ngram_range must be [low, high] with 1 <= low <= high <= 4", param="ngram_range")
    stop_words = resolve_stop_words(body.stop_words)
    if body.vocab is not None and not [v for v in body.vocab if v.strip()]:
        raise InvalidRequestError("vocab must hold at least one non-empty entry", param="vocab")
    found = await extractor.extract(body.input, vocab=body.vocab, top_n=body.top, use_mmr=body.mmr,
                                    use_maxsum=body.maxsum, diversity=body.diversity,
                                    ngram_range=(low, high), nr_candidates=body.nr_candidates,
                                    stop_words=stop_words)
    note_model(request, extractor.id)
    return KeywordResponse(model=extractor.id, keywords=[Keyword(name=name, similarity=score) for name, score in found])
