"""OpenAI routes: chat and text completions, the Responses API, the model list and one model's card."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from glm_edge.api import conversations
from glm_edge.api.protocol import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList
from glm_edge.api.responses_protocol import ResponsesRequest
from glm_edge.api.serving_chat import create_chat_completion
from glm_edge.api.serving_completion import create_completion
from glm_edge.api.serving_responses import create_response
from glm_edge.api.state import registry_of
from glm_edge.errors import ModelLoadingError, ModelNotFoundError
from glm_edge.registry import ModelRegistry

router = APIRouter()
router.include_router(conversations.router)  # GET / DELETE /v1/conversations/{id}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    return await create_chat_completion(body, request)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request) -> Any:
    return await create_completion(body, request)


@router.post("/v1/responses")
async def responses(body: ResponsesRequest, request: Request) -> Any:
    return await create_response(body, request)


def _card(registry: ModelRegistry, name: str) -> ModelCard:
    return ModelCard(id=name, created=registry.created.get(name, 0), owned_by="glm-edge")


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    registry = registry_of(request)
    return ModelList(data=[_card(registry, name) for name in [*registry.chat, *registry.embedders]])


@router.get("/v1/models/{model_id:path}", response_model=ModelCard)
async def retrieve_model(model_id: str, request: Request) -> ModelCard:
    """One served model's card (``client.models.retrieve``): a chat, embedding or keyword model."""
    registry = registry_of(request)
    served = [*registry.chat, *registry.embedders, *registry.keywords]
    if model_id in served:
        return _card(registry, model_id)
    if registry.loading:
        raise ModelLoadingError("the models are still loading; try again shortly", retry_after=2.0)
    known = ", ".join(sorted(set(served))) or "none"
    raise ModelNotFoundError(f"the model '{model_id}' does not exist on this server; served: {known}")
