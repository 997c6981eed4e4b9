"""OpenAI routes: chat and text completions, and the model list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from glm_edge.api.protocol import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList
from glm_edge.api.serving_chat import create_chat_completion
from glm_edge.api.serving_completion import create_completion
from glm_edge.api.state import registry_of

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    return await create_chat_completion(body, request)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request) -> Any:
    return await create_completion(body, request)


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    registry = registry_of(request)
    cards = [ModelCard(id=name, created=registry.created.get(name, 0), owned_by="glm-edge")
             for name in [*registry.chat, *registry.embedders]]
    return ModelList(data=cards)
