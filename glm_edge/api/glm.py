"""The GLM-API server's custom routes, with their exact shapes: /chat, /models, /tokenize."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from glm_edge.api.protocol import ChatCompletionRequest, ModelCard, ModelList, TokenizeRequest, TokenizeResponse
from glm_edge.api.serving_chat import create_chat_completion
from glm_edge.registry import ModelRegistry

router = APIRouter()


@router.post("/chat")
async def chat(body: ChatCompletionRequest, request: Request) -> Any:
    """Same handler and body as /v1/chat/completions."""
    return await create_chat_completion(body, request)


@router.get("/models", response_model=ModelList)
async def models(request: Request) -> ModelList:
    """GLM-API listing: chat models as "chat.completion", embedding models as "embedding", and the models
    that extract keywords once more as "keyword"."""
    registry: ModelRegistry = request.app.state.registry
    cards = [ModelCard(id=name, object="chat.completion", created=registry.created.get(name, 0))
             for name in registry.chat]
    cards += [ModelCard(id=name, object="embedding", created=registry.created.get(name, 0))
              for name in registry.embedders]
    cards += [ModelCard(id=name, object="keyword", created=registry.created.get(name, 0))
              for name in registry.keywords]
    return ModelList(data=cards)


@router.post("/tokenize", response_model=TokenizeResponse)
async def tokenize(body: TokenizeRequest, request: Request) -> TokenizeResponse:
    """Token ids and their text pieces for a prompt, as the model's tokenizer's encode() gives them (GLM: with
    the [gMASK]<sop> prefix unless ``add_special_tokens`` is false), cut at max_tokens."""
    registry: ModelRegistry = request.app.state.registry
    model = registry.chat_model(body.model)
    ids = model.encode(body.prompt, add_special_tokens=body.add_special_tokens)
    if body.max_tokens is not None:
        ids = ids[: body.max_tokens]
    pieces = [model.engine.token_to_piece(i).decode("utf-8", errors="replace") for i in ids]
    return TokenizeResponse(tokenIds=ids, tokens=pieces, model=model.id)
